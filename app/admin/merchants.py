"""Admin pages of ordering merchants (订货商): levels with the SKU price table and the
precedence setting, and the merchants (create, approve, disable, parent and level).

Views parse the form, call app.cloud.pricing / merchants, commit once and redirect; a
refused change comes back on the page with the service's Chinese message (422/409).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.accounts.models import User
from app.admin import bp
from app.admin.decorators import staff_required
from app.cloud import merchants as svc
from app.cloud.models import (
    PRECEDENCE,
    CloudSettings,
    MerchantLevel,
    MerchantSkuPrice,
    OrderingMerchant,
)
from app.cloud.pricing import (
    MAX_LEVEL,
    PRECEDENCE_LABELS,
    MerchantError,
    get_cloud_settings,
    level_names,
    list_levels,
    price_table,
    save_levels,
    set_precedence,
)
from app.core.audit import audited, combined, row, rows
from app.core.money import parse_yuan
from app.core.params import MAX_ID, bounded_int, page_arg
from app.core.status import InvalidTransition
from app.extensions import db
from app.ledger.balances import balances

PER_PAGE = 30


def _actor() -> str:
    return f"staff:{current_user.id}"


# --- levels and prices ----------------------------------------------------------------------


def _render_levels(error: str | None = None, status: int = 200, form: dict | None = None):
    return (
        render_template(
            "admin/merchants_levels.html",
            levels={row.level: row for row in list_levels()},
            max_level=MAX_LEVEL,
            rows=price_table(),
            precedence=get_cloud_settings().precedence,
            precedence_labels=PRECEDENCE_LABELS,
            error=error,
            form=form or {},
        ),
        status,
    )


# Levels, level prices and the precedence setting, saved together (audit target).
MERCHANT_PRICING = combined(
    rows(MerchantLevel, "level"),
    rows(MerchantSkuPrice, "price"),
    rows(CloudSettings, "settings"),
    subject="merchant_pricing",
)


@bp.get("/cloud/merchant-levels")
@staff_required
def merchant_levels():
    """Levels 1-5 (name, discount), precedence, and the price of every SKU at every level."""
    return _render_levels()


def _levels_from_form(form) -> tuple[list[dict], list[dict]]:
    """[{level, name, discount_bp}] and price changes from the editor's form.

    A level row with an empty name is removed. Discounts are typed as percent (12.5 → 1250
    bp); set prices in yuan, an empty cell meaning "use the discount".
    """
    rows = []
    for level in range(1, MAX_LEVEL + 1):
        name = form.get(f"name_{level}", "").strip()
        if not name:
            continue
        raw = form.get(f"discount_{level}", "").strip() or "0"
        try:
            bp = parse_yuan(raw)  # percent with two decimals = basis points, exactly
        except ValueError:
            bp = -1
        if not 0 <= bp <= 10_000:
            raise MerchantError(
                "invalid_discount", f"{level}级的折扣需为 0-100 的数字（%）", field="discount"
            )
        rows.append({"level": level, "name": name, "discount_bp": bp})
    prices = []
    for key, value in form.items():
        if not key.startswith("price_"):
            continue
        _p, level, sku_id = ([*key.split("_"), "", ""])[:3]
        if not (level.isdecimal() and sku_id.isdecimal()):
            continue
        value = value.strip()
        if value:
            try:
                fen = parse_yuan(value)
            except ValueError as exc:
                raise MerchantError("invalid_price", f"价格“{value}”：{exc}", field=key) from None
        else:
            fen = None
        prices.append({"level": int(level), "sku_id": int(sku_id), "price_fen": fen})
    known = {r["level"] for r in rows}
    return rows, [p for p in prices if p["level"] in known]


@bp.post("/cloud/merchant-levels")
@staff_required
@audited("merchant_levels.save", MERCHANT_PRICING)
def merchant_levels_save():
    """Save levels, set prices and precedence together (every SKU is validated)."""
    try:
        rows, prices = _levels_from_form(request.form)
        save_levels(rows, prices)
        if request.form.get("precedence") in PRECEDENCE:
            set_precedence(request.form["precedence"])
        db.session.commit()
    except MerchantError as exc:
        db.session.rollback()
        return _render_levels(exc.message, exc.status, form=dict(request.form.items()))
    flash("等级与价格已保存")
    return redirect(url_for("admin.merchant_levels"))


# --- merchants ------------------------------------------------------------------------------


def _render_merchants(error: str | None = None, status: int = 200, new: dict | None = None):
    state = request.args.get("status", "")
    query = select(OrderingMerchant).order_by(OrderingMerchant.level, OrderingMerchant.id)
    if state in svc.MERCHANT_STATUSES:
        query = query.where(OrderingMerchant.status == state)
    page = page_arg()
    pagination = db.paginate(query, page=page, per_page=PER_PAGE, error_out=False)
    return (
        render_template(
            "admin/merchants.html",
            pagination=pagination,
            money={m.id: balances(m.distributor_id) for m in pagination.items},
            names=level_names(),
            status_labels=svc.MERCHANT_STATUS_LABELS,
            state=state,
            error=error,
            new=new or {},
        ),
        status,
    )


@bp.get("/cloud/merchants")
@staff_required
def merchants():
    """Every ordering merchant with level, parent, status and money; add one."""
    return _render_merchants()


@bp.post("/cloud/merchants")
@staff_required
@audited("merchant.create", rows(OrderingMerchant, "ordering_merchant"))
def merchant_create():
    """Make a user an ordering merchant (by user id) at a level under a parent."""
    form = request.form
    user_id, level, parent_id = (
        bounded_int(form.get("user_id")),
        bounded_int(form.get("level")),
        None,
    )
    try:
        if user_id is None or db.session.get(User, user_id) is None:
            raise MerchantError("unknown_user", "用户不存在，请填写正确的用户编号", 404)
        if form.get("parent_id", "").strip():
            parent_id = bounded_int(form.get("parent_id"))
            if parent_id is None:
                raise MerchantError("unknown_parent", "上级订货商编号不正确", 404)
        svc.create_merchant(user_id, level or 0, parent_id, _actor())
        db.session.commit()
    except MerchantError as exc:
        db.session.rollback()
        return _render_merchants(exc.message, exc.status, new=dict(form.items()))
    flash("订货商已添加")
    return redirect(url_for("admin.merchants"))


def _merchant(merchant_id: int) -> OrderingMerchant:
    from flask import abort

    found = db.session.get(OrderingMerchant, merchant_id) if merchant_id <= MAX_ID else None
    if found is None:
        abort(404, description="订货商不存在")
    return found


@bp.post("/cloud/merchants/<int:merchant_id>/status")
@staff_required
@audited("merchant.status", row(OrderingMerchant, "merchant_id"))
def merchant_status(merchant_id: int):
    """Approve, disable or re-enable (audited)."""
    merchant = _merchant(merchant_id)
    to = request.form.get("to", "")
    try:
        if to not in ("active", "disabled"):  # applications: approve / reject below
            raise MerchantError("invalid_status", "状态不正确")
        svc.move_merchant(merchant, to, _actor(), {"active": "启用/审核通过"}.get(to, "停用"))
        db.session.commit()
    except (MerchantError, InvalidTransition) as exc:
        db.session.rollback()
        message = getattr(exc, "message", "状态已变化，请刷新后重试")
        return _render_merchants(message, 409)
    flash(f"订货商 #{merchant.id} 已{svc.MERCHANT_STATUS_LABELS[to]}")
    return redirect(url_for("admin.merchants"))


@bp.post("/cloud/merchants/<int:merchant_id>")
@staff_required
@audited("merchant.update", row(OrderingMerchant, "merchant_id"))
def merchant_update(merchant_id: int):
    """Change level and parent together (parent higher, no cycles), audited."""
    merchant = _merchant(merchant_id)
    form = request.form
    raw_parent = form.get("parent_id", "").strip()
    try:
        parent_id = bounded_int(raw_parent) if raw_parent else None
        if raw_parent and parent_id is None:
            raise MerchantError("unknown_parent", "上级订货商编号不正确", 404)
        svc.change_merchant(
            merchant,
            _actor(),
            level=bounded_int(form.get("level")),
            parent_id=parent_id,
            set_parent=True,
        )
        db.session.commit()
    except MerchantError as exc:
        db.session.rollback()
        return _render_merchants(f"订货商 #{merchant_id}：{exc.message}", exc.status)
    flash(f"订货商 #{merchant_id} 已更新")
    return redirect(url_for("admin.merchants"))


# --- applications ---------------------------------------------------------------------------


def _render_applications(error: str | None = None, status: int = 200, form: dict | None = None):
    pending = db.session.scalars(
        select(OrderingMerchant)
        .where(OrderingMerchant.status == "pending")
        .order_by(OrderingMerchant.id)
        .limit(PER_PAGE * 4)
    ).all()
    recent = db.session.scalars(
        select(OrderingMerchant)
        .where(OrderingMerchant.status == "rejected")
        .order_by(OrderingMerchant.id.desc())
        .limit(PER_PAGE)
    ).all()
    return (
        render_template(
            "admin/merchant_applications.html",
            pending=pending,
            rejected=recent,
            notes={m.id: svc.application_note(m) for m in [*pending, *recent]},
            reasons={m.id: svc.rejection_reason(m) for m in recent},
            names=level_names(),
            error=error,
            form=form or {},
        ),
        status,
    )


@bp.get("/cloud/merchant-applications")
@staff_required
def merchant_applications():
    """Applications waiting (level, parent, name, phone, reason), and recent refusals."""
    return _render_applications()


@bp.post("/cloud/merchants/<int:merchant_id>/approve")
@staff_required
@audited("merchant.approve", row(OrderingMerchant, "merchant_id"))
def merchant_approve(merchant_id: int):
    """Approve at the level and under the parent chosen on the form (validated)."""
    merchant = _merchant(merchant_id)
    raw_parent = request.form.get("parent_id", "").strip()
    try:
        parent_id = bounded_int(raw_parent) if raw_parent else None
        if raw_parent and parent_id is None:
            raise MerchantError("unknown_parent", "上级订货商编号不正确", 404)
        level = bounded_int(request.form.get("level"))
        svc.approve_application(merchant, _actor(), level=level or 0, parent_id=parent_id)
        db.session.commit()
    except (MerchantError, InvalidTransition) as exc:
        db.session.rollback()
        message = getattr(exc, "message", "申请状态已变化，请刷新后重试")
        return _render_applications(f"申请 #{merchant_id}：{message}", getattr(exc, "status", 409))
    flash(f"订货商 #{merchant_id} 已审核通过")
    return redirect(url_for("admin.merchant_applications"))


@bp.post("/cloud/merchants/<int:merchant_id>/reject")
@staff_required
@audited("merchant.reject", row(OrderingMerchant, "merchant_id"))
def merchant_reject(merchant_id: int):
    """Refuse an application with a reason the applicant sees."""
    merchant = _merchant(merchant_id)
    try:
        svc.reject_application(merchant, _actor(), request.form.get("reason", "")[:200])
        db.session.commit()
    except (MerchantError, InvalidTransition) as exc:
        db.session.rollback()
        message = getattr(exc, "message", "申请状态已变化，请刷新后重试")
        return _render_applications(f"申请 #{merchant_id}：{message}", getattr(exc, "status", 409))
    flash(f"申请 #{merchant_id} 已驳回")
    return redirect(url_for("admin.merchant_applications"))
