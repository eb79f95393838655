"""Admin pages of coupons (优惠券): the list with claimed / used / redemption rate / sales,
a new coupon, pause and resume, and issuing to customers picked by name or to every
customer of a distributor (picked by name too, never by typed id).

Money typed in yuan, stored in fen; 折扣 typed as "8.5 折", stored as basis points off.
Rules and once-only guards are in ``app/coupons/services.py``; every change is audited.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app.accounts.models import User
from app.accounts.names import display_name
from app.admin import bp
from app.admin.decorators import staff_required
from app.catalog.models import Category, Product
from app.core.audit import audited, row, rows
from app.core.money import parse_yuan
from app.core.params import MAX_ID, bounded_int
from app.core.time import SHOP_TZ
from app.coupons.admin_queries import customers_of, find_customers, people, template_figures
from app.coupons.models import KIND_LABELS, SCOPE_LABELS, CouponTemplate
from app.coupons.services import (
    CouponError,
    TemplateInput,
    create_template,
    issue,
    rule_text,
    set_paused,
)
from app.distribution.models import Distributor
from app.extensions import db

DATE_FORMAT = "%Y-%m-%d"
MAX_PICKED = 200


def _yuan(form, name: str, label: str, required: bool = True) -> int:
    raw = (form.get(name) or "").strip()
    if not raw and not required:
        return 0
    try:
        return parse_yuan(raw)
    except ValueError:
        raise CouponError(f"invalid_{name}", f"{label}格式不正确") from None


def _int(form, name: str, label: str, default: int | None = None) -> int:
    raw = (form.get(name) or "").strip()
    if not raw and default is not None:
        return default
    if not raw.isascii() or not raw.isdecimal() or len(raw) > 9:
        raise CouponError(f"invalid_{name}", f"{label}须为正整数")
    return int(raw)


def _date(form, name: str, label: str, end: bool = False) -> datetime:
    try:
        day = datetime.strptime((form.get(name) or "").strip(), DATE_FORMAT)
    except ValueError:
        raise CouponError("invalid_validity", f"请填写{label}") from None
    if end:  # the end date counts whole: valid until 24:00 of that day, China time
        day = day.replace(hour=23, minute=59, second=59)
    return day.replace(tzinfo=SHOP_TZ)


def _discount_bp(form) -> int:
    """ "8.5" 折 -> 1500 bp off (15%)."""
    raw = (form.get("zhe") or "").strip()
    try:
        zhe = Decimal(raw)
    except InvalidOperation:
        raise CouponError("invalid_percent", "折扣请填 0.1-9.9 之间的数，如 8.5") from None
    if not zhe.is_finite() or not Decimal("0.1") <= zhe <= Decimal("9.99"):
        raise CouponError("invalid_percent", "折扣请填 0.1-9.9 之间的数，如 8.5")
    pay_bp = zhe * 1000
    if pay_bp != pay_bp.to_integral_value():
        raise CouponError("invalid_percent", "折扣最多两位小数")
    return 10000 - int(pay_bp)


def template_from_form(form) -> TemplateInput:
    """Parse the new-coupon form; raise CouponError in Chinese."""
    kind = form.get("kind", "")
    if kind not in KIND_LABELS:
        raise CouponError("invalid_kind", "请选择券类型")
    scope = form.get("scope", "all")
    if scope not in SCOPE_LABELS:
        raise CouponError("invalid_scope", "请选择适用范围")
    field = {"categories": "category_ids", "products": "product_ids"}.get(scope)
    ids = []
    if field:
        for raw in form.getlist(field)[:MAX_PICKED]:
            value = bounded_int(raw)
            if value is None:
                raise CouponError("invalid_scope", "所选分类或商品不存在")
            ids.append(value)
    mode = form.get("valid_mode", "days")
    data = TemplateInput(
        name=form.get("name", ""),
        kind=kind,
        stock=_int(form, "stock", "发放总量"),
        per_customer=_int(form, "per_customer", "每人限领", 1),
        scope=scope,
        scope_ids=tuple(ids),
        valid_mode=mode,
        distributor_only=form.get("distributor_only") == "1",
    )
    if kind in ("amount_off", "no_threshold"):
        data.off_fen = _yuan(form, "off", "优惠金额")
    if kind == "amount_off":
        data.threshold_fen = _yuan(form, "threshold", "使用门槛")
    if kind == "percent_off":
        data.off_bp = _discount_bp(form)
        data.max_off_fen = _yuan(form, "max_off", "最高优惠", required=False)
        data.threshold_fen = _yuan(form, "threshold", "使用门槛", required=False)
    if mode == "days":
        data.valid_days = _int(form, "valid_days", "有效天数")
    elif mode == "fixed":
        data.starts_at = _date(form, "starts_on", "开始日期")
        data.ends_at = _date(form, "ends_on", "结束日期", end=True)
    return data


def _choices() -> dict:
    return {
        "categories": db.session.scalars(select(Category).order_by(Category.sort, Category.id)),
        "products": db.session.scalars(select(Product).order_by(Product.id.desc()).limit(300)),
        "kinds": KIND_LABELS,
        "scopes": SCOPE_LABELS,
    }


def _form_page(values: dict, error: str = "", status: int = 200):
    return render_template("admin/coupons_form.html", v=values, error=error, **_choices()), status


def _template_or_404(coupon_id: int) -> CouponTemplate:
    found = db.session.get(CouponTemplate, coupon_id) if coupon_id <= MAX_ID else None
    if found is None:
        abort(404, description="优惠券不存在")
    return found


@bp.get("/coupons")
@staff_required
def coupons():
    """Every coupon with claimed, used, redemption rate and the sales of its paid orders."""
    return render_template("admin/coupons.html", figures=template_figures(), rule=rule_text)


@bp.get("/coupons/new")
@staff_required
def coupon_new():
    """The form for a new coupon."""
    return _form_page({"kind": "amount_off", "scope": "all", "valid_mode": "days"})


@bp.post("/coupons")
@staff_required
@audited("coupon.create", rows(CouponTemplate, "coupon_template"))
def coupon_create():
    """Create a coupon."""
    try:
        t = create_template(template_from_form(request.form))
        db.session.commit()
    except CouponError as err:
        db.session.rollback()
        values = dict(request.form.items())
        values["category_ids"] = request.form.getlist("category_ids")
        values["product_ids"] = request.form.getlist("product_ids")
        return _form_page(values, err.message, 400)
    flash(f"已创建优惠券“{t.name}”", "success")
    return redirect(url_for("admin.coupons"))


@bp.post("/coupons/<int:coupon_id>/pause")
@staff_required
@audited("coupon.pause", row(CouponTemplate, "coupon_id", "coupon_template"))
def coupon_pause(coupon_id: int):
    """Stop claims and issues (coupons already held stay usable)."""
    t = _template_or_404(coupon_id)
    set_paused(t, True)
    db.session.commit()
    flash(f"已暂停“{t.name}”", "success")
    return redirect(url_for("admin.coupons"))


@bp.post("/coupons/<int:coupon_id>/resume")
@staff_required
@audited("coupon.resume", row(CouponTemplate, "coupon_id", "coupon_template"))
def coupon_resume(coupon_id: int):
    """Open claims and issues again."""
    t = _template_or_404(coupon_id)
    set_paused(t, False)
    db.session.commit()
    flash(f"已恢复发放“{t.name}”", "success")
    return redirect(url_for("admin.coupons"))


def _find_distributors(text: str) -> list[tuple[int, str, str]]:
    text = (text or "").strip()
    if not text or len(text) > 32:
        return []
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = db.session.execute(
        select(Distributor.id, User.nickname, User.id, Distributor.code)
        .join(User, User.id == Distributor.user_id)
        .where(User.nickname.ilike(pattern, escape="\\") | (Distributor.code == text.upper()))
        .order_by(Distributor.id)
        .limit(20)
    )
    return [(did, display_name(nick, uid), code) for did, nick, uid, code in found]


@bp.get("/coupons/<int:coupon_id>/issue")
@staff_required
def coupon_issue_page(coupon_id: int):
    """Issue a coupon: search customers by nickname or phone and tick them, or pick a
    distributor by name to give one to each of their customers."""
    t = _template_or_404(coupon_id)
    q = (request.args.get("q") or "").strip()[:32]
    dq = (request.args.get("dq") or "").strip()[:32]
    return render_template(
        "admin/coupons_issue.html",
        t=t,
        rule=rule_text(t),
        q=q,
        dq=dq,
        found=find_customers(q) if q else [],
        distributors=_find_distributors(dq) if dq else [],
    )


@bp.post("/coupons/<int:coupon_id>/issue")
@staff_required
@audited("coupon.issue", row(CouponTemplate, "coupon_id", "coupon_template"))
def coupon_issue(coupon_id: int):
    """Give one coupon to each ticked customer, or to every customer of a distributor."""
    t = _template_or_404(coupon_id)
    distributor_id = bounded_int(request.form.get("distributor_id"))
    if distributor_id is not None:
        if db.session.get(Distributor, distributor_id) is None:
            abort(404, description="分销员不存在")
        user_ids = customers_of(distributor_id)
    else:
        picked = [bounded_int(raw) for raw in request.form.getlist("user_ids")[:MAX_PICKED]]
        user_ids = [p.id for p in people([i for i in picked if i is not None])]
    if not user_ids:
        flash("请先选择要发放的顾客", "error")
        return redirect(url_for("admin.coupon_issue_page", coupon_id=t.id))
    try:
        done = issue(t.id, user_ids)
        db.session.commit()
    except CouponError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("admin.coupon_issue_page", coupon_id=t.id))
    flash(f"已发放 {done['issued']} 张，跳过 {done['skipped']} 人（已达限领或券已发完）", "success")
    return redirect(url_for("admin.coupons"))
