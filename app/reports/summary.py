"""Daily summaries for the reports, and which days of a range may be read from them.

The rule that keeps every fen exact
-----------------------------------

A report range is cut into Beijing days. A day is read from the summary tables only when
it is *clean*: it is before today, and ``report_days.summarized == report_days.changes``.
Every other day (today, days never summarized, days changed since their summary) is
aggregated live from orders, refunds and the ledger, exactly as before. So the page shows
the same numbers as the live queries over the whole range, only faster.

What keeps ``changes`` honest is the database, not the services: triggers (migration
``439552e7cc3c``) on ``orders``, ``order_lines``, ``order_attributions``, ``refunds`` and
``ledger_entries`` bump ``report_days.changes`` of the day a row belongs to (paid day of
its order, refund day, entry day; the old and the new day on an update) in the same
transaction, whenever that day is before the transaction's today. Payments, refunds,
settlement batches, reversals, withdrawals, raw SQL: whatever path changes a past day's
rows marks it. Rows of today are not marked (today is always live), so payments do not
queue on one hot counter row.

The refresh (``refresh_run``, run by the periodic job in jobs/reports.py) recomputes days
whose summary is missing or behind, in one transaction per run of days:

1. ``INSERT report_days ... ON CONFLICT DO NOTHING`` first (a write: on SQLite it takes
   the write lock before anything is read);
2. read each day's ``changes``;
3. aggregate the days live and replace their summary rows;
4. ``UPDATE report_days SET summarized = <read value> WHERE changes = <read value>``.

A writer that changes the day meanwhile holds the bumped ``report_days`` row locked until
it commits, so step 4 waits for it and then no longer matches: the day stays live until
the next refresh. A transaction that began on the day itself writes its rows unmarked, so
on PostgreSQL a day is refreshed only once no other transaction older than the day's end
is still open (``pg_stat_activity.xact_start``).

Not summarized: new customers by source (a customer's source can change when a later
binding is made; it is read live from ``users(created_at)``: a few thousand rows a month).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import delete, false, func, insert, literal, or_, select, text, true, update
from sqlalchemy.sql.expression import ColumnElement

from app.core.sql import dialect_insert
from app.core.time import utcnow
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.models import Order, Refund
from app.orders.search import SHOP_TZ, day_start_utc
from app.reports.models import (
    ReportDailyDistributor,
    ReportDailyProduct,
    ReportDailyTotal,
    ReportDay,
)
from app.reports.periods import Range

RUN_DAYS = 31  # days recomputed per transaction: short locks, bounded work per commit


def beijing_today(now: datetime | None = None) -> date:
    """Today's date in Beijing (the shop's calendar)."""
    return (now or utcnow()).astimezone(SHOP_TZ).date()


def runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days grouped into contiguous runs ``(first, last)``."""
    out: list[tuple[date, date]] = []
    for day in sorted(days):
        if out and day == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def within_runs(column: ColumnElement, spans: list[tuple[date, date]]) -> ColumnElement:
    """SQL: a UTC timestamp ``column`` falls in one of the Beijing day runs (index ranges)."""
    if not spans:
        return false()
    return or_(
        *(
            (column >= day_start_utc(a)) & (column < day_start_utc(b + timedelta(days=1)))
            for a, b in spans
        )
    )


def days_in_runs(column: ColumnElement, spans: list[tuple[date, date]]) -> ColumnElement:
    """SQL: a ``DATE`` column (a summary's day) falls in one of the runs."""
    if not spans:
        return false()
    return or_(*(column.between(a, b) for a, b in spans))


@dataclass
class Split:
    """A report range cut into days read from the summaries and days aggregated live."""

    rng: Range
    summary: list[tuple[date, date]] = field(default_factory=list)
    live: list[tuple[date, date]] = field(default_factory=list)

    def live_within(self, column: ColumnElement) -> ColumnElement:
        """SQL: ``column`` (a UTC timestamp) falls on a live day of the range."""
        return within_runs(column, self.live)

    def summary_within(self, column: ColumnElement) -> ColumnElement:
        """SQL: ``column`` (a summary's day) is a clean day of the range."""
        return days_in_runs(column, self.summary)


def split(rng: Range, today: date | None = None) -> Split:
    """Which days of ``rng`` are clean (read from summaries) and which are live.

    The clean days are read in one statement; each clean day's summary rows were written
    in one transaction, so each day's figures are exact as of one moment.
    """
    today = today or beijing_today()
    clean = set(
        db.session.scalars(
            select(ReportDay.day).where(
                ReportDay.day >= rng.start,
                ReportDay.day <= rng.end,
                ReportDay.day < today,
                ReportDay.summarized == ReportDay.changes,
            )
        )
    )
    every = [rng.start + timedelta(days=i) for i in range((rng.end - rng.start).days + 1)]
    return Split(
        rng,
        summary=runs([d for d in every if d in clean]),
        live=runs([d for d in every if d not in clean]),
    )


# --- refresh ----------------------------------------------------------------------------


