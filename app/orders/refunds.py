"""Refunds of order lines: request, review, WeChat refund, completion. Services flush only.

Money rule: a refund of ``q`` of a line's ``Q`` units is worth ``amount × q / Q`` rounded
down to the fen; the refund that takes the line's last units gets whatever is left, so a
fully refunded line returns exactly what was paid for it. Shipping is not refunded.

The sum bound (refunds never exceed what was paid) holds three times over: requests are
counted against the line while holding its row lock (a no-op UPDATE: a row lock on
PostgreSQL, the write lock on SQLite), completion adds to the line and order with
conditional UPDATEs, and the CHECK constraints refuse anything that slips past.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select, update

from app.catalog.models import Sku
from app.core.time import utcnow
from app.earnings.on_refund import refund_completed
from app.extensions import db
from app.orders.models import (
    CANCELLED,
    COMPLETED,
    PAID,
    REFUND_APPROVED,
    REFUND_FAILED,
    REFUND_REFUNDED,
    REFUND_REJECTED,
    REFUND_REQUESTED,
    SHIPPED,
    Order,
    OrderLine,
    Refund,
)
from app.orders.services import OrderError, PaymentMismatch
from app.orders.states import InvalidTransition, move_order, move_refund, record_creation

REFUNDABLE_ORDER_STATUSES = (PAID, SHIPPED, COMPLETED)
COUNTED_REFUND_STATUSES = (REFUND_REQUESTED, REFUND_APPROVED, REFUND_REFUNDED, REFUND_FAILED)


def _lock_line(line_id: int) -> None:
    """Serialise refund bookkeeping on one line until the transaction ends."""
    db.session.execute(
        update(OrderLine)
        .where(OrderLine.id == line_id)
        .values(refunded_quantity=OrderLine.refunded_quantity)
        .execution_options(synchronize_session=False)
    )


def _reserved(line_id: int) -> tuple[int, int]:
    """(quantity, fen) of the line already asked for by refunds that are not rejected."""
    qty, fen = db.session.execute(
        select(
            func.coalesce(func.sum(Refund.quantity), 0),
            func.coalesce(func.sum(Refund.amount_fen), 0),
        ).where(Refund.order_line_id == line_id, Refund.status.in_(COUNTED_REFUND_STATUSES))
    ).one()
    return int(qty), int(fen)


def refundable(line: OrderLine) -> tuple[int, int]:
    """(quantity, fen) of ``line`` that can still be asked for."""
    qty, fen = _reserved(line.id)
    return line.quantity - qty, line.amount_fen - fen


def request_refund(order: Order, line: OrderLine, quantity: int, reason: str, actor: str) -> Refund:
    """A customer asks to refund ``quantity`` units of ``line``; raise ``OrderError`` if not."""
    if line.order_id != order.id:
        raise OrderError("invalid_line", "订单中没有该商品", status=404)
    if order.status not in REFUNDABLE_ORDER_STATUSES:
        raise OrderError("not_refundable", "订单当前状态不能申请退款", status=409)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise OrderError("invalid_quantity", "退款数量不正确")
    reason = (reason or "").strip()
    if not reason:
        raise OrderError("invalid_reason", "请填写退款原因")
    if len(reason) > 200:
        raise OrderError("invalid_reason", "退款原因最多 200 个字")

    _lock_line(line.id)
    left_qty, left_fen = refundable(line)
    if quantity > left_qty:
        raise OrderError("refund_exceeded", f"该商品最多还可退 {max(left_qty, 0)} 件", status=409)
    amount = left_fen if quantity == left_qty else line.amount_fen * quantity // line.quantity
    amount = min(amount, left_fen)
    if amount <= 0:
        raise OrderError("refund_exceeded", "该商品没有可退金额", status=409)
    refund = Refund(
        order_id=order.id,
        order_line_id=line.id,
        out_refund_no=f"{order.number}R{secrets.token_hex(4).upper()}",
        quantity=quantity,
        amount_fen=amount,
        reason=reason,
        status=REFUND_REQUESTED,
        restock=order.status == PAID,
    )
    db.session.add(refund)
    db.session.flush()
    record_creation("refund", refund.id, REFUND_REQUESTED, actor, reason)
    db.session.flush()
    return refund


def approve_refund(refund: Refund, staff_actor: str) -> Refund:
    """Staff approve: the refund moves to approved and WeChat is asked to pay it back.

    On ``PaymentError`` the refund has been moved to failed (flushed) with WeChat's message
    in ``review_note``: commit to keep that visible (staff may approve again), or roll back
    to leave it requested. Asking again is safe: WeChat dedupes by out_refund_no.
    """
    from app.payments.client import PaymentError, record_transaction, request_refund

    order = refund.order
    move_refund(
        refund,
        REFUND_APPROVED,
        staff_actor,
        "同意退款",
        reviewed_at=utcnow(),
        restock=order.status == PAID,  # stock goes back only if nothing was shipped
    )
    try:
        answer = request_refund(refund)
    except PaymentError as err:
        move_refund(refund, REFUND_FAILED, "wechat", err.message, review_note=err.message[:200])
        raise
    refund_id = str(answer["refund_id"])
    db.session.execute(
        update(Refund)
        .where(Refund.id == refund.id)
        .values(refund_id=refund_id)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(refund)
    record_transaction(
        order.id, "refund", refund_id, refund.amount_fen, str(answer.get("status", "")), answer
    )
    db.session.flush()
    if answer.get("status") == "SUCCESS":
        complete_refund(refund, refund_id, refund.amount_fen, answer)
    return refund


def reject_refund(refund: Refund, actor: str, note: str) -> Refund:
    """Staff refuse a requested refund, saying why."""
    note = (note or "").strip()[:200]
    move_refund(
        refund, REFUND_REJECTED, actor, note or "拒绝退款", review_note=note, reviewed_at=utcnow()
    )
    return refund


def complete_refund(refund: Refund, refund_id: str, amount_fen: int, payload: dict) -> bool:
    """WeChat says the money went back: apply it once. True only the first time.

    Adds the refund to its line and order (bounded), returns stock if nothing was shipped,
    and cancels a paid order whose every line is now fully refunded; then the refund
    pipeline (``app/earnings/on_refund.py``) takes back earnings, team sales and incentives.
    """
    from app.payments.client import record_transaction

    if amount_fen != refund.amount_fen:
        raise PaymentMismatch(f"refund amount {amount_fen} != {refund.amount_fen}")
    if refund.status == REFUND_REFUNDED:
        return False
    if refund.status == REFUND_REJECTED:
        raise PaymentMismatch("refund was rejected")
    if refund.status in (REFUND_REQUESTED, REFUND_FAILED):
        # WeChat's word wins: e.g. a timed-out request WeChat did carry out.
        move_refund(refund, REFUND_APPROVED, "wechat", "微信已受理退款")
    now = utcnow()
    try:
        move_refund(
            refund,
            REFUND_REFUNDED,
            "wechat",
            "微信退款成功",
            refund_id=refund_id or refund.refund_id,
            refunded_at=now,
        )
    except InvalidTransition:
        if refund.status == REFUND_REFUNDED:
            return False  # a concurrent notice got there first
        raise

    line_added = db.session.execute(
        update(OrderLine)
        .where(
            OrderLine.id == refund.order_line_id,
            OrderLine.refunded_fen + amount_fen <= OrderLine.amount_fen,
            OrderLine.refunded_quantity + refund.quantity <= OrderLine.quantity,
        )
        .values(
            refunded_fen=OrderLine.refunded_fen + amount_fen,
            refunded_quantity=OrderLine.refunded_quantity + refund.quantity,
        )
        .execution_options(synchronize_session=False)
    )
    order_added = db.session.execute(
        update(Order)
        .where(Order.id == refund.order_id, Order.refunded_fen + amount_fen <= Order.paid_fen)
        .values(refunded_fen=Order.refunded_fen + amount_fen)
        .execution_options(synchronize_session=False)
    )
    if line_added.rowcount != 1 or order_added.rowcount != 1:
        raise PaymentMismatch("refund exceeds what was paid")
    order = refund.order
    db.session.refresh(order)
    line = refund.line
    db.session.refresh(line)
    if refund.restock and order.status == PAID and line.sku_id is not None:
        db.session.execute(
            update(Sku)
            .where(Sku.id == line.sku_id)
            .values(stock=Sku.stock + refund.quantity)
            .execution_options(synchronize_session=False)
        )
    record_transaction(
        order.id, "refund_done", refund_id or refund.out_refund_no, amount_fen, "SUCCESS", payload
    )
    lines = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).all()
    for each in lines:
        db.session.refresh(each)
    if order.status == PAID and all(each.refunded_quantity == each.quantity for each in lines):
        move_order(order, CANCELLED, "system", "全部退款，订单关闭", cancelled_at=now)
    # Earnings, team totals and incentives: the refund pipeline, one door.
    refund_completed(refund, now)
    return True


def fail_refund(refund: Refund, refund_id: str, status: str, payload: dict) -> bool:
    """WeChat says the refund closed or went abnormal: mark it failed once (staff retry)."""
    from app.payments.client import record_transaction

    if refund.status != REFUND_APPROVED:
        return False
    message = "退款关闭" if status == "CLOSED" else "退款异常，请在商户平台处理"
    move_refund(refund, REFUND_FAILED, "wechat", message, review_note=message)
    record_transaction(
        refund.order_id,
        f"refund_{status.lower()}"[:16],
        refund_id or refund.out_refund_no,
        refund.amount_fen,
        status,
        payload,
    )
    db.session.flush()
    return True
