"""What the product page shows besides the product row: sales, shipping, promises.

- 已售 N: units of the product on paid orders (an order that was ever paid: ``paid_at``
  set), minus the units refunded on them. Unpaid and cancelled-unpaid orders never count.
  Read on every view (an indexed sum over ``order_lines.product_id``), outside the page
  cache, and passed in as one of the cache key's ingredients (app/shop/views.py).
- 运费: the rule checkout uses (``app.orders.services.shipping_fee_for``) applied to the
  product's lowest price for one unit: 包邮 when that is free, else the fee, with the
  threshold when there is one (运费 ¥10，满 ¥99 包邮).
- Service promises: the owner's list (app/catalog/page_settings.py), none by default.

Shop settings and promises are catalog tables for the page cache (app/shop/cache.py), so
saving them invalidates every cached product page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.core.money import format_yuan
from app.extensions import db
from app.orders.models import Order, OrderLine
from app.orders.services import get_settings, shipping_fee_for


def sold_count(product_id: int) -> int:
    """Paid units minus refunded units of ``product_id`` (never below 0)."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(OrderLine.quantity - OrderLine.refunded_quantity), 0))
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.product_id == product_id, Order.paid_at.is_not(None))
    )
    return max(0, int(total or 0))


def sold_text(count: int) -> str:
    """已售 12, 已售 1.2万 past ten thousand (how Chinese shops print it)."""
    if count >= 10_000:
        return f"已售 {count // 1000 / 10:g}万+"
    return f"已售 {count}"


@dataclass(frozen=True)
class ShippingLine:
    """The product page's shipping text: ``free`` or the fee with its threshold."""

    free: bool
    text: str


def shipping_line(lowest_price_fen: int) -> ShippingLine:
    """包邮 or 运费 ¥x (with 满 ¥y 包邮), from the same rule and settings checkout uses."""
    settings = get_settings()
    fee = shipping_fee_for(lowest_price_fen, settings)
    if fee == 0:
        return ShippingLine(True, "包邮")
    text = f"运费 {format_yuan(fee)}"
    if settings.free_shipping_over_fen:
        text += f"，满 {format_yuan(settings.free_shipping_over_fen)} 包邮"
    return ShippingLine(False, text)
