"""Admin pages for orders and refunds: list, CSV export, detail, ship, complete, review.

Views parse the form, call the order services (app.orders.shipping, app.orders.refunds;
approving a refund asks WeChat Pay: app.payments.refunds), commit once and redirect; a
refused action comes back as a Chinese message on the page, never a 500.
"""

from __future__ import annotations

from datetime import datetime

from flask import Response, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import selectinload

from app.accounts.models import ApiToken, Staff
from app.admin import bp
from app.admin.decorators import staff_required
from app.admin.forms import ActionForm
from app.admin.order_csv import csv_lines
from app.admin.order_forms import RejectRefundForm, ShipForm
from app.admin.order_money import order_money
from app.core.audit import audited, row
from app.core.models import StatusChange
from app.core.money import format_yuan
from app.core.params import page_arg
from app.core.replica import reads_replica
from app.core.status import InvalidTransition
from app.core.time import SHOP_TZ
from app.extensions import db
from app.orders.models import (
    REFUND_APPROVED,
    REFUND_FAILED,
    REFUND_REQUESTED,
    REFUND_STATUSES,
    Order,
    PaymentTransaction,
    Refund,
)
from app.orders.refunds import reject_refund
from app.orders.search import (
    FILTER_STATUSES,
    REFUNDING,
    UNFINISHED_REFUND_STATUSES,
    OrderFilter,
    order_query,
    parse_day,
    status_counts,
)
from app.orders.services import OrderError, PaymentMismatch
from app.orders.shipping import complete_order, ship_order, shipping_warnings
from app.orders.states import ORDER_STATUS_LABELS, REFUND_STATUS_LABELS
from app.payments.client import PaymentError
from app.payments.labels import payment_kind_label, payment_state_label
from app.payments.refunds import approve_refund
from jobs.risk import enqueue_refund_check

PER_PAGE = 20
STATUS_TABS = [
    ("", "全部"),
    ("pending_payment", "待付款"),
    ("paid", "待发货"),
    ("shipped", "待收货"),
    ("completed", "已完成"),
    ("cancelled", "已取消"),
    (REFUNDING, "售后中"),
]


def _actor() -> str:
    return current_user.get_id()  # "staff:<id>", as StatusChange.actor expects


def transition_message(err: InvalidTransition) -> str:
    """A person's words for a refused transition (the order or refund moved meanwhile)."""
    labels = ORDER_STATUS_LABELS if err.subject == "order" else REFUND_STATUS_LABELS
    what = "订单" if err.subject == "order" else "退款"
    current = labels.get(err.current, err.current)
    return f"{what}当前状态为“{current}”，不能进行此操作，请刷新后查看"


# --- list and export --------------------------------------------------------------------


def _filter_from_args() -> tuple[OrderFilter, dict[str, str], str | None]:
    """The filter in the query string, the args to keep in links, and an error message."""
    args = {
        "status": request.args.get("status", ""),
        "from": (request.args.get("from") or "").strip()[:10],
        "to": (request.args.get("to") or "").strip()[:10],
        "q": (request.args.get("q") or "").strip()[:50],
    }
    error = None
    status = args["status"] if args["status"] in FILTER_STATUSES else ""
    args["status"] = status
    try:
        created_from = parse_day(args["from"])
    except ValueError as exc:
        created_from, args["from"], error = None, "", f"开始日期{exc}"
    try:
        created_to = parse_day(args["to"])
    except ValueError as exc:
        created_to, args["to"], error = None, "", f"结束日期{exc}"
    if created_from and created_to and created_from > created_to:
        error = "开始日期不能晚于结束日期"
    flt = OrderFilter(status or None, created_from, created_to, args["q"] or None)
    return flt, {k: v for k, v in args.items() if v}, error


def _open_refund_order_ids(order_ids: list[int]) -> set[int]:
    if not order_ids:
        return set()
    return set(
        db.session.scalars(
            select(Refund.order_id).where(
                Refund.order_id.in_(order_ids),
                Refund.status.in_(UNFINISHED_REFUND_STATUSES),
            )
        )
    )


@bp.get("/orders")
@staff_required
def orders():
    """Orders with status tabs (and their counts), date range and keyword, paginated."""
    flt, args, error = _filter_from_args()
    pagination = db.paginate(
        order_query(flt).options(selectinload(Order.lines)),
        page=page_arg(),
        per_page=PER_PAGE,
        error_out=False,
    )
    return render_template(
        "admin/orders.html",
        pagination=pagination,
        counts=status_counts(flt),
        tabs=[
            (value, label, url_for("admin.orders", **{**args, "status": value or None}))
            for value, label in STATUS_TABS
        ],
        args=args,
        error=error,
        attention=_open_refund_order_ids([o.id for o in pagination.items]),
        labels=ORDER_STATUS_LABELS,
    )


