"""Timed discounts (限时折扣) and the per-product commission switch.

A ``TimedDiscount`` covers one product from ``starts_at`` to ``ends_at`` (UTC, end
excluded), either ``percent`` (``percent_off_bp`` basis points off every SKU's price) or
``price`` (a set price per SKU in ``TimedDiscountPrice``; SKUs not listed keep their
price). Staff can end one early (``ended_at``). Two discounts of one product never
overlap (app/discounts/services.py refuses it). ``version`` changes on every edit: the
product page's cache key carries it.

``DiscountProductSetting``: whether commissions apply to this product's discounted sales
(default on: no row means on), on what the customer paid.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.time import UtcDateTime, utcnow
from app.extensions import db

DISCOUNT_MODES = ("percent", "price")


class TimedDiscount(db.Model):
    """One product's discount in a time window."""

    __tablename__ = "timed_discounts"
    __table_args__ = (
        CheckConstraint("mode IN ('percent', 'price')", name="mode_known"),
        CheckConstraint(
            "percent_off_bp IS NULL OR (percent_off_bp > 0 AND percent_off_bp < 10000)",
            name="percent_in_range",
        ),
        CheckConstraint("ends_at > starts_at", name="window_forward"),
        Index("ix_timed_discounts_product_window", "product_id", "starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32), default="限时折扣")
    mode: Mapped[str] = mapped_column(String(8))
    percent_off_bp: Mapped[int | None]
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")

    prices: Mapped[list[TimedDiscountPrice]] = relationship(
        back_populates="discount",
        cascade="all, delete-orphan",
        order_by="TimedDiscountPrice.sku_id",
    )
    product = relationship("Product")


class TimedDiscountPrice(db.Model):
    """A SKU's price during a ``price`` discount (fen, below its list price)."""

    __tablename__ = "timed_discount_prices"
    __table_args__ = (
        UniqueConstraint("discount_id", "sku_id"),
        CheckConstraint("price_fen > 0", name="price_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    discount_id: Mapped[int] = mapped_column(
        ForeignKey("timed_discounts.id", ondelete="CASCADE"), index=True
    )
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"))
    price_fen: Mapped[int]

    discount: Mapped[TimedDiscount] = relationship(back_populates="prices")


class DiscountProductSetting(db.Model):
    """Whether a product's discounted sales earn commissions (no row: yes)."""

    __tablename__ = "discount_product_settings"

    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    commission_on: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
