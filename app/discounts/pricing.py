"""The one place a unit price is decided: ``unit_prices``.

The product page, the cart, the checkout (``orders.services.create_order``) and the 分享赚
estimates all ask here, so what a page shows is what an order placed at that moment
charges. A SKU's unit price is its list price (``Sku.price_fen``), or during a running
timed discount of its product:

- ``price`` mode: the SKU's set discount price (a SKU without one keeps its list price);
- ``percent`` mode: ``price_fen * (10000 - percent_off_bp) // 10000``, rounded down to
  the fen (the customer keeps the odd fraction), at least 1 fen.

A discount price is never above the list price. "Running" means ``starts_at <= now <
ends_at`` and not ended early. Stock is not touched here: the checkout's stock check is
the same with or without a discount.

``commission_exempt``: the product's commissions are switched off for discounted sales
(``DiscountProductSetting.commission_on`` false) and this SKU is discounted now. The
order line keeps it (``order_lines.commission_exempt``); the level calculator skips it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select

from app.catalog.models import Sku
from app.core.time import utcnow
from app.discounts.models import DiscountProductSetting, TimedDiscount, TimedDiscountPrice
from app.extensions import db

BP_DENOMINATOR = 10_000

_RUNNING = (
    select(TimedDiscount)
    .where(
        TimedDiscount.product_id.in_(bindparam("product_ids", expanding=True)),
        TimedDiscount.starts_at <= bindparam("now"),
        TimedDiscount.ends_at > bindparam("now"),
        TimedDiscount.ended_at.is_(None),
    )
    .order_by(TimedDiscount.product_id, TimedDiscount.starts_at)
)
_PRICES_OF = select(TimedDiscountPrice).where(
    TimedDiscountPrice.discount_id.in_(bindparam("ids", expanding=True))
)
_COMMISSION_OFF = select(DiscountProductSetting.product_id).where(
    DiscountProductSetting.product_id.in_(bindparam("product_ids", expanding=True)),
    DiscountProductSetting.commission_on.is_(False),
)


@dataclass(frozen=True)
class UnitPrice:
    """What one unit of a SKU costs now, and why."""

    sku_id: int
    price_fen: int  # what is charged
    list_price_fen: int  # Sku.price_fen
    discount: TimedDiscount | None = None  # the running discount that set price_fen
    commission_exempt: bool = False

    @property
    def discounted(self) -> bool:
        return self.discount is not None and self.price_fen < self.list_price_fen


def percent_price(list_price_fen: int, percent_off_bp: int) -> int:
    """``list_price_fen`` less ``percent_off_bp``, rounded down to the fen, at least 1."""
    return max(1, list_price_fen * (BP_DENOMINATOR - percent_off_bp) // BP_DENOMINATOR)


def running_discounts(product_ids: Iterable[int], now: datetime | None = None) -> dict:
    """{product id: its running TimedDiscount} for ``product_ids`` (one query)."""
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    found: dict[int, TimedDiscount] = {}
    for row in db.session.scalars(_RUNNING, {"product_ids": ids, "now": now or utcnow()}):
        found.setdefault(row.product_id, row)  # never two (services refuse overlaps)
    return found


def running_discount(product_id: int, now: datetime | None = None) -> TimedDiscount | None:
    """The product's running discount, or None."""
    return running_discounts([product_id], now).get(product_id)


def unit_prices(skus: Iterable[Sku], now: datetime | None = None) -> dict[int, UnitPrice]:
    """{sku id: UnitPrice} for ``skus`` at ``now`` (at most three queries)."""
    skus = list(skus)
    now = now or utcnow()
    running = running_discounts((sku.product_id for sku in skus), now)
    set_prices: dict[tuple[int, int], int] = {}
    commission_off: set[int] = set()
    if running:
        ids = sorted(d.id for d in running.values() if d.mode == "price")
        if ids:
            for row in db.session.scalars(_PRICES_OF, {"ids": ids}):
                set_prices[(row.discount_id, row.sku_id)] = row.price_fen
        commission_off = set(db.session.scalars(_COMMISSION_OFF, {"product_ids": sorted(running)}))
    out: dict[int, UnitPrice] = {}
    for sku in skus:
        discount = running.get(sku.product_id)
        price = sku.price_fen
        if discount is not None:
            if discount.mode == "percent" and discount.percent_off_bp:
                price = percent_price(sku.price_fen, discount.percent_off_bp)
            else:
                price = set_prices.get((discount.id, sku.id), sku.price_fen)
            price = min(price, sku.price_fen)
        discounted = discount is not None and price < sku.price_fen
        out[sku.id] = UnitPrice(
            sku_id=sku.id,
            price_fen=price,
            list_price_fen=sku.price_fen,
            discount=discount if discounted else None,
            commission_exempt=discounted and sku.product_id in commission_off,
        )
    return out


def unit_price(sku: Sku, now: datetime | None = None) -> UnitPrice:
    """``unit_prices`` of one SKU."""
    return unit_prices([sku], now)[sku.id]