@bp.get("/orders/export.csv")
@staff_required
@reads_replica
def orders_export():
    """The orders of the current filter as a CSV file Excel opens (see order_csv)."""
    flt, _args, _error = _filter_from_args()
    stamp = datetime.now(SHOP_TZ).strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(csv_lines(order_query(flt))),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f"attachment; filename=orders-{stamp}.csv",
            "Cache-Control": "no-store",
        },
    )


# --- detail -----------------------------------------------------------------------------


def _actor_names(changes: list[StatusChange]) -> dict[str, str]:
    """Readable names for the ``actor`` strings of ``changes``."""
    staff_ids, token_ids = set(), set()
    for change in changes:
        kind, _, ident = change.actor.partition(":")
        if ident.isdecimal() and kind == "staff":
            staff_ids.add(int(ident))
        elif ident.isdecimal() and kind == "api":
            token_ids.add(int(ident))
    names = {"wechat": "微信支付", "system": "系统"}
    if staff_ids:
        for row in db.session.scalars(select(Staff).where(Staff.id.in_(staff_ids))):
            names[f"staff:{row.id}"] = f"员工 {row.username}"
    if token_ids:
        for row in db.session.scalars(select(ApiToken).where(ApiToken.id.in_(token_ids))):
            names[f"api:{row.id}"] = f"Open API（{row.name}）"
    return names


def actor_label(actor: str, names: dict[str, str]) -> str:
    """ "staff:3" → 员工 clerk, "user:7" → 顾客, "wechat" → 微信支付 ..."""
    if actor in names:
        return names[actor]
    kind = actor.partition(":")[0]
    return {"user": "顾客", "staff": "员工", "api": "Open API"}.get(kind, actor)


def _history(order: Order, refunds: list[Refund]) -> list[dict]:
    refund_ids = [r.id for r in refunds]
    conditions = [(StatusChange.subject == "order") & (StatusChange.subject_id == order.id)]
    if refund_ids:
        conditions.append(
            (StatusChange.subject == "refund") & (StatusChange.subject_id.in_(refund_ids))
        )
    changes = list(
        db.session.scalars(
            select(StatusChange)
            .where(or_(*conditions))
            .order_by(StatusChange.created_at, StatusChange.id)
        )
    )
    names = _actor_names(changes)
    rows = []
    for change in changes:
        is_order = change.subject == "order"
        labels = ORDER_STATUS_LABELS if is_order else REFUND_STATUS_LABELS
        rows.append(
            {
                "at": change.created_at,
                "what": "订单" if is_order else f"退款 #{change.subject_id}",
                "from": labels.get(change.from_status or "", change.from_status or ""),
                "to": labels.get(change.to_status, change.to_status),
                "actor": actor_label(change.actor, names),
                "reason": change.reason,
            }
        )
    return rows


def _render_detail(order: Order, ship_form: ShipForm | None = None, status: int = 200, **extra):
    refunds = list(
        db.session.scalars(
            select(Refund).where(Refund.order_id == order.id).order_by(Refund.created_at, Refund.id)
        )
    )
    payments = list(
        db.session.scalars(
            select(PaymentTransaction)
            .where(PaymentTransaction.order_id == order.id)
            .order_by(PaymentTransaction.created_at, PaymentTransaction.id)
        )
    )
    if ship_form is None:
        ship_form = ShipForm(formdata=None)
    return (
        render_template(
            "admin/order_detail.html",
            order=order,
            refunds=refunds,
            payments=payments,
            history=_history(order, refunds),
            money=order_money(order),
            warnings=shipping_warnings(order) if order.status == "paid" else [],
            ship_form=ship_form,
            reject_form=RejectRefundForm(formdata=None),
            action=ActionForm(),
            labels=ORDER_STATUS_LABELS,
            refund_labels=REFUND_STATUS_LABELS,
            payment_kind_label=payment_kind_label,
            payment_state_label=payment_state_label,
            **extra,
        ),
        status,
    )


@bp.get("/orders/<int:order_id>")
@staff_required
def order_detail(order_id: int):
    """One order: lines, receiver, amounts, history, payments, refunds, ship form."""
    return _render_detail(db.get_or_404(Order, order_id))


@bp.post("/orders/<int:order_id>/ship")
@staff_required
@audited("order.ship", row(Order, "order_id"))
def order_ship(order_id: int):
    """Ship a paid order with a carrier and tracking number."""
    order = db.get_or_404(Order, order_id)
    form = ShipForm()
    if not form.validate():
        return _render_detail(order, form, 422, error=_first_error(form))
    try:
        ship_order(order, form.carrier.data, form.tracking_number.data or "", _actor())
    except OrderError as exc:
        db.session.rollback()
        return _render_detail(order, form, exc.status, error=exc.message)
    except InvalidTransition as exc:
        db.session.rollback()
        return _render_detail(order, form, 409, error=transition_message(exc))
    db.session.commit()
    flash(f"已发货：{order.carrier} {order.tracking_number}", "success")
    return redirect(url_for("admin.order_detail", order_id=order.id))


