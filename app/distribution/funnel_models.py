"""Promotion funnel tables (推广效果): one row per distributor, Beijing day and product.

``distributor_funnel_days`` holds what the periodic rollup (``jobs/funnel.py``) wrote:
visits counted in Redis, and the bindings, paid orders, sales and commission read from the
database. ``product_id`` 0 is the distributor's whole day (every page, every binding);
other rows are one product page's visits and the orders of that product.

No foreign keys (as the report summaries): a summary must never block deleting what it
counts. ``funnel_closed_days`` marks the days rolled up after they ended: those days are
read from the table alone, so they survive a Redis flush (docs/funnel.md).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import UtcDateTime, utcnow
from app.extensions import db

WHOLE_DAY = 0  # product_id of the row that counts every page of the day


class FunnelDay(db.Model):
    """A distributor's funnel on one Beijing day, whole (product 0) or for one product."""

    __tablename__ = "distributor_funnel_days"
    # One distributor's last 7 or 30 days (the centre, the API, the admin page).
    __table_args__ = (Index("ix_distributor_funnel_days_distributor_day", "distributor_id", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    distributor_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    product_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    visits: Mapped[int] = mapped_column(BigInteger, default=0)
    bindings: Mapped[int] = mapped_column(BigInteger, default=0)
    orders: Mapped[int] = mapped_column(BigInteger, default=0)
    sales_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    commission_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class FunnelClosedDay(db.Model):
    """A Beijing day whose funnel was rolled up after the day had ended."""

    __tablename__ = "funnel_closed_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    rolled_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
