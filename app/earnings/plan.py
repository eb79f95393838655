"""The precedence plan: whether an order earns traditional commissions, 级差 (price
differences), or both. The one place that decides; the paid-order pipeline and the
commission simulator both ask it.

An order goes *through an ordering merchant* M when it is a merchant order (M bought for
its own customer at its level price) or its level-1 seller is M's distributor and M is
active (``app/cloud/price_difference.py`` has the whole rule). ``CloudSettings.precedence``
then says: ``price_difference`` (default) → price differences and no commission;
``commission`` → commissions only; ``both`` → both. Any other order earns commissions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.cloud.merchants import is_active, merchant_for_distributor
from app.cloud.models import MerchantOrder, OrderingMerchant
from app.cloud.pricing import get_cloud_settings
from app.core.batch import memo
from app.distribution.models import OrderAttribution
from app.extensions import db
from app.orders.models import Order


@dataclass(frozen=True)
class EarningsPlan:
    """What an order earns: traditional commissions, price differences, or both."""

    commissions: bool
    price_differences: bool
    merchant: OrderingMerchant | None  # the merchant the order went through
    merchant_order: bool  # M placed it at its level price


_OF_ORDERS = "merchants_of_orders"  # batch memo: {order id: (placed by, seller's merchant)}


def load_merchants_of_orders(order_ids: list[int]) -> None:
    """Inside a batch of follow-ups that writes no attribution: what ``merchant_of_order``
    reads, for every order in two queries (the merchant that placed it; the merchant
    row of its level-1 seller)."""
    known = memo(_OF_ORDERS, dict)
    ids = list(order_ids)
    placed = dict(
        db.session.execute(
            select(MerchantOrder.order_id, OrderingMerchant)
            .join(OrderingMerchant, OrderingMerchant.id == MerchantOrder.merchant_id)
            .where(MerchantOrder.order_id.in_(ids))
        ).all()
    )
    sellers = dict(
        db.session.execute(
            select(OrderAttribution.order_id, OrderingMerchant)
            .join(
                OrderingMerchant, OrderAttribution.distributor_id == OrderingMerchant.distributor_id
            )
            .where(OrderAttribution.order_id.in_(ids), OrderAttribution.level == 1)
        ).all()
    )
    known.update({i: (placed.get(i), sellers.get(i)) for i in ids})


def merchant_of_order(order: Order) -> tuple[OrderingMerchant | None, bool]:
    """(the ordering merchant ``order`` went through, whether it is a merchant order)."""
    known = memo(_OF_ORDERS, dict).get(order.id)
    if known is not None:
        placed, seller = known
        if placed is not None:
            return placed, True
        return (seller if seller is not None and is_active(seller) else None), False
    # One query for both ways in (most orders have neither): the merchant that placed it,
    # and the merchant row of its level-1 seller.
    placed_by, seller_merchant = db.session.execute(
        select(
            select(MerchantOrder.merchant_id)
            .where(MerchantOrder.order_id == order.id)
            .scalar_subquery(),
            select(OrderingMerchant.id)
            .join(
                OrderAttribution, OrderAttribution.distributor_id == OrderingMerchant.distributor_id
            )
            .where(OrderAttribution.order_id == order.id, OrderAttribution.level == 1)
            .scalar_subquery(),
        )
    ).one()
    if placed_by is not None:
        return db.session.get(OrderingMerchant, placed_by), True
    if seller_merchant is None:
        return None, False
    merchant = db.session.get(OrderingMerchant, seller_merchant)
    return (merchant if is_active(merchant) else None), False


def plan_for(merchant: OrderingMerchant | None, merchant_order: bool) -> EarningsPlan:
    """The precedence rule on its own: what an order through ``merchant`` earns."""
    if merchant is None:
        return EarningsPlan(True, False, None, False)
    precedence = get_cloud_settings().precedence
    return EarningsPlan(
        commissions=precedence in ("commission", "both"),
        price_differences=precedence in ("price_difference", "both"),
        merchant=merchant,
        merchant_order=merchant_order,
    )


def earnings_plan(order: Order) -> EarningsPlan:
    """THE decision for one placed order: commissions, price differences, or both."""
    return plan_for(*merchant_of_order(order))


def plan_for_seller(seller_distributor_id: int | None) -> EarningsPlan:
    """The decision for a retail order whose level-1 seller would be
    ``seller_distributor_id`` (the simulator's case): through that distributor's merchant
    when it is an active ordering merchant, else a plain distribution order."""
    if seller_distributor_id is None:
        return plan_for(None, False)
    merchant = merchant_for_distributor(seller_distributor_id)
    return plan_for(merchant if is_active(merchant) else None, False)
