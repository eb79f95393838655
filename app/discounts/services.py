"""Staff's timed discounts: create, edit, end early. They flush; the caller commits.

Rules (docs/discounts.md):

- one product per discount; ``percent`` (1%-99% off, entered as 折: 8.5 = 15% off) or
  ``price`` (a price per SKU, each above 0 and below the SKU's list price, at least one);
- the window runs from ``starts_at`` to ``ends_at`` (end excluded), at most 366 days, and a
  new one must end in the future;
- two discounts of one product never overlap (ended ones aside): checked under a lock on
  the product row, so two staff saving at once cannot both pass;
- ``commission_on`` is the product's switch (``DiscountProductSetting``): whether its
  discounted sales earn commissions, on what the customer paid (default on);
- every save bumps ``version`` (the product page's cache key carries it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.catalog.models import Product, Sku
from app.core.time import utcnow
from app.discounts.models import (
    DISCOUNT_MODES,
    DiscountProductSetting,
    TimedDiscount,
    TimedDiscountPrice,
)
from app.extensions import db

MAX_WINDOW = timedelta(days=366)
MAX_NAME = 32


class DiscountError(ValueError):
    """A discount that cannot be saved (message in Chinese)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class DiscountInput:
    """A validated form's content (money in fen, rates in basis points)."""

    product_id: int
    mode: str
    starts_at: datetime
    ends_at: datetime
    name: str = "限时折扣"
    percent_off_bp: int | None = None
    sku_prices: dict[int, int] = field(default_factory=dict)
    commission_on: bool = True


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def status_of(discount: TimedDiscount, now: datetime | None = None) -> str:
    """scheduled, running or over."""
    now = now or utcnow()
    if discount.ended_at is not None or _aware(discount.ends_at) <= now:
        return "over"
    if _aware(discount.starts_at) > now:
        return "scheduled"
    return "running"


STATUS_LABELS = {"scheduled": "未开始", "running": "进行中", "over": "已结束"}


def commission_on(product_id: int) -> bool:
    """Whether the product's discounted sales earn commissions (default yes)."""
    row = db.session.get(DiscountProductSetting, product_id)
    return True if row is None else row.commission_on


def _lock_product(product_id: int) -> Product:
    product = db.session.scalar(select(Product).where(Product.id == product_id).with_for_update())
    if product is None:
        raise DiscountError("请选择商品")
    return product


def _check(data: DiscountInput, product: Product, discount: TimedDiscount | None) -> None:
    name = (data.name or "").strip() or "限时折扣"
    if len(name) > MAX_NAME:
        raise DiscountError(f"活动名称最多 {MAX_NAME} 个字")
    data.name = name
    if data.mode not in DISCOUNT_MODES:
        raise DiscountError("请选择折扣方式")
    if data.ends_at <= data.starts_at:
        raise DiscountError("结束时间须晚于开始时间")
    if data.ends_at - data.starts_at > MAX_WINDOW:
        raise DiscountError("活动时长最多 366 天")
    if discount is None and data.ends_at <= utcnow():
        raise DiscountError("结束时间须晚于现在")
    if data.mode == "percent":
        if data.percent_off_bp is None or not 0 < data.percent_off_bp < 10_000:
            raise DiscountError("折扣须在 0.1 折到 9.99 折之间")
        data.sku_prices = {}
    else:
        data.percent_off_bp = None
        skus = {sku.id: sku for sku in product.skus}
        if not data.sku_prices:
            raise DiscountError("请至少为一个规格填写折扣价")
        for sku_id, price in data.sku_prices.items():
            sku = skus.get(sku_id)
            if sku is None:
                raise DiscountError("规格不属于该商品")
            if not 0 < price < sku.price_fen:
                label = sku.spec_text if sku.specs else "该商品"
                raise DiscountError(f"“{label}”的折扣价须大于 0 且低于原价")
    overlap = db.session.scalar(
        select(TimedDiscount.id)
        .where(
            TimedDiscount.product_id == product.id,
            TimedDiscount.ended_at.is_(None),
            TimedDiscount.starts_at < data.ends_at,
            TimedDiscount.ends_at > data.starts_at,
            TimedDiscount.id != (discount.id if discount is not None else -1),
        )
        .limit(1)
    )
    if overlap is not None:
        raise DiscountError("该商品在这段时间已有限时折扣，同一商品的活动时间不能重叠")


def save_discount(
    data: DiscountInput, discount: TimedDiscount | None = None, actor: str = ""
) -> TimedDiscount:
    """Create (``discount`` None) or update a discount; flushes."""
    product = _lock_product(discount.product_id if discount is not None else data.product_id)
    if discount is not None and discount.ended_at is not None:
        raise DiscountError("活动已结束，不能再修改")
    _check(data, product, discount)
    if discount is None:
        discount = TimedDiscount(product_id=product.id, created_by=actor[:64], version=0)
        db.session.add(discount)
    discount.name = data.name
    discount.mode = data.mode
    discount.percent_off_bp = data.percent_off_bp
    discount.starts_at = data.starts_at
    discount.ends_at = data.ends_at
    discount.version = (discount.version or 0) + 1
    # Old prices go first (flushed), so the (discount, SKU) unique key never sees both.
    discount.prices.clear()
    db.session.flush()
    discount.prices.extend(
        TimedDiscountPrice(sku_id=sku_id, price_fen=price)
        for sku_id, price in sorted(data.sku_prices.items())
    )
    set_commission_on(product.id, data.commission_on)
    db.session.flush()
    return discount


def set_commission_on(product_id: int, on: bool) -> None:
    """Switch commissions on or off for the product's discounted sales."""
    row = db.session.get(DiscountProductSetting, product_id)
    if row is None:
        row = DiscountProductSetting(product_id=product_id)
        db.session.add(row)
    row.commission_on = on
    row.updated_at = utcnow()


def end_discount(discount: TimedDiscount, now: datetime | None = None) -> bool:
    """End a discount now (scheduled ones never start); False when it was already over."""
    now = now or utcnow()
    if status_of(discount, now) == "over":
        return False
    discount.ended_at = now
    discount.version = (discount.version or 0) + 1
    db.session.flush()
    return True


def product_skus(product_id: int) -> list[Sku]:
    """The product's SKUs in id order (the price form's rows)."""
    return list(
        db.session.scalars(select(Sku).where(Sku.product_id == product_id).order_by(Sku.id))
    )
