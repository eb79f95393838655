"""Time helpers: every stored timestamp is time-zone aware (UTC); people read shop time.

The shop's customers, staff and WeChat Pay all live in China time (Asia/Shanghai, UTC+8
all year: China has no daylight saving). ``SHOP_TZ`` is that zone, defined once; dates
people read, calendar days of reports and limits, and WeChat's RFC 3339 times use it.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

SHOP_TZ_NAME = "Asia/Shanghai"  # as PostgreSQL's AT TIME ZONE spells it
SHOP_TZ = ZoneInfo(SHOP_TZ_NAME)
SHOP_SQLITE_OFFSET = "+8 hours"  # SQLite's date modifier for the same (fixed) offset


def utcnow() -> datetime:
    """Return the current time in UTC, time-zone aware (use as a column default)."""
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """``moment`` with a zone: a naive value is UTC (SQLite hands stored times back naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def to_shop_time(moment: datetime) -> datetime:
    """A stored (UTC) moment as shop time."""
    return aware(moment).astimezone(SHOP_TZ)


def shop_time_text(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) moment as shop-time text, e.g. 2025-01-31 20:05; '' for None."""
    return "" if moment is None else to_shop_time(moment).strftime(fmt)


def shop_today(now: datetime | None = None) -> date:
    """Today's date on the shop's calendar."""
    return to_shop_time(now or utcnow()).date()


def shop_day_start(day: date) -> datetime:
    """The UTC moment a shop calendar day starts."""
    return datetime.combine(day, time.min, SHOP_TZ).astimezone(UTC)


def shop_day_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the shop calendar day containing ``now`` (default: today)."""
    today = shop_today(now)
    return shop_day_start(today), shop_day_start(today + timedelta(days=1))


class UtcDateTime(TypeDecorator):
    """A time-zone aware timestamp that always comes back as an aware UTC datetime.

    PostgreSQL keeps the zone; SQLite stores text without one and hands back naive
    values, which would then compare wrongly with ``utcnow()`` or display 8 hours off.
    Values are converted to UTC on the way in (naive ones are taken as UTC) and tagged
    UTC on the way out, on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
