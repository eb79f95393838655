"""What a customer reads of their orders: the list by tab, an order's refunds and history.

Shared by the H5 pages (app/orders/views.py) and the JSON API (app/api/orders.py), so both
list, count and show exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, func, select

from app.core.models import StatusChange
from app.extensions import db
from app.orders.models import ORDER_STATUSES, Order, Refund

REFUND_TAB = "refund"  # the 退款 tab: orders with at least one refund request


def customer_orders(
    user_id: int, status: str | None, page: int, per_page: int
) -> tuple[Sequence[Order], int]:
    """(orders, total) of one customer, newest first, optionally one tab only."""
    query = select(Order).where(Order.user_id == user_id)
    if status == REFUND_TAB:
        query = query.where(exists().where(Refund.order_id == Order.id))
    elif status in ORDER_STATUSES:
        query = query.where(Order.status == status)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.order_by(Order.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return rows, total


def refunds_by_line(order_ids: list[int]) -> dict[int, list[Refund]]:
    """The refunds (any status) of the given orders, by order line id, oldest first."""
    found: dict[int, list[Refund]] = {}
    if not order_ids:
        return found
    rows = db.session.scalars(
        select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.id)
    )
    for refund in rows:
        found.setdefault(refund.order_line_id, []).append(refund)
    return found


def order_history(order: Order) -> list[StatusChange]:
    """The order's status changes, oldest first."""
    return list(
        db.session.scalars(
            select(StatusChange)
            .where(StatusChange.subject == "order", StatusChange.subject_id == order.id)
            .order_by(StatusChange.id)
        )
    )
