"""Report periods: a Beijing date range cut into days, weeks (from Monday) or months.

``period_start(column, grain)`` is a SQL expression giving, for a stored UTC timestamp,
the first Beijing calendar day of its period as ``YYYY-MM-DD`` text, so reports group in
the database with the same keys on SQLite and PostgreSQL:

- PostgreSQL: ``to_char(date_trunc(grain, col AT TIME ZONE 'Asia/Shanghai'), 'YYYY-MM-DD')``
  (``date_trunc('week')`` is ISO: weeks start on Monday).
- SQLite keeps UTC text; ``date(col, '+8 hours')`` is the Beijing day (China has no
  daylight saving, so a fixed offset is exact), ``'weekday 0', '-6 days'`` moves to that
  week's Monday and ``strftime('%Y-%m-01')`` to the first of the month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Date, String, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from app.core.time import SHOP_SQLITE_OFFSET, SHOP_TZ, SHOP_TZ_NAME, shop_day_start

GRAINS = {"day": "按日", "week": "按周", "month": "按月"}
MAX_DAYS = 366 * 3  # a longer range is refused: its day chart would be unreadable anyway


class _by_grain(FunctionElement):
    """A SQL function of a column and a grain (day/week/month) giving YYYY-MM-DD."""

    type = String()
    inherit_cache = True

    def __init__(self, column: ColumnElement, grain: str):
        if grain not in GRAINS:
            raise ValueError(f"unknown grain {grain!r}")
        self.grain = grain
        # The grain travels as a literal clause too, so it is part of SQLAlchemy's cache
        # key: otherwise a cached "day" statement would be reused for "month".
        super().__init__(column, literal_column(f"'{grain}'"))


class period_start(_by_grain):
    """SQL: the Beijing period (day/week/month) a UTC timestamp falls in, as YYYY-MM-DD."""

    inherit_cache = True


@compiles(period_start, "postgresql")
def _pg(element: period_start, compiler, **kw) -> str:
    column = compiler.process(element.clauses.clauses[0], **kw)
    return (
        f"to_char(date_trunc('{element.grain}', ({column}) AT TIME ZONE '{SHOP_TZ_NAME}'), "
        "'YYYY-MM-DD')"
    )


@compiles(period_start, "sqlite")
def _sqlite(element: period_start, compiler, **kw) -> str:
    column = compiler.process(element.clauses.clauses[0], **kw)
    if element.grain == "day":
        return f"date({column}, '{SHOP_SQLITE_OFFSET}')"
    if element.grain == "week":
        return f"date({column}, '{SHOP_SQLITE_OFFSET}', 'weekday 0', '-6 days')"
    return f"strftime('%Y-%m-01', {column}, '{SHOP_SQLITE_OFFSET}')"


class beijing_date(FunctionElement):
    """SQL: the Beijing calendar day of a UTC timestamp as a ``DATE`` (SQLite: its
    ``YYYY-MM-DD`` text, which is how SQLite keeps dates); the summaries' key."""

    type = Date()
    inherit_cache = True


@compiles(beijing_date, "postgresql")
def _pg_date(element: beijing_date, compiler, **kw) -> str:
    column = compiler.process(element.clauses.clauses[0], **kw)
    return f"(({column}) AT TIME ZONE '{SHOP_TZ_NAME}')::date"


@compiles(beijing_date, "sqlite")
def _sqlite_date(element: beijing_date, compiler, **kw) -> str:
    column = compiler.process(element.clauses.clauses[0], **kw)
    return f"date({column}, '{SHOP_SQLITE_OFFSET}')"


class day_period(_by_grain):
    """SQL: the period (day/week/month) a Beijing calendar ``DATE`` column falls in, as
    YYYY-MM-DD: the summary tables' twin of ``period_start`` (their days are already
    Beijing days, so no time zone is applied)."""

    inherit_cache = True


@compiles(day_period, "postgresql")
def _pg_day(element: day_period, compiler, **kw) -> str:
    column = compiler.process(element.clauses.clauses[0], **kw)
    return f"to_char(date_trunc('{element.grain}', ({column})::timestamp), 'YYYY-MM-DD')"


@compiles(day_period, "sqlite")
def _sqlite_day(element: day_period, compiler, **kw) -> str:
    column = compiler.process(element.clauses.clauses[0], **kw)
    if element.grain == "day":
        return f"date({column})"
    if element.grain == "week":
        return f"date({column}, 'weekday 0', '-6 days')"
    return f"strftime('%Y-%m-01', {column})"


def first_day(day: date, grain: str) -> date:
    """The first day of the period ``day`` is in (the Python twin of ``period_start``)."""
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def _next(day: date, grain: str) -> date:
    if grain == "week":
        return day + timedelta(days=7)
    if grain == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=1)


@dataclass(frozen=True)
class Range:
    """A report range: Beijing days ``start``..``end`` (inclusive), cut by ``grain``."""

    start: date
    end: date
    grain: str = "day"

    @property
    def start_utc(self) -> datetime:
        return shop_day_start(self.start)

    @property
    def end_utc(self) -> datetime:
        """The UTC moment just after the range (exclusive bound)."""
        return shop_day_start(self.end + timedelta(days=1))

    def buckets(self) -> list[str]:
        """Every period key in the range, in order (periods with no rows get zeros)."""
        keys = []
        day = first_day(self.start, self.grain)
        while day <= self.end:
            keys.append(day.isoformat())
            day = _next(day, self.grain)
        return keys

    def within(self, column: ColumnElement) -> ColumnElement:
        """SQL: ``column`` falls inside the range (an index range scan on ``column``)."""
        return (column >= self.start_utc) & (column < self.end_utc)


def parse_range(args, today: date | None = None) -> tuple[Range, str | None]:
    """The range of the query ``args`` (``from``, ``to``, ``grain``), default the last 30
    days by day; a bad value gives the default range and a Chinese error message."""
    today = today or datetime.now(SHOP_TZ).date()
    default = Range(today - timedelta(days=29), today, "day")
    grain = (args.get("grain") or "day").strip()
    if grain not in GRAINS:
        return default, "统计粒度只能是按日、按周或按月"
    try:
        start = date.fromisoformat(args.get("from") or default.start.isoformat())
        end = date.fromisoformat(args.get("to") or default.end.isoformat())
    except ValueError:
        return default, "日期格式应为 2025-01-31"
    if end < start:
        return default, "结束日期不能早于开始日期"
    if (end - start).days > MAX_DAYS:
        return default, "日期范围最长三年"
    return Range(start, end, grain), None
