"""The order and refund state machines.

A transition is one conditional UPDATE (``WHERE status = <from>``), so two requests, a
notice and a timer, or two workers can never both move the same order: the loser sees
zero rows and gets ``InvalidTransition``. Every successful transition writes a
``StatusChange`` row. Services call these; nothing else assigns ``status``.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, update

from app.core.time import utcnow
from app.extensions import db
from app.orders.models import (
    CANCELLED,
    COMPLETED,
    PAID,
    PENDING_PAYMENT,
    REFUND_APPROVED,
    REFUND_FAILED,
    REFUND_REFUNDED,
    REFUND_REJECTED,
    REFUND_REQUESTED,
    SHIPPED,
    Order,
    Refund,
    StatusChange,
)

ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING_PAYMENT: frozenset({PAID, CANCELLED}),
    PAID: frozenset({SHIPPED, CANCELLED}),  # paid -> cancelled only when fully refunded
    SHIPPED: frozenset({COMPLETED}),
    COMPLETED: frozenset(),
    CANCELLED: frozenset(),
}

REFUND_TRANSITIONS: dict[str, frozenset[str]] = {
    REFUND_REQUESTED: frozenset({REFUND_APPROVED, REFUND_REJECTED}),
    REFUND_APPROVED: frozenset({REFUND_REFUNDED, REFUND_FAILED}),
    REFUND_FAILED: frozenset({REFUND_APPROVED}),  # staff may retry a failed refund
    REFUND_REJECTED: frozenset(),
    REFUND_REFUNDED: frozenset(),
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
}


class InvalidTransition(Exception):
    """A status change the state machine refuses (or another actor got there first)."""

    def __init__(self, subject: str, current: str, wanted: str):
        super().__init__(f"{subject} cannot go from {current} to {wanted}")
        self.subject = subject
        self.current = current
        self.wanted = wanted


@lru_cache(maxsize=64)
def _transition_statement(model, names: tuple[str, ...]):
    """The conditional UPDATE of ``model`` setting status and ``names``, built once.

    Built with bound parameters and reused: constructing a statement with literal values
    and its cache key on every call cost more than running it (half of a pay notice's
    CPU time). Values are plain Python values, typed by their columns.
    """
    columns = model.__table__.c
    return (
        update(model)
        .where(model.id == bindparam("_id"), model.status == bindparam("_from"))
        .values(
            status=bindparam("_to", type_=columns.status.type),
            **{name: bindparam(f"_v_{name}", type_=columns[name].type) for name in names},
        )
        .returning(model)
        # RETURNING the row with populate_existing refreshes ``row`` (status, the values,
        # any onupdate column) from the UPDATE itself: no second SELECT.
        .execution_options(synchronize_session=False, populate_existing=True)
    )


_HISTORY_INSERT = insert(StatusChange.__table__)


def record_transition(
    subject: str,
    subject_id: int,
    from_status: str | None,
    to_status: str,
    actor: str,
    reason: str,
    at: datetime | None = None,
) -> None:
    """Write the history row of a transition that was just made (a plain table INSERT,
    built once: the row is never read back in the session that writes it)."""
    db.session.execute(
        _HISTORY_INSERT,
        {
            "subject": subject,
            "subject_id": subject_id,
            "from_status": from_status,
            "to_status": to_status,
            "actor": actor,
            "reason": reason[:200],
            "created_at": at or utcnow(),
        },
    )


def move_status(
    model, row, table_transitions, subject: str, to: str, actor: str, reason: str, **values: Any
) -> None:
    """Move ``row`` (any model with ``id`` and ``status``) along ``table_transitions``.

    One conditional UPDATE plus a ``StatusChange`` row; raises ``InvalidTransition`` when
    the move is not allowed or another actor moved the row first. Orders, refunds,
    withdrawals and distributors all use it. ``values`` are plain values (not SQL
    expressions) for columns set in the same UPDATE.
    """
    current = row.status
    if to not in table_transitions.get(current, ()):
        raise InvalidTransition(subject, current, to)
    names = tuple(sorted(values))
    params = {"_id": row.id, "_from": current, "_to": to}
    params.update({f"_v_{name}": values[name] for name in names})
    moved = db.session.execute(_transition_statement(model, names), params).scalar_one_or_none()
    if moved is None:
        db.session.refresh(row)
        raise InvalidTransition(subject, row.status, to)
    record_transition(subject, row.id, current, to, actor, reason)


def move_order(order: Order, to: str, actor: str, reason: str = "", **values: Any) -> None:
    """Move ``order`` to status ``to`` (setting ``values`` in the same UPDATE), or raise."""
    move_status(Order, order, ORDER_TRANSITIONS, "order", to, actor, reason, **values)


def move_refund(refund: Refund, to: str, actor: str, reason: str = "", **values: Any) -> None:
    """Move ``refund`` to status ``to`` (setting ``values`` in the same UPDATE), or raise."""
    move_status(Refund, refund, REFUND_TRANSITIONS, "refund", to, actor, reason, **values)


def record_creation(subject: str, subject_id: int, status: str, actor: str, reason: str) -> None:
    """Write the first history row of a new order, refund, agent... (no "from" status)."""
    record_transition(subject, subject_id, None, status, actor, reason)
