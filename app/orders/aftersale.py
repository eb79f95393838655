"""After-sale (售后): 仅退款 and 退货退款 on top of the ``Refund`` model. Services flush only.

A refund has a ``kind``; each kind has its own transition map in ``app/orders/states.py``
(``REFUND_TRANSITIONS``, ``RETURN_TRANSITIONS``) and every move is one conditional UPDATE
plus a ``StatusChange`` row (``app/core/status.py``), so the timeline a customer and staff
see is exactly the recorded moves.

- 仅退款: requested → approved (staff; WeChat Pay is asked) → refunded / failed.
- 退货退款: requested → return_approved (staff agree) → returning (the customer enters the
  return parcel's carrier and number) → received (staff confirm receipt) → approved (the
  refund is asked of WeChat Pay through ``app/payments/refunds.approve_refund``, at the edge)
  → refunded / failed.
- 撤销: the customer withdraws a request nobody has acted on (requested), or a return not yet
  sent (return_approved). A withdrawn request holds nothing: the line can be asked again.
- Staff may reject a request, or a returned parcel (returning → rejected).

Money: the amount shown before submitting is what ``request_refund`` would give for the
quantity (``amount_for``); the customer may lower it, down to ¥0.01. Commission reversal,
stock and the order's refunded total follow the refund pipeline unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select

from app.core.models import StatusChange
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import (
    COMPLETED,
    OPEN_REFUND_STATUSES,
    REFUND_CANCELLED,
    REFUND_KINDS,
    REFUND_ONLY,
    REFUND_RECEIVED,
    REFUND_REFUNDED,
    REFUND_RETURN_APPROVED,
    REFUND_RETURNING,
    RETURN_REFUND,
    SHIPPED,
    Order,
    OrderLine,
    Refund,
)
from app.orders.refunds import left_to_refund, request_refund
from app.orders.services import OrderError
from app.orders.shipping import normalise_carrier, normalise_tracking_number
from app.orders.states import move_refund

KIND_LABELS = {REFUND_ONLY: "仅退款", RETURN_REFUND: "退货退款"}
KIND_HINTS = {
    REFUND_ONLY: "未收到货，或与商家协商一致不用退货",
    RETURN_REFUND: "已收到货，需要把商品寄回给商家",
}
REASONS = (
    "不想要了",
    "拍错/多拍",
    "商品质量问题",
    "商品与描述不符",
    "少件/漏发",
    "商品破损",
    "未按约定时间发货",
    "其他",
)
MAX_PHOTOS = 3
MAX_DESCRIPTION = 500
AFTERSALE_OPEN = "售后中"
AFTERSALE_DONE = "退款成功"


def amount_for(line: OrderLine, quantity: int, refunds: Iterable[Refund]) -> int:
    """What a refund of ``quantity`` units of ``line`` is worth now, in fen (0 if none).

    The same rule ``request_refund`` applies: proportional, rounded down; the request that
    takes the last units gets everything left.
    """
    left_qty, left_fen = left_to_refund(line, refunds)
    if quantity < 1 or quantity > left_qty or left_fen <= 0:
        return 0
    amount = left_fen if quantity == left_qty else line.amount_fen * quantity // line.quantity
    return max(min(amount, left_fen), 0)


def kinds_for(order: Order) -> tuple[str, ...]:
    """The kinds the customer may choose: 退货退款 only once something was shipped."""
    if order.status in (SHIPPED, COMPLETED):
        return REFUND_KINDS
    return (REFUND_ONLY,)


def apply(
    order: Order,
    line: OrderLine,
    *,
    kind: str,
    quantity: int,
    amount_fen: int | None,
    reason: str,
    description: str,
    photos: Sequence[str],
    actor: str,
) -> Refund:
    """The customer applies for after-sale on ``line``; ``OrderError`` when refused.

    ``photos`` are file names already stored (checked and re-encoded by the edge).
    """
    if kind not in REFUND_KINDS:
        raise OrderError("invalid_kind", "请选择售后类型")
    if kind not in kinds_for(order):
        raise OrderError("invalid_kind", "商品尚未发货，请选择仅退款", status=409)
    if reason not in REASONS:
        raise OrderError("invalid_reason", "请选择退款原因")
    description = (description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise OrderError("invalid_description", f"问题描述最多 {MAX_DESCRIPTION} 个字")
    if len(photos) > MAX_PHOTOS:
        raise OrderError("too_many_photos", f"最多上传 {MAX_PHOTOS} 张图片")
    refund = request_refund(
        order,
        line,
        quantity,
        reason,
        actor,
        kind=kind,
        amount_fen=amount_fen,
        description=description,
        photos=photos,
    )
    return refund


def cancel(refund: Refund, actor: str) -> Refund:
    """The customer withdraws (撤销) the request; ``InvalidTransition`` once staff acted."""
    move_refund(refund, REFUND_CANCELLED, actor, "买家撤销申请")
    return refund


def approve_return(refund: Refund, actor: str, note: str = "") -> Refund:
    """Staff agree to a 退货退款: the customer may now send the goods back."""
    note = (note or "").strip()[:200]
    move_refund(
        refund,
        REFUND_RETURN_APPROVED,
        actor,
        note or "商家同意退货，请寄回商品",
        review_note=note,
        reviewed_at=utcnow(),
    )
    return refund


def send_return(refund: Refund, carrier: str, tracking_number: str, actor: str) -> Refund:
    """The customer enters the return parcel (same carriers as shipping); or raise."""
    carrier_name = normalise_carrier(carrier)
    number = normalise_tracking_number(tracking_number)
    move_refund(
        refund,
        REFUND_RETURNING,
        actor,
        f"买家已寄回：{carrier_name} {number}",
        return_carrier=carrier_name,
        return_tracking_number=number,
    )
    return refund


def receive_return(refund: Refund, actor: str) -> Refund:
    """Staff confirm the returned parcel arrived. The edge then approves the refund
    (``app/payments/refunds.approve_refund``), which asks WeChat Pay."""
    move_refund(refund, REFUND_RECEIVED, actor, "商家确认收到退货")
    return refund


def timeline(refund: Refund) -> list[StatusChange]:
    """The refund's recorded moves, oldest first."""
    return list(
        db.session.scalars(
            select(StatusChange)
            .where(StatusChange.subject == "refund", StatusChange.subject_id == refund.id)
            .order_by(StatusChange.id)
        )
    )


def badge(refunds: Iterable[Refund]) -> str:
    """售后中 while any refund of the order is open, 退款成功 once one was refunded, else ''."""
    statuses = {r.status for r in refunds}
    if statuses & set(OPEN_REFUND_STATUSES):
        return AFTERSALE_OPEN
    if REFUND_REFUNDED in statuses:
        return AFTERSALE_DONE
    return ""


def customer_step(refund: Refund) -> str:
    """One sentence for the customer: what happens next."""
    return {
        "requested": "等待商家处理，商家同意前可撤销申请",
        REFUND_RETURN_APPROVED: "商家已同意退货，请寄回商品并填写快递单号",
        REFUND_RETURNING: "商品寄回中，商家收货后将退款",
        REFUND_RECEIVED: "商家已收到退货，正在退款",
        "approved": "商家已同意，退款将原路退回微信",
        "refunded": "退款成功，已原路退回微信",
        "rejected": "商家拒绝了申请",
        "failed": "退款遇到问题，商家正在处理",
        REFUND_CANCELLED: "你已撤销申请",
    }.get(refund.status, "")
