"""Daily report summaries: per Beijing day, the sums the admin reports read instead of
re-aggregating a million orders on every page view.

Exactness rule (app/reports/summary.py has the details): a day's summary is used only while
``report_days.summarized == report_days.changes``. Database triggers (migration
``439552e7cc3c``) bump ``changes`` in the same transaction as any insert, update or delete
of an order, order line, attribution, refund or ledger entry that belongs to a past day,
so a day touched after its summary was written is read live until the refresh job
recomputes it. Today is always read live and never summarized.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import UtcDateTime
from app.extensions import db


class ReportDay(db.Model):
    """One Beijing day's summary state: bumped by triggers, stamped by the refresh."""

    __tablename__ = "report_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # Bumped by the triggers on every change to the day's rows (after the day has passed).
    changes: Mapped[int] = mapped_column(BigInteger, default=0)
    # The ``changes`` value the summary rows were computed at; NULL: never summarized.
    summarized: Mapped[int | None] = mapped_column(BigInteger)
    summarized_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ReportDailyTotal(db.Model):
    """A day's totals: paid orders, refunds, distribution share, ledger by category/state."""

    __tablename__ = "report_daily_totals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunds_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    dist_orders: Mapped[int] = mapped_column(BigInteger, default=0)
    dist_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_pending_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_settled_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    dividend_pending_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    dividend_settled_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    reward_pending_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    reward_settled_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    withdrawn_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportDailyProduct(db.Model):
    """A day's sales of one product (orders paid that day, net of refunds so far).

    No foreign keys here: a summary must never block deleting what it counts."""

    __tablename__ = "report_daily_products"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    product_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)


class ReportDailyDistributor(db.Model):
    """A day's figures of one distributor: own customers' paid orders, and earnings."""

    __tablename__ = "report_daily_distributors"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    distributor_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    earned_fen: Mapped[int] = mapped_column(BigInteger, default=0)