def _insert_ignore(model, rows: list[dict]):
    """``INSERT ... ON CONFLICT DO NOTHING`` on either database."""
    return dialect_insert(model).values(rows).on_conflict_do_nothing()


def refresh_horizon(now: datetime | None = None) -> date | None:
    """The last day that may be summarized now, or None.

    Yesterday at the latest; on PostgreSQL also no later than the day before the oldest
    other open transaction began, since that transaction may still write rows of its own
    day without marking them (see the module docstring).
    """
    now = now or utcnow()
    last = beijing_today(now) - timedelta(days=1)
    if db.session.get_bind().dialect.name == "postgresql":
        oldest = db.session.execute(
            text(
                "SELECT min(xact_start) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND xact_start IS NOT NULL AND datname = current_database()"
            )
        ).scalar()
        if oldest is not None:
            last = min(last, oldest.astimezone(SHOP_TZ).date() - timedelta(days=1))
    return last


def first_activity_day() -> date | None:
    """The first Beijing day with a paid order, a refund or a ledger entry (index ends)."""
    firsts = [
        db.session.scalar(select(func.min(Order.paid_at))),
        db.session.scalar(select(func.min(Refund.refunded_at))),
        db.session.scalar(select(func.min(LedgerEntry.created_at))),
    ]
    firsts = [f for f in firsts if f is not None]
    if not firsts:
        return None
    return min(firsts).astimezone(SHOP_TZ).date()


def due_days(now: datetime | None = None, limit: int = 400) -> list[date]:
    """Days up to the horizon whose summary is missing or behind, newest first."""
    first = first_activity_day()
    last = refresh_horizon(now)
    if first is None or last is None or last < first:
        return []
    clean = set(
        db.session.scalars(
            select(ReportDay.day).where(
                ReportDay.day >= first, ReportDay.summarized == ReportDay.changes
            )
        )
    )
    due = []
    day = last
    while day >= first and len(due) < limit:
        if day not in clean:
            due.append(day)
        day -= timedelta(days=1)
    return due


def refresh_run(first: date, last: date, now: datetime | None = None) -> int:
    """Recompute the summaries of days ``first..last`` (flushes; the caller commits once,
    right after, so the steps of the module docstring share one transaction).

    Returns how many days were marked clean (a day changed meanwhile stays live).
    """
    from app.reports import queries  # the live aggregates (queries imports this module)

    now = now or utcnow()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    db.session.execute(_insert_ignore(ReportDay, [{"day": d, "changes": 0} for d in days]))
    seen = dict(
        db.session.execute(
            select(ReportDay.day, ReportDay.changes).where(ReportDay.day.between(first, last))
        ).all()
    )
    span = [(first, last)]

    def within(column):
        return within_runs(column, span)

    totals = queries.live_totals("day", within)
    for model in (ReportDailyTotal, ReportDailyProduct, ReportDailyDistributor):
        db.session.execute(delete(model).where(model.day.between(first, last)))
    if totals:
        db.session.execute(
            insert(ReportDailyTotal),
            [{"day": date.fromisoformat(p), **values} for p, values in totals.items()],
        )
    # Per product and per distributor: aggregated and inserted inside the database.
    products = queries.live_products(within, by_day=True)
    db.session.execute(
        insert(ReportDailyProduct).from_select(
            ["day", "product_id", "title", "quantity", "orders", "amount_fen"], products
        )
    )
    sales, earned = queries.live_distributors(within, by_day=True)
    db.session.execute(
        insert(ReportDailyDistributor).from_select(
            ["day", "distributor_id", "sales_fen", "orders", "earned_fen"],
            select(*sales.subquery().c, literal(0)),
        )
    )
    earned_rows = earned.subquery()
    upsert = dialect_insert(ReportDailyDistributor).from_select(
        ["day", "distributor_id", "sales_fen", "orders", "earned_fen"],
        select(
            earned_rows.c.day,
            earned_rows.c.distributor_id,
            literal(0),
            literal(0),
            earned_rows.c.earned_fen,
        ).where(true()),  # SQLite: a WHERE before ON CONFLICT keeps the parse unambiguous
    )
    db.session.execute(
        upsert.on_conflict_do_update(
            index_elements=["day", "distributor_id"],
            set_={"earned_fen": upsert.excluded.earned_fen},
        )
    )
    marked = 0
    for day in days:
        result = db.session.execute(
            update(ReportDay)
            .where(ReportDay.day == day, ReportDay.changes == seen[day])
            .values(summarized=seen[day], summarized_at=now)
        )
        marked += result.rowcount
    db.session.flush()
    return marked


def refresh_runs(days: list[date]) -> list[tuple[date, date]]:
    """``days`` as runs of at most ``RUN_DAYS`` days, one refresh transaction each."""
    out = []
    for a, b in runs(days):
        while a <= b:
            end = min(b, a + timedelta(days=RUN_DAYS - 1))
            out.append((a, end))
            a = end + timedelta(days=1)
    return out
