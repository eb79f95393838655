"""The shop's one time zone (app/core/time.py): China time, UTC+8 all year."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.core.time import (
    SHOP_TZ,
    shop_day_bounds,
    shop_day_start,
    shop_time_text,
    shop_today,
    to_shop_time,
)


def test_a_shop_day_starts_at_16_00_utc_the_day_before():
    assert shop_day_start(date(2026, 3, 2)) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    # 23:59 UTC on 1 March is already 2 March in the shop; 15:59 UTC is still 1 March.
    assert shop_today(datetime(2026, 3, 1, 16, 0, tzinfo=UTC)) == date(2026, 3, 2)
    assert shop_today(datetime(2026, 3, 1, 15, 59, tzinfo=UTC)) == date(2026, 3, 1)
    start, end = shop_day_bounds(datetime(2026, 6, 30, 20, 0, tzinfo=UTC))  # summer: no DST
    assert (start, end) == (
        datetime(2026, 6, 30, 16, 0, tzinfo=UTC),
        datetime(2026, 7, 1, 16, 0, tzinfo=UTC),
    )


def test_stored_times_read_as_shop_time_even_when_sqlite_drops_the_zone():
    naive_utc = datetime(2026, 1, 31, 12, 5)  # how SQLite hands a stored UTC time back
    assert shop_time_text(naive_utc) == "2026-01-31 20:05"
    assert shop_time_text(naive_utc.replace(tzinfo=UTC), "%H:%M:%S") == "20:05:00"
    assert shop_time_text(None) == ""
    assert to_shop_time(naive_utc).isoformat() == "2026-01-31T20:05:00+08:00"
    assert to_shop_time(naive_utc).tzinfo is SHOP_TZ
