"""Distribution tables: settings, grades, distributors and their tree, bindings, rules,
order attribution and withdrawals (the ledger itself is app/ledger/models.py).

Money is integers in fen, rates integers in basis points.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.time import UtcDateTime, utcnow
from app.extensions import db

JOIN_MODES = ("open", "apply", "threshold")
BIND_MODES = ("first_visit", "first_payment")
PAYOUT_CHANNELS = ("wechat", "manual")
DISTRIBUTOR_STATUSES = ("pending", "active", "disabled", "rejected")


class DistributionSettings(db.Model):
    """The shop's distribution settings: one row (id 1)."""

    __tablename__ = "distribution_settings"
    __table_args__ = (
        CheckConstraint("levels BETWEEN 1 AND 3", name="levels_1_to_3"),
        CheckConstraint("withdraw_fee_bp BETWEEN 0 AND 10000", name="fee_bp_range"),
        CheckConstraint("payout_cap_bp BETWEEN 0 AND 10000", name="payout_cap_bp_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    levels: Mapped[int] = mapped_column(default=2)
    self_purchase: Mapped[bool] = mapped_column(default=False)
    join_mode: Mapped[str] = mapped_column(String(16), default="open")
    join_threshold_fen: Mapped[int] = mapped_column(default=0)
    bind_mode: Mapped[str] = mapped_column(String(16), default="first_visit")
    binding_days: Mapped[int] = mapped_column(default=0)  # 0 = permanent
    protection_days: Mapped[int] = mapped_column(default=15)  # 0 = the latest link wins
    protection_extend_days: Mapped[int] = mapped_column(default=15)  # per paid order
    settlement_hold_days: Mapped[int] = mapped_column(default=7)
    level1_bp: Mapped[int] = mapped_column(default=1000)
    level2_bp: Mapped[int] = mapped_column(default=500)
    level3_bp: Mapped[int] = mapped_column(default=0)
    withdraw_min_fen: Mapped[int] = mapped_column(default=100)
    withdraw_fee_bp: Mapped[int] = mapped_column(default=0)
    withdraw_daily_limit: Mapped[int] = mapped_column(default=3)
    payout_channel: Mapped[str] = mapped_column(String(16), default="wechat")
    # The most all earnings on one order line (commission levels + region dividends) may
    # add up to, in bp of what was paid for the line (app/distribution/payout_cap.py).
    payout_cap_bp: Mapped[int] = mapped_column(default=3000, server_default="3000")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class Grade(db.Model):
    """A distributor grade with its own rates and the condition to reach it."""

    __tablename__ = "distributor_grades"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    rank: Mapped[int] = mapped_column(default=0)  # higher is better; upgrades only go up
    level1_bp: Mapped[int] = mapped_column(default=0)
    level2_bp: Mapped[int] = mapped_column(default=0)
    level3_bp: Mapped[int] = mapped_column(default=0)
    upgrade_team_sales_fen: Mapped[int] = mapped_column(default=0)  # 0 = not a condition
    upgrade_direct_count: Mapped[int] = mapped_column(default=0)


class Distributor(db.Model):
    """A user allowed to earn commission, with a public referral code and a parent."""

    __tablename__ = "distributors"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"), index=True)
    grade_id: Mapped[int | None] = mapped_column(ForeignKey("distributor_grades.id"))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    user = relationship("User")
    grade: Mapped[Grade | None] = relationship()
    parent: Mapped[Distributor | None] = relationship(remote_side="Distributor.id")


class DistributorPath(db.Model):
    """Closure table of the distributor tree: one row per (ancestor, descendant) pair.

    Depth 0 is the distributor itself. "Is X below Y?" and "everyone below Y" are one
    indexed lookup each, however deep or wide the tree (team stats, cycle checks).
    """

    __tablename__ = "distributor_paths"
    __table_args__ = (
        # Team counts by depth (team.py): an index-only range scan, no heap visits.
        Index("ix_distributor_paths_ancestor_depth", "ancestor_id", "depth"),
    )

    ancestor_id: Mapped[int] = mapped_column(
        ForeignKey("distributors.id", ondelete="CASCADE"), primary_key=True
    )
    descendant_id: Mapped[int] = mapped_column(
        ForeignKey("distributors.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    depth: Mapped[int]


class Binding(db.Model):
    """Which distributor a customer belongs to now (at most one row per customer)."""

    __tablename__ = "bindings"
    __table_args__ = (
        # 我的客户 (customers.py): a distributor's customers, newest binding first, one
        # page read off the index however many customers there are.
        Index("ix_bindings_distributor_bound", "distributor_id", "bound_at"),
        # Live customers of a distributor counted from the index alone (summary.py).
        Index("ix_bindings_distributor_expires", "distributor_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributors.id"))
    source: Mapped[str] = mapped_column(String(16))  # link, qr, staff
    bound_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    protected_until: Mapped[datetime | None] = mapped_column(UtcDateTime())

    distributor: Mapped[Distributor] = relationship()


class BindingEvent(db.Model):
    """Every bind, rebind and lapse, with its source and actor. Append-only."""

    __tablename__ = "binding_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"))
    previous_distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"))
    action: Mapped[str] = mapped_column(String(16))  # bind, rebind, lapse, extend
    source: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RefTouch(db.Model):
    """The last referral a customer arrived with (for bind-on-first-payment)."""

    __tablename__ = "ref_touches"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributors.id"))
    source: Mapped[str] = mapped_column(String(16))
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class CommissionRule(db.Model):
    """A product or SKU commission rule (percent in bp, fixed fen per unit, or none)."""

    __tablename__ = "commission_rules"
    __table_args__ = (
        UniqueConstraint("product_id", "sku_id"),
        # NULLs are distinct in a unique key: one product-level rule needs its own index.
        Index(
            "uq_commission_rules_product_level",
            "product_id",
            unique=True,
            sqlite_where=text("sku_id IS NULL"),
            postgresql_where=text("sku_id IS NULL"),
        ),
        CheckConstraint("mode IN ('percent', 'fixed', 'none')", name="mode_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    sku_id: Mapped[int | None] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"))
    mode: Mapped[str] = mapped_column(String(8))
    level1: Mapped[int] = mapped_column(default=0)
    level2: Mapped[int] = mapped_column(default=0)
    level3: Mapped[int] = mapped_column(default=0)


class OrderAttribution(db.Model):
    """Who stands at each level for an order, fixed when the order is placed."""

    __tablename__ = "order_attributions"
    __table_args__ = (
        UniqueConstraint("order_id", "level"),
        # A team's sales (team.py) join attributions by seller; INCLUDE keeps it index-only.
        Index(
            "ix_order_attributions_distributor_level",
            "distributor_id",
            "level",
            # team_sales_fen: promoted orders counted index-only (distribution/summary.py).
            postgresql_include=["order_id", "team_sales_fen"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    level: Mapped[int]
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributors.id"))
    self_purchase: Mapped[bool] = mapped_column(default=False)
    # Level 1 only: what this order adds now to the team sales of its distributor and
    # everyone above (team.py). Kept so every change adds just the difference, once.
    team_sales_fen: Mapped[int] = mapped_column(default=0, server_default="0")


class DistributorTeamTotal(db.Model):
    """A distributor's team sales kept as a running total (team.py), so team stats read one
    row instead of summing every order of a large team. A missing row means 0.

    Changed only by ``x = x + delta`` upserts (concurrent jobs add, never overwrite) and
    rebuilt from the orders by ``team.rebuild_team_totals``.
    """

    __tablename__ = "distributor_team_totals"

    distributor_id: Mapped[int] = mapped_column(
        ForeignKey("distributors.id", ondelete="CASCADE"), primary_key=True
    )
    team_sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class Withdrawal(db.Model):
    """A distributor's request to be paid out, reviewed by staff."""

    __tablename__ = "withdrawals"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("fee_fen >= 0 AND fee_fen < amount_fen", name="fee_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributors.id"), index=True)
    amount_fen: Mapped[int]
    fee_fen: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    channel: Mapped[str] = mapped_column(String(16), default="wechat")
    out_bill_no: Mapped[str] = mapped_column(String(64), unique=True)
    transfer_bill_no: Mapped[str | None] = mapped_column(String(64))
    package_info: Mapped[str | None] = mapped_column(String(1024))
    review_note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    @property
    def net_fen(self) -> int:
        """What reaches the distributor: the amount less the fee."""
        return self.amount_fen - self.fee_fen
