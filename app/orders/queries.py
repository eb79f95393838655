"""What a customer reads of their orders: the list by tab, an order's refunds and history.

Shared by the H5 pages (app/orders/views.py) and the JSON API (app/api/orders.py), so both
list, count and show exactly the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import abort
from sqlalchemy import exists, func, select

from app.core.models import StatusChange
from app.core.params import MAX_ID
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


def own_order_or_404(order_id: int, user_id: int) -> Order:
    """The order when it is ``user_id``'s; anyone else's, or none, is a 404 page (an id past
    any row answers before a query: PostgreSQL refuses such an integer)."""
    order = db.session.get(Order, order_id) if order_id <= MAX_ID else None
    if order is None or order.user_id != user_id:
        abort(404, description="订单不存在")
    return order
