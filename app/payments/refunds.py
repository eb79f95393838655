"""Refunds through WeChat Pay: staff approval asks WeChat to pay back, WeChat's word
(its answer or its notice) completes or fails the refund. Services flush only.

The path reads one way: ``approve_refund`` asks WeChat Pay; ``complete_refund`` books the
refund on the order's side (``app/orders/refunds.book_refund``: line, order, stock, the
cancellation of an order refunded in full), records the transaction, then runs the refund
pipeline (``app/earnings/on_refund.refund_completed``: earnings, team totals, incentives).
"""

from __future__ import annotations

from sqlalchemy import update

from app.core.time import utcnow
from app.earnings.on_refund import refund_completed
from app.extensions import db
from app.orders.models import PAID, REFUND_APPROVED, REFUND_FAILED, Refund
from app.orders.refunds import book_refund
from app.orders.states import move_refund
from app.payments.client import PaymentError, record_transaction
from app.payments.client import request_refund as ask_wechat_to_refund


def approve_refund(refund: Refund, staff_actor: str) -> Refund:
    """Staff approve: the refund moves to approved and WeChat is asked to pay it back.

    On ``PaymentError`` the refund has been moved to failed (flushed) with WeChat's message
    in ``review_note``: commit to keep that visible (staff may approve again), or roll back
    to leave it requested. Asking again is safe: WeChat dedupes by out_refund_no.
    """
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
        answer = ask_wechat_to_refund(refund)
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


def complete_refund(refund: Refund, refund_id: str, amount_fen: int, payload: dict) -> bool:
    """WeChat says the money went back: apply it once. True only the first time.

    The order's side first (``book_refund``: the refund, its line and order, stock, the
    cancellation of an order refunded in full), then the transaction, then the refund
    pipeline (``app/earnings/on_refund.py``) takes back earnings, team sales and incentives.
    """
    now = utcnow()
    if not book_refund(refund, refund_id, amount_fen, now):
        return False
    record_transaction(
        refund.order_id,
        "refund_done",
        refund_id or refund.out_refund_no,
        amount_fen,
        "SUCCESS",
        payload,
    )
    # Earnings, team totals and incentives: the refund pipeline, one door.
    refund_completed(refund, now)
    return True


def fail_refund(refund: Refund, refund_id: str, status: str, payload: dict) -> bool:
    """WeChat says the refund closed or went abnormal: mark it failed once (staff retry)."""
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
