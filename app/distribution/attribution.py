"""Who stands at each commission level of an order, fixed once and never changed.

Level 1 is the distributor the buyer is bound to when the order is placed, or the buyer
themself when the buyer is an active distributor and the shop pays self-purchase
commission. Levels 2 and 3 are level 1's parent and grandparent, read from the closure
table, up to the shop's configured number of levels.

A disabled (or pending) distributor at some level earns nothing: that level is simply
absent and its share stays with the merchant; the next ancestor is NOT moved up a level.
The chain is always walked from the level-1 distributor, even when level 1 is itself
absent, so a disabled seller's parent still earns as level 2.

The rows are written at placement (``place_order``); later rebinding never changes them.
In bind-on-first-payment mode the buyer is only bound when the order is paid, so the
commission job attributes such an order at payment time when it has no rows yet
(``attribute_order`` with the binding in force then).
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from app.core.batch import memo
from app.distribution.binding import current_binding
from app.distribution.distributors import (
    ancestors,
    distributor_for_user,
    get_distribution_settings,
)
from app.distribution.models import Distributor, OrderAttribution
from app.extensions import db
from app.orders.models import Order

# Built once with a bound parameter: every commission job and refund reads it.
_ATTRIBUTION_OF_ORDER = (
    select(OrderAttribution)
    .where(OrderAttribution.order_id == bindparam("order_id"))
    .order_by(OrderAttribution.level)
)


_OF_ORDERS = "attributions_of_orders"  # batch memo: {order id: rows, level 1 first}
_ATTRIBUTIONS_OF_ORDERS = (
    select(OrderAttribution)
    .where(OrderAttribution.order_id.in_(bindparam("order_ids", expanding=True)))
    .order_by(OrderAttribution.order_id, OrderAttribution.level)
)


def attribution_for(order_id: int) -> list[OrderAttribution]:
    """The order's attribution rows, level 1 first (empty when nobody earns); inside a
    batch of follow-ups, as ``load_attributions`` read them."""
    known = memo(_OF_ORDERS, dict)
    if order_id in known:
        return list(known[order_id])
    return list(db.session.scalars(_ATTRIBUTION_OF_ORDER, {"order_id": order_id}))


def load_attributions(order_ids: list[int]) -> None:
    """Inside a batch of follow-ups that writes no attribution (no binding on first
    payment): read the orders' attribution rows in one query for ``attribution_for``."""
    known = memo(_OF_ORDERS, dict)
    found: dict[int, list[OrderAttribution]] = {i: [] for i in order_ids}
    for row in db.session.scalars(_ATTRIBUTIONS_OF_ORDERS, {"order_ids": list(order_ids)}):
        found[row.order_id].append(row)
    known.update(found)


def _level_one(user_id: int, self_purchase: bool) -> tuple[Distributor | None, bool]:
    """(the level-1 distributor, whether it is the buyer's own purchase)."""
    if self_purchase:
        own = distributor_for_user(user_id)
        if own is not None and own.status == "active":
            return own, True
    binding = current_binding(user_id)
    if binding is None:
        return None, False
    return db.session.get(Distributor, binding.distributor_id), False


def buyer_chain(
    user_id: int, levels: int, self_purchase: bool
) -> tuple[list[tuple[int, int]], bool]:
    """[(level, distributor_id)] for an order ``user_id`` places now, whatever each
    distributor's status, and whether level 1 is the buyer's own purchase. Reads only;
    ``attribute_order`` and the commission simulator both use it."""
    seller, own_purchase = _level_one(user_id, self_purchase)
    if seller is None:
        return [], False
    chain: list[tuple[int, int]] = [(1, seller.id)]
    above = ancestors(seller.id, levels - 1)
    chain += [(depth + 1, ancestor) for depth, ancestor in above]
    return chain, own_purchase


def attribute_order(order: Order) -> list[OrderAttribution]:
    """Record who earns at each level of ``order``; return the rows (flushes).

    Does nothing when distribution is off or the order is already attributed (the unique
    (order_id, level) key is the final guard). Only active distributors get a row.
    """
    settings = get_distribution_settings()
    if not settings.enabled:
        return []
    existing = attribution_for(order.id)
    if existing:
        return existing
    memo(_OF_ORDERS, dict).pop(order.id, None)  # written now: read again from here on
    chain, own_purchase = buyer_chain(order.user_id, settings.levels, settings.self_purchase)
    if not chain:
        return []
    statuses = dict(
        db.session.execute(
            select(Distributor.id, Distributor.status).where(
                Distributor.id.in_([distributor_id for _level, distributor_id in chain])
            )
        ).all()
    )
    rows = []
    for level, distributor_id in chain:
        if statuses.get(distributor_id) != "active":
            continue  # that level's share stays with the merchant
        row = OrderAttribution(
            order_id=order.id,
            level=level,
            distributor_id=distributor_id,
            self_purchase=own_purchase and level == 1,
        )
        db.session.add(row)
        rows.append(row)
    db.session.flush()
    return rows
