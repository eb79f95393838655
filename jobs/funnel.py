"""The periodic promotion-funnel rollup (app/distribution/funnel_days.py says what it counts).

Every ``FUNNEL_ROLLUP_SECONDS`` (default 10 minutes) it copies the visits counted in Redis
and the bindings, paid orders, sales and commission of today and the two days before into
``distributor_funnel_days``, one transaction per day, and marks the days that have ended
as closed (read from the database alone, so a Redis flush loses no closed day). It
schedules itself like the report refresh: one job per time slot, the slot claimed with
``SET NX``. Two runs at once are harmless: every write is an upsert of the same figures.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app

from app.distribution.funnel_days import rollup_day, rollup_days
from app.extensions import db
from jobs.queues import schedule_in_slot, single_flight

log = logging.getLogger(__name__)

FUNNEL_SECONDS = 600


def _interval() -> int:
    return int(current_app.config.get("FUNNEL_ROLLUP_SECONDS", FUNNEL_SECONDS))


def schedule_funnel_rollup(at: datetime | None = None) -> str | None:
    """Schedule ``run_funnel_rollup`` for the slot after ``at``, once per slot."""
    return schedule_in_slot("funnel", "funnel", run_funnel_rollup, _interval(), "low", at)


def roll_up(now: datetime | None = None) -> dict[str, int]:
    """Roll up the recent days, committing per day; returns rows written per day."""
    written: dict[str, int] = {}
    for day in rollup_days(now):
        written[day.isoformat()] = rollup_day(day, now)
        db.session.commit()
    return written


@single_flight("funnel")
def run_funnel_rollup() -> dict | None:
    """The periodic job: schedule the next run first (a crash keeps the chain), then work."""
    schedule_funnel_rollup()
    written = roll_up()
    log.info("funnel rollup: %s", written)
    return written
