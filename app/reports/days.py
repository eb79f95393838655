"""Which days of a report range are read from the daily summaries and which live.

A day is *clean* when it is before today and ``report_days.summarized ==
report_days.changes`` (app/reports/summary.py states why that keeps every fen exact).
Both the report queries (to read a range) and the summary refresh (to write one) use the
same day runs, so this piece sits below both of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import false, or_, select
from sqlalchemy.sql.expression import ColumnElement

from app.core.time import shop_day_start, shop_today
from app.extensions import db
from app.reports.models import ReportDay
from app.reports.periods import Range


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
            (column >= shop_day_start(a)) & (column < shop_day_start(b + timedelta(days=1)))
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
    today = today or shop_today()
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
