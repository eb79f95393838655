"""Cloud distribution (云分销): regional agents and ordering merchants (订货商).

Money is integers in fen, rates integers in basis points. Earnings go to the same ledger
(``ledger_entries``, kinds ``region_dividend`` and ``price_difference``) as commissions,
so they settle, reverse and withdraw through the same services.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.time import UtcDateTime, utcnow
from app.extensions import db

AGENT_LEVELS = ("province", "city", "district")
AGENT_STATUSES = ("pending", "active", "rejected", "revoked")
PRECEDENCE = ("price_difference", "commission", "both")


class CloudSettings(db.Model):
    """Shop-wide cloud settings: one row (id 1)."""

    __tablename__ = "cloud_settings"
    __table_args__ = (
        CheckConstraint("province_bp BETWEEN 0 AND 10000", name="province_bp_range"),
        CheckConstraint("city_bp BETWEEN 0 AND 10000", name="city_bp_range"),
        CheckConstraint("district_bp BETWEEN 0 AND 10000", name="district_bp_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agents_enabled: Mapped[bool] = mapped_column(default=True)
    province_bp: Mapped[int] = mapped_column(default=100)
    city_bp: Mapped[int] = mapped_column(default=200)
    district_bp: Mapped[int] = mapped_column(default=300)
    # When a line earns both commission and price difference: which is paid.
    precedence: Mapped[str] = mapped_column(String(20), default="price_difference")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class RegionAgent(db.Model):
    """An agent for one region (a GB/T 2260 province, city or district code).

    Region protection is a database rule: at most one pending-or-active agent per (level,
    region code) (partial unique index), so two concurrent applications cannot both stand.
    """

    __tablename__ = "region_agents"
    __table_args__ = (
        Index(
            "uq_region_agents_region_held",
            "level",  # 东莞 441900 is a city and its own district: one agent at each level
            "region_code",
            unique=True,
            sqlite_where=text("status IN ('pending', 'active')"),
            postgresql_where=text("status IN ('pending', 'active')"),
        ),
        CheckConstraint("level IN ('province', 'city', 'district')", name="level_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributors.id"), index=True)
    level: Mapped[str] = mapped_column(String(10))
    region_code: Mapped[str] = mapped_column(String(6))
    region_name: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class AgentProductRate(db.Model):
    """A per-product dividend rate for one agent level, overriding the shop setting."""

    __tablename__ = "agent_product_rates"
    __table_args__ = (UniqueConstraint("product_id", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(10))
    rate_bp: Mapped[int]


class MerchantLevel(db.Model):
    """An ordering-merchant level 1-5 (1 is the top), with its default discount off retail."""

    __tablename__ = "merchant_levels"
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 5", name="level_1_to_5"),
        CheckConstraint("discount_bp BETWEEN 0 AND 10000", name="discount_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(16))  # 总代, 省代, 市代, 县代, 店主
    discount_bp: Mapped[int] = mapped_column(default=0)  # price = retail × (1 - discount)


class MerchantSkuPrice(db.Model):
    """A set price for one SKU at one level, overriding the level's discount."""

    __tablename__ = "merchant_sku_prices"
    __table_args__ = (
        UniqueConstraint("level", "sku_id"),
        CheckConstraint("price_fen >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    level: Mapped[int]
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"))
    price_fen: Mapped[int]


class OrderingMerchant(db.Model):
    """An ordering merchant: a distributor (so links, QR codes and bindings work the same)
    with a level and a parent ordering merchant."""

    __tablename__ = "ordering_merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributors.id"), unique=True)
    level: Mapped[int]
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("ordering_merchants.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    parent: Mapped[OrderingMerchant | None] = relationship(remote_side="OrderingMerchant.id")
    distributor = relationship("Distributor")


class MerchantOrder(db.Model):
    """An order an ordering merchant placed for their own customer at their level price."""

    __tablename__ = "merchant_orders"

    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    merchant_id: Mapped[int] = mapped_column(ForeignKey("ordering_merchants.id"), index=True)
    level: Mapped[int]
    customer_name: Mapped[str] = mapped_column(String(32), default="")
