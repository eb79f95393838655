"""Admin after-sale pages: one refund with its photos and whole thread (``/admin/refunds/<id>``),
and the return steps of 退货退款 (agree to the return, confirm the parcel arrived).

Confirming receipt moves the refund to received (``app/orders/aftersale.receive_return``)
and approves it through the existing refund path (``app/payments/refunds.approve_refund``:
WeChat Pay is asked, its answer or notice completes it and the refund pipeline reverses
commissions). Approving and rejecting use the routes in ``app/admin/orders.py``.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from app.admin import bp
from app.admin.decorators import staff_required
from app.admin.forms import ActionForm
from app.admin.order_forms import RejectRefundForm
from app.admin.orders import transition_message
from app.core.audit import audited, row
from app.core.money import format_yuan
from app.core.params import MAX_ID
from app.core.status import InvalidTransition
from app.extensions import db
from app.orders import aftersale
from app.orders.models import Refund
from app.orders.services import PaymentMismatch
from app.orders.states import ORDER_STATUS_LABELS, REFUND_STATUS_LABELS
from app.payments.client import PaymentError
from app.payments.refunds import approve_refund


def _refund(refund_id: int) -> Refund:
    refund = db.session.get(Refund, refund_id) if refund_id <= MAX_ID else None
    if refund is None:
        abort(404, description="售后申请不存在")
    return refund


def _actor() -> str:
    return current_user.get_id()


def _detail(refund: Refund):
    return redirect(url_for("admin.refund_detail", refund_id=refund.id))


@bp.get("/refunds/<int:refund_id>")
@staff_required
def refund_detail(refund_id: int):
    """One after-sale request: the line, amount, reason, words, photos, parcel, thread."""
    refund = _refund(refund_id)
    return render_template(
        "admin/refund_detail.html",
        refund=refund,
        order=refund.order,
        line=refund.line,
        history=aftersale.timeline(refund),
        refund_labels=REFUND_STATUS_LABELS,
        order_labels=ORDER_STATUS_LABELS,
        kind_labels=aftersale.KIND_LABELS,
        reject_form=RejectRefundForm(formdata=None),
    )


@bp.post("/refunds/<int:refund_id>/approve-return")
@staff_required
@audited("refund.approve_return", row(Refund, "refund_id"))
def refund_approve_return(refund_id: int):
    """Agree to a 退货退款: the customer is asked to send the goods back."""
    refund = _refund(refund_id)
    if not ActionForm().validate():
        flash("页面已过期，请刷新后重试", "error")
        return _detail(refund)
    try:
        aftersale.approve_return(refund, _actor())
    except InvalidTransition as exc:
        db.session.rollback()
        flash(transition_message(exc), "error")
        return _detail(refund)
    db.session.commit()
    flash("已同意退货，等待买家寄回商品", "success")
    return _detail(refund)


@bp.post("/refunds/<int:refund_id>/receive")
@staff_required
@audited("refund.receive", row(Refund, "refund_id"))
def refund_receive(refund_id: int):
    """The returned parcel arrived: record it and refund through WeChat Pay."""
    refund = _refund(refund_id)
    if not ActionForm().validate():
        flash("页面已过期，请刷新后重试", "error")
        return _detail(refund)
    try:
        aftersale.receive_return(refund, _actor())
        approve_refund(refund, _actor())
    except InvalidTransition as exc:
        db.session.rollback()
        flash(transition_message(exc), "error")
        return _detail(refund)
    except PaymentError as exc:
        db.session.commit()  # received, then failed with WeChat's message: staff retry
        flash(f"已确认收货，但微信退款失败：{exc.message}", "error")
        return _detail(refund)
    except PaymentMismatch:
        db.session.rollback()
        flash("微信退款结果与退款申请不符，请到微信支付商户平台核对", "error")
        return _detail(refund)
    db.session.commit()
    flash(f"已确认收货并退款 {format_yuan(refund.amount_fen)}，等待微信支付退回", "success")
    return _detail(refund)
