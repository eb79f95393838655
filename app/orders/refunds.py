"""Refunds of order lines, the order's side: the refundable rule, request, rejection, and
the bookkeeping once WeChat has paid the money back (``book_refund``). Asking WeChat Pay
and the refund pipeline sit above, in ``app/payments/refunds.py``. Services flush only.

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
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update

from app.catalog.models import Sku
from app.core.money import format_yuan
from app.core.status import InvalidTransition, record_creation
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import (
    CANCELLED,
    COMPLETED,
    OPEN_REFUND_STATUSES,
    PAID,
    REFUND_APPROVED,
    REFUND_FAILED,
    REFUND_ONLY,
    REFUND_REFUNDED,
    REFUND_REJECTED,
    REFUND_REQUESTED,
    SHIPPED,
    Order,
    OrderLine,
    Refund,
)
from app.orders.services import OrderError, PaymentMismatch
from app.orders.states import move_order, move_refund

REFUNDABLE_ORDER_STATUSES = (PAID, SHIPPED, COMPLETED)
# Every refund neither rejected nor withdrawn (撤销) holds its units and fen.
COUNTED_REFUND_STATUSES = (*OPEN_REFUND_STATUSES, REFUND_REFUNDED, REFUND_FAILED)


def _lock_line(line_id: int) -> None:
    """Serialise refund bookkeeping on one line until the transaction ends."""
    db.session.execute(
        update(OrderLine)
        .where(OrderLine.id == line_id)
        .values(refunded_quantity=OrderLine.refunded_quantity)
        .execution_options(synchronize_session=False)
    )


def left_to_refund(line: OrderLine, refunds: Iterable[Refund]) -> tuple[int, int]:
    """(quantity, fen) of ``line`` that can still be asked for, given the line's refunds.

    The one rule: every refund not rejected or withdrawn (open, refunded, failed) holds
    its units and fen. The refund service, the Open API and the H5 pages all go through it.
    """
    counted = [r for r in refunds if r.status in COUNTED_REFUND_STATUSES]
    return (
        line.quantity - sum(r.quantity for r in counted),
        line.amount_fen - sum(r.amount_fen for r in counted),
    )


def refundable(line: OrderLine) -> tuple[int, int]:
    """(quantity, fen) of ``line`` that can still be asked for, read from the database.

    Refunds are read afresh (``populate_existing``), so a status changed by another
    transaction since this session loaded the row counts as it stands now.
    """
    refunds = db.session.scalars(
        select(Refund)
        .where(Refund.order_line_id == line.id)
        .execution_options(populate_existing=True)
    )
    return left_to_refund(line, refunds)


def refundable_quantity(order: Order, line: OrderLine, refunds: Iterable[Refund]) -> int:
    """Units of ``line`` the customer may still ask back (0 when the order cannot refund).

    ``refunds`` are the line's refunds (any status), as already loaded by the caller.
    """
    if order.status not in REFUNDABLE_ORDER_STATUSES:
        return 0
    return max(left_to_refund(line, refunds)[0], 0)


def request_refund(
    order: Order,
    line: OrderLine,
    quantity: int,
    reason: str,
    actor: str,
    *,
    kind: str = REFUND_ONLY,
    amount_fen: int | None = None,
    description: str = "",
    photos: Iterable[str] = (),
) -> Refund:
    """A customer asks to refund ``quantity`` units of ``line``; raise ``OrderError`` if not.

    ``amount_fen`` (after-sale, app/orders/aftersale.py) asks for less than the units are
    worth: at least 1 fen, at most what the rule below gives; None asks for all of it.
    """
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
    if amount_fen is not None:
        if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen < 1:
            raise OrderError("invalid_amount", "退款金额至少 ¥0.01")
        if amount_fen > amount:
            raise OrderError("invalid_amount", f"退款金额最多 {format_yuan(amount)}")
        amount = amount_fen
    refund = Refund(
        order_id=order.id,
        order_line_id=line.id,
        out_refund_no=f"{order.number}R{secrets.token_hex(4).upper()}",
        quantity=quantity,
        amount_fen=amount,
        reason=reason,
        status=REFUND_REQUESTED,
        restock=order.status == PAID,
        kind=kind,
        description=(description or "").strip()[:500],
        photos=list(photos),
    )
    db.session.add(refund)
    db.session.flush()
    record_creation("refund", refund.id, REFUND_REQUESTED, actor, reason)
    db.session.flush()
    return refund


def reject_refund(refund: Refund, actor: str, note: str) -> Refund:
    """Staff refuse a requested refund, saying why."""
    note = (note or "").strip()[:200]
    move_refund(
        refund, REFUND_REJECTED, actor, note or "拒绝退款", review_note=note, reviewed_at=utcnow()
    )
    return refund


def book_refund(refund: Refund, refund_id: str, amount_fen: int, now: datetime) -> bool:
    """The order's side of a refund WeChat paid back: apply it once. True only the first time.

    Moves the refund to refunded, adds it to its line and order (bounded), returns stock if
    nothing was shipped, and cancels a paid order whose every line is now fully refunded.
    ``complete_refund`` (``app/payments/refunds.py``) calls it, then records the
    transaction and runs the refund pipeline.
    """
    if amount_fen != refund.amount_fen:
        raise PaymentMismatch(f"refund amount {amount_fen} != {refund.amount_fen}")
    if refund.status == REFUND_REFUNDED:
        return False
    if refund.status == REFUND_REJECTED:
        raise PaymentMismatch("refund was rejected")
    if refund.status in (REFUND_REQUESTED, REFUND_FAILED):
        # WeChat's word wins: e.g. a timed-out request WeChat did carry out.
        move_refund(refund, REFUND_APPROVED, "wechat", "微信已受理退款")
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
    lines = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).all()
    for each in lines:
        db.session.refresh(each)
    if order.status == PAID and all(each.refunded_quantity == each.quantity for each in lines):
        move_order(order, CANCELLED, "system", "全部退款，订单关闭", cancelled_at=now)
    return True
