"""Time helpers: every stored timestamp is time-zone aware (UTC)."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time in UTC, time-zone aware (use as a column default)."""
    return datetime.now(UTC)
