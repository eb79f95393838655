"""The order and refund state machines: which status may follow which, and their labels.

Rows move through ``app.core.status.move_status`` (one conditional UPDATE plus a
``StatusChange`` row; ``InvalidTransition`` when refused or beaten). Services call these;
nothing else assigns ``status``.
"""

from __future__ import annotations

from typing import Any

from app.core.status import move_status
from app.orders.models import (
    CANCELLED,
    COMPLETED,
    PAID,
    PENDING_PAYMENT,
    REFUND_APPROVED,
    REFUND_CANCELLED,
    REFUND_FAILED,
    REFUND_ONLY,
    REFUND_RECEIVED,
    REFUND_REFUNDED,
    REFUND_REJECTED,
    REFUND_REQUESTED,
    REFUND_RETURN_APPROVED,
    REFUND_RETURNING,
    RETURN_REFUND,
    SHIPPED,
    Order,
    Refund,
)

ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING_PAYMENT: frozenset({PAID, CANCELLED}),
    PAID: frozenset({SHIPPED, CANCELLED}),  # paid -> cancelled only when fully refunded
    SHIPPED: frozenset({COMPLETED}),
    COMPLETED: frozenset(),
    CANCELLED: frozenset(),
}

# 仅退款 (refund only): staff approve, WeChat Pay pays back. The customer may withdraw
# (撤销) while nobody has acted on it yet.
REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    REFUND_REQUESTED: frozenset({REFUND_APPROVED, REFUND_REJECTED, REFUND_CANCELLED}),
    REFUND_APPROVED: frozenset({REFUND_REFUNDED, REFUND_FAILED}),
    REFUND_FAILED: frozenset({REFUND_APPROVED}),  # staff may retry a failed refund
    REFUND_REJECTED: frozenset(),
    REFUND_REFUNDED: frozenset(),
    REFUND_CANCELLED: frozenset(),
}

# 退货退款 (return and refund): staff agree to take the goods back, the customer sends
# the parcel (carrier and number), staff confirm receipt, then the refund is approved and
# asked of WeChat Pay like any other. Staff may still refuse a parcel that came back wrong.
RETURN_TRANSITIONS: dict[str, frozenset[str]] = {
    REFUND_REQUESTED: frozenset({REFUND_RETURN_APPROVED, REFUND_REJECTED, REFUND_CANCELLED}),
    REFUND_RETURN_APPROVED: frozenset({REFUND_RETURNING, REFUND_CANCELLED}),
    REFUND_RETURNING: frozenset({REFUND_RECEIVED, REFUND_REJECTED}),
    REFUND_RECEIVED: frozenset({REFUND_APPROVED}),
    REFUND_APPROVED: frozenset({REFUND_REFUNDED, REFUND_FAILED}),
    REFUND_FAILED: frozenset({REFUND_APPROVED}),
    REFUND_REJECTED: frozenset(),
    REFUND_REFUNDED: frozenset(),
    REFUND_CANCELLED: frozenset(),
}

REFUND_TRANSITIONS_BY_KIND: dict[str, dict[str, frozenset[str]]] = {
    REFUND_ONLY: REFUND_TRANSITIONS,
    RETURN_REFUND: RETURN_TRANSITIONS,
}

ORDER_STATUS_LABELS = {
    PENDING_PAYMENT: "待付款",
    PAID: "待发货",
    SHIPPED: "待收货",
    COMPLETED: "已完成",
    CANCELLED: "已取消",
}

REFUND_STATUS_LABELS = {
    REFUND_REQUESTED: "退款申请中",
    REFUND_APPROVED: "退款处理中",
    REFUND_REJECTED: "退款已拒绝",
    REFUND_REFUNDED: "已退款",
    REFUND_FAILED: "退款失败",
    REFUND_CANCELLED: "已撤销",
    REFUND_RETURN_APPROVED: "待寄回商品",
    REFUND_RETURNING: "商品寄回中",
    REFUND_RECEIVED: "商家已收货",
}


def move_order(order: Order, to: str, actor: str, reason: str = "", **values: Any) -> None:
    """Move ``order`` to status ``to`` (setting ``values`` in the same UPDATE), or raise."""
    move_status(Order, order, ORDER_TRANSITIONS, "order", to, actor, reason, **values)


def move_refund(refund: Refund, to: str, actor: str, reason: str = "", **values: Any) -> None:
    """Move ``refund`` to status ``to`` along its kind's map (setting ``values`` in the
    same UPDATE), or raise ``InvalidTransition``."""
    transitions = REFUND_TRANSITIONS_BY_KIND.get(refund.kind or REFUND_ONLY, REFUND_TRANSITIONS)
    move_status(Refund, refund, transitions, "refund", to, actor, reason, **values)
