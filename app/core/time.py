"""Time helpers: every stored timestamp is time-zone aware (UTC)."""

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Return the current time in UTC, time-zone aware (use as a column default)."""
    return datetime.now(UTC)


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