@bp.post("/orders/<int:order_id>/complete")
@staff_required
def order_complete(order_id: int):
    """Mark a shipped order completed (the customer confirmed receipt some other way)."""
    order = db.get_or_404(Order, order_id)
    if not ActionForm().validate():
        return _render_detail(order, status=400, error="页面已过期，请刷新后重试")
    try:
        complete_order(order, _actor())
    except InvalidTransition as exc:
        db.session.rollback()
        return _render_detail(order, status=409, error=transition_message(exc))
    db.session.commit()
    flash("订单已标记为已完成", "success")
    return redirect(url_for("admin.order_detail", order_id=order.id))


# --- refunds ----------------------------------------------------------------------------

REFUND_TABS = [
    ("", "全部"),
    (REFUND_REQUESTED, "待审核"),
    (REFUND_APPROVED, "退款中"),
    (REFUND_FAILED, "退款失败"),
    ("refunded", "已退款"),
    ("rejected", "已拒绝"),
]


@bp.get("/refunds")
@staff_required
def refunds():
    """Refunds, those awaiting review first, then failed ones, then the rest (newest first)."""
    status = request.args.get("status", "")
    status = status if status in REFUND_STATUSES else ""
    urgency = case(
        (Refund.status == REFUND_REQUESTED, 0), (Refund.status == REFUND_FAILED, 1), else_=2
    )
    query = select(Refund).options(selectinload(Refund.order), selectinload(Refund.line))
    if status:
        query = query.where(Refund.status == status)
    query = query.order_by(urgency, Refund.created_at.desc(), Refund.id.desc())
    pagination = db.paginate(
        query,
        page=page_arg(),
        per_page=PER_PAGE,
        error_out=False,
    )
    counts = dict.fromkeys(REFUND_STATUSES, 0)
    counts.update(
        {
            s: int(n)
            for s, n in db.session.execute(
                select(Refund.status, func.count(Refund.id)).group_by(Refund.status)
            )
        }
    )
    counts[""] = sum(counts[s] for s in REFUND_STATUSES)
    return render_template(
        "admin/refunds.html",
        pagination=pagination,
        status=status,
        tabs=REFUND_TABS,
        counts=counts,
        refund_labels=REFUND_STATUS_LABELS,
        reject_form=RejectRefundForm(formdata=None),
        action=ActionForm(),
    )


def _back_to(refund: Refund) -> str:
    """Back to the page the button was on: the refund list or the order."""
    if request.form.get("back") == "refunds":
        return url_for("admin.refunds")
    if request.form.get("back") == "detail":
        return url_for("admin.refund_detail", refund_id=refund.id)
    return url_for("admin.order_detail", order_id=refund.order_id)


@bp.post("/refunds/<int:refund_id>/approve")
@staff_required
@audited("refund.approve", row(Refund, "refund_id"))
def refund_approve(refund_id: int):
    """Approve a refund: WeChat Pay is asked to pay it back (the notice completes it)."""
    refund = db.get_or_404(Refund, refund_id)
    back = _back_to(refund)
    if not ActionForm().validate():
        flash("页面已过期，请刷新后重试", "error")
        return redirect(back)
    try:
        approve_refund(refund, _actor())
    except InvalidTransition as exc:
        db.session.rollback()
        flash(transition_message(exc), "error")
        return redirect(back)
    except PaymentError as exc:
        # approve_refund moved the refund to failed with WeChat's message: keep that, so
        # staff see why and can approve again.
        db.session.commit()
        flash(f"微信退款失败：{exc.message}", "error")
        return redirect(back)
    except PaymentMismatch:
        db.session.rollback()
        flash("微信退款结果与退款申请不符，请到微信支付商户平台核对", "error")
        return redirect(back)
    db.session.commit()
    if refund.status == "refunded":
        enqueue_refund_check(refund.order_id, refund.id)  # the risk checks, after the commit
        flash(f"已退款 {format_yuan(refund.amount_fen)}", "success")
    else:
        flash(f"已同意退款 {format_yuan(refund.amount_fen)}，等待微信支付退回", "success")
    return redirect(back)


@bp.post("/refunds/<int:refund_id>/reject")
@staff_required
@audited("refund.reject", row(Refund, "refund_id"))
def refund_reject(refund_id: int):
    """Refuse a refund with a reason the customer will see."""
    refund = db.get_or_404(Refund, refund_id)
    back = _back_to(refund)
    form = RejectRefundForm()
    if not form.validate():
        flash(_first_error(form), "error")
        return redirect(back)
    try:
        reject_refund(refund, _actor(), form.reason.data)
    except InvalidTransition as exc:
        db.session.rollback()
        flash(transition_message(exc), "error")
        return redirect(back)
    db.session.commit()
    flash("已拒绝退款申请", "success")
    return redirect(back)


def _first_error(form) -> str:
    for name, errors in form.errors.items():
        if errors:
            if name == "csrf_token":
                return "页面已过期，请刷新后重试"
            field = getattr(form, name, None)
            label = field.label.text if field is not None else ""
            return f"{label}：{errors[0]}" if label else errors[0]
    return "输入有误"
