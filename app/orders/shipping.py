"""Shipping and completing orders (the merchant's transitions). Services flush only.

Refunds and shipping meet here. A paid order may have refunds open on some lines: staff
still ship what is left (a customer who returns one of three cups still wants the other
two), and the pages show a warning. Only when every unit of every line is refunded or
being refunded is there nothing to ship, and shipping is refused. A line's refund that
completes after shipping returns no stock (``book_refund`` checks the order status).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select

from app.core.status import InvalidTransition
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import (
    COMPLETED,
    OPEN_REFUND_STATUSES,
    PAID,
    REFUND_REFUNDED,
    SHIPPED,
    Order,
    Refund,
)
from app.orders.services import OrderError
from app.orders.states import move_order
from app.signals import order_completed, order_shipped

# The carriers most Chinese shops use, by a short code (kuaidi-style) and the name staff
# see and the order keeps. "其他" covers the rest (e.g. a local courier).
CARRIERS: dict[str, str] = {
    "SF": "顺丰速运",
    "ZTO": "中通快递",
    "YTO": "圆通速递",
    "YD": "韵达快递",
    "STO": "申通快递",
    "EMS": "EMS",
    "JD": "京东物流",
    "JT": "极兔速递",
    "OTHER": "其他",
}
# Short names people type (顺丰, 中通...) map to the same carrier.
_ALIASES = {
    "顺丰": "SF",
    "中通": "ZTO",
    "圆通": "YTO",
    "韵达": "YD",
    "申通": "STO",
    "邮政": "EMS",
    "京东": "JD",
    "极兔": "JT",
}
TRACKING_RE = re.compile(r"^[A-Za-z0-9]{6,40}$")


@dataclass(frozen=True)
class ShippingWarning:
    """An open refund staff should know about before shipping."""

    line_title: str
    quantity: int

    @property
    def message(self) -> str:
        return f"“{self.line_title}”有 {self.quantity} 件退款尚未完成，发货前请确认是否仍需发出"


def normalise_carrier(value: str | None) -> str:
    """The stored carrier name for a code (``SF``), name (``顺丰速运``) or short name (``顺丰``).

    Raises ``OrderError`` (422, ``invalid_carrier``) for anything else.
    """
    text = (value or "").strip()
    code = text.upper()
    if code in CARRIERS:
        return CARRIERS[code]
    if text in CARRIERS.values():
        return text
    if text in _ALIASES:
        return CARRIERS[_ALIASES[text]]
    raise OrderError("invalid_carrier", "请选择快递公司", status=422)


def normalise_tracking_number(value: str | None) -> str:
    """The tracking number without spaces, upper case; 6-40 letters and digits or ``OrderError``."""
    text = re.sub(r"\s+", "", value or "").upper()
    if not text:
        raise OrderError("invalid_tracking_number", "请填写快递单号", status=422)
    if not TRACKING_RE.match(text):
        raise OrderError("invalid_tracking_number", "快递单号应为 6-40 位字母或数字", status=422)
    return text


def _open_and_done(order: Order) -> dict[int, tuple[int, int]]:
    """{line_id: (units being refunded, units refunded)} for ``order``."""
    rows = db.session.execute(
        select(Refund.order_line_id, Refund.status, func.sum(Refund.quantity))
        .where(
            Refund.order_id == order.id,
            Refund.status.in_((*OPEN_REFUND_STATUSES, REFUND_REFUNDED)),
        )
        .group_by(Refund.order_line_id, Refund.status)
    ).all()
    result: dict[int, tuple[int, int]] = {}
    for line_id, status, quantity in rows:
        open_qty, done_qty = result.get(line_id, (0, 0))
        if status == REFUND_REFUNDED:
            done_qty += int(quantity)
        else:
            open_qty += int(quantity)
        result[line_id] = (open_qty, done_qty)
    return result


def shipping_warnings(order: Order) -> list[ShippingWarning]:
    """Refunds still open on ``order``'s lines (requested or approved, not yet refunded)."""
    counts = _open_and_done(order)
    warnings = []
    for line in order.lines:
        open_qty, _done = counts.get(line.id, (0, 0))
        if open_qty:
            warnings.append(ShippingWarning(line.title, open_qty))
    return warnings


def units_to_ship(order: Order) -> int:
    """Units of ``order`` neither refunded nor being refunded."""
    counts = _open_and_done(order)
    return sum(max(0, line.quantity - sum(counts.get(line.id, (0, 0)))) for line in order.lines)


def ship_order(order: Order, carrier: str, tracking_number: str, actor: str) -> Order:
    """Mark a paid order shipped with its carrier and tracking number, or raise.

    ``OrderError`` (422) for a bad carrier or tracking number, ``OrderError`` (409) when
    every unit is refunded or being refunded, ``InvalidTransition`` when the order is not
    awaiting shipment (including when another request shipped it first).
    """
    carrier_name = normalise_carrier(carrier)
    number = normalise_tracking_number(tracking_number)
    if order.status != PAID:
        raise InvalidTransition("order", order.status, SHIPPED)
    if units_to_ship(order) == 0:
        raise OrderError(
            "nothing_to_ship", "订单商品均已退款或正在退款，无需发货；请先处理退款", status=409
        )
    move_order(
        order,
        SHIPPED,
        actor,
        f"发货：{carrier_name} {number}",
        carrier=carrier_name,
        tracking_number=number,
        shipped_at=utcnow(),
    )
    # Listeners (the buyer's WeChat notice) write in this transaction, sent after the commit.
    order_shipped.send(__name__, order=order)
    return order


def complete_order(order: Order, actor: str, reason: str = "商家确认订单完成") -> Order:
    """Move a shipped order to completed (staff confirm receipt for the customer), or raise."""
    if order.status != SHIPPED:
        raise InvalidTransition("order", order.status, COMPLETED)
    move_order(order, COMPLETED, actor, reason, completed_at=utcnow())
    # The pipeline's listener dates the order's pending money (settle_after), same transaction.
    order_completed.send(__name__, order=order)
    return order
