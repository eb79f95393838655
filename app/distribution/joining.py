"""Joining by threshold: a customer whose paid purchases reach the shop's threshold
becomes a distributor (join mode ``threshold``). The paid-order pipeline asks after every
payment; the distributor centre shows the progress.

"Paid purchases" are goods only, like every other sales figure (``team.py``): what the
customer paid for the lines (``items_fen``, after discounts, without shipping) less what
was refunded, on orders that are paid, shipped or completed.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.core.batch import memo
from app.distribution.binding import current_binding
from app.distribution.distributors import (
    create_distributor,
    distributor_for_user,
    forget_distributor_of_user,
    get_distribution_settings,
)
from app.distribution.models import Distributor
from app.distribution.team import SALES_STATUSES
from app.extensions import db
from app.orders.models import Order

_OF_USERS = "paid_purchases_of_users"  # batch memo: {user id: fen}


def load_paid_purchases(user_ids) -> None:
    """Inside a batch of follow-ups (which changes no order): ``paid_purchases_fen`` of
    these users (the buyers) in one query."""
    known = memo(_OF_USERS, dict)
    ids = sorted(set(user_ids) - set(known))
    if not ids:
        return
    found = dict(
        db.session.execute(
            select(Order.user_id, func.sum(Order.items_fen - Order.refunded_fen))
            .where(Order.user_id.in_(ids), Order.status.in_(SALES_STATUSES))
            .group_by(Order.user_id)
        ).all()
    )
    known.update({i: int(found.get(i) or 0) for i in ids})


def paid_purchases_fen(user_id: int) -> int:
    """What the customer has paid for goods (no shipping) on paid, shipped or completed
    orders, net of refunds."""
    known = memo(_OF_USERS, dict)
    if user_id in known:
        return known[user_id]
    total = db.session.scalar(
        select(func.coalesce(func.sum(Order.items_fen - Order.refunded_fen), 0)).where(
            Order.user_id == user_id, Order.status.in_(SALES_STATUSES)
        )
    )
    return int(total or 0)


def join_by_threshold(user_id: int) -> Distributor | None:
    """Threshold join mode: make the customer a distributor once their paid purchases
    reach ``join_threshold_fen`` (never a fee: only real, unrefunded purchases count).

    They join under the distributor they are bound to (if active). Returns the new
    distributor, or None when nothing changed (already one, below the threshold, another
    mode, or a concurrent job made them one first).
    """
    settings = get_distribution_settings()
    if settings.join_mode != "threshold" or distributor_for_user(user_id) is not None:
        return None
    if paid_purchases_fen(user_id) < settings.join_threshold_fen:
        return None
    binding = current_binding(user_id)
    parent = None
    if binding is not None:
        candidate = db.session.get(Distributor, binding.distributor_id)
        parent = candidate if candidate is not None and candidate.status == "active" else None
    try:
        with db.session.begin_nested():
            return create_distributor(user_id, parent)
    except IntegrityError:  # another job of the same customer got there first
        forget_distributor_of_user(user_id)
        return None
