"""Coupons (优惠券): the templates staff create and the coupons customers hold.

Money in fen, rates in basis points. Once-only rules live in the database:

- ``coupon_templates.issued`` only grows through a conditional ``UPDATE ... WHERE issued <
  stock`` (``app/coupons/claiming.py``), so 300 concurrent claims of 100 coupons issue 100;
- ``customer_coupons`` has a unique (template, customer, n): the customer's n-th coupon of a
  template, n ≤ the per-customer limit, so one customer's concurrent claims cannot pass it;
- using a coupon is a conditional ``UPDATE ... WHERE status = 'unused'`` at placement.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.time import UtcDateTime, utcnow
from app.extensions import db

# Kinds.
AMOUNT_OFF = "amount_off"  # 满减: ¥x off when the eligible goods reach ¥y
PERCENT_OFF = "percent_off"  # 折扣: n% off the eligible goods, with an optional maximum
NO_THRESHOLD = "no_threshold"  # 无门槛: ¥x off, whatever the amount
KINDS = (AMOUNT_OFF, PERCENT_OFF, NO_THRESHOLD)
KIND_LABELS = {AMOUNT_OFF: "满减券", PERCENT_OFF: "折扣券", NO_THRESHOLD: "无门槛券"}

# Scopes.
SCOPE_ALL = "all"
SCOPE_CATEGORIES = "categories"
SCOPE_PRODUCTS = "products"
SCOPES = (SCOPE_ALL, SCOPE_CATEGORIES, SCOPE_PRODUCTS)
SCOPE_LABELS = {SCOPE_ALL: "全店通用", SCOPE_CATEGORIES: "指定分类", SCOPE_PRODUCTS: "指定商品"}

# Validity.
VALID_FIXED = "fixed"  # from starts_at to ends_at
VALID_DAYS = "days"  # valid_days days after receipt
VALIDITY_MODES = (VALID_FIXED, VALID_DAYS)

# Template statuses.
ACTIVE = "active"
PAUSED = "paused"

# Customer coupon statuses (expired is derived from valid_until).
UNUSED = "unused"
USED = "used"

# How a customer got a coupon.
SOURCE_CLAIM = "claim"
SOURCE_STAFF = "staff"
SOURCE_DISTRIBUTOR = "distributor"


class CouponTemplate(db.Model):
    """A coupon staff created: its kind, amount, scope, validity, stock and limit."""

    __tablename__ = "coupon_templates"
    __table_args__ = (
        CheckConstraint("issued <= stock", name="issued_within_stock"),
        CheckConstraint("issued >= 0", name="issued_not_negative"),
        CheckConstraint("per_customer >= 1", name="per_customer_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    threshold_fen: Mapped[int] = mapped_column(default=0)  # 满减 / 折扣: goods must reach it
    off_fen: Mapped[int] = mapped_column(default=0)  # 满减 / 无门槛
    off_bp: Mapped[int] = mapped_column(default=0)  # 折扣: 1000 = 10% off
    max_off_fen: Mapped[int] = mapped_column(default=0)  # 折扣: 0 = no maximum
    scope: Mapped[str] = mapped_column(String(16), default=SCOPE_ALL)
    scope_ids: Mapped[list] = mapped_column(JSON, default=list)  # category or product ids
    valid_mode: Mapped[str] = mapped_column(String(8), default=VALID_DAYS)
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    valid_days: Mapped[int] = mapped_column(default=0)
    stock: Mapped[int]
    issued: Mapped[int] = mapped_column(default=0)
    per_customer: Mapped[int] = mapped_column(default=1)
    distributor_only: Mapped[bool] = mapped_column(default=False)  # 分销员专属券
    status: Mapped[str] = mapped_column(String(8), default=ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @property
    def kind_label(self) -> str:
        """满减券 / 折扣券 / 无门槛券."""
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def scope_label(self) -> str:
        """全店通用 / 指定分类 / 指定商品."""
        return SCOPE_LABELS.get(self.scope, self.scope)

    @property
    def zhe_text(self) -> str:
        """折扣券: what is paid, in 折 ("8.5" for 15% off); "" for other kinds."""
        if self.kind != PERCENT_OFF:
            return ""
        pay_bp = 10000 - self.off_bp
        return f"{pay_bp // 1000}.{pay_bp % 1000:03d}".rstrip("0").rstrip(".")

    @property
    def left(self) -> int:
        """Coupons that can still be issued."""
        return max(self.stock - self.issued, 0)


class CustomerCoupon(db.Model):
    """One coupon a customer holds: the ``seq``-th of its template for that customer."""

    __tablename__ = "customer_coupons"
    __table_args__ = (
        UniqueConstraint("template_id", "user_id", "seq"),
        Index("ix_customer_coupons_user_status", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("coupon_templates.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    seq: Mapped[int]
    status: Mapped[str] = mapped_column(String(8), default=UNUSED)
    source: Mapped[str] = mapped_column(String(16), default=SOURCE_CLAIM)
    distributor_id: Mapped[int | None] = mapped_column(
        ForeignKey("distributors.id", ondelete="SET NULL")
    )
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime())
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime())
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    template: Mapped[CouponTemplate] = relationship()
