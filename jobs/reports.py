"""The periodic report-summary refresh (app/reports/summary.py has the exactness rule).

Every ``REPORTS_INTERVAL_SECONDS`` (default 10 minutes) it recomputes the daily summaries of
past days that have none yet or that changed since (a refund of an old order, a settlement
batch, a reversal), one transaction per run of days. It schedules itself like the
incentives pass: one job per time slot, the slot claimed with ``SET NX``. Two runs at once
are harmless: each day is replaced whole, and a day is marked clean only if nothing
changed it since its figures were read.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app

from app.extensions import db
from app.reports.summary import due_days, refresh_run, refresh_runs
from jobs.queues import schedule_in_slot, single_flight

log = logging.getLogger(__name__)

REPORTS_SECONDS = 600


def _interval() -> int:
    return int(current_app.config.get("REPORTS_INTERVAL_SECONDS", REPORTS_SECONDS))


def schedule_report_refresh(at: datetime | None = None) -> str | None:
    """Schedule ``run_report_refresh`` for the slot after ``at``, once per slot."""
    return schedule_in_slot("reports", "reports", run_report_refresh, _interval(), "low", at)


def refresh_summaries(limit: int = 400, now: datetime | None = None) -> dict:
    """Recompute the due days (newest first, at most ``limit``), committing per run."""
    days = due_days(now, limit=limit)
    db.session.commit()  # end the read transaction before the first refresh run
    marked = 0
    for first, last in refresh_runs(days):
        marked += refresh_run(first, last, now)
        db.session.commit()
    return {"due": len(days), "clean": marked}


@single_flight("reports")
def run_report_refresh() -> dict | None:
    """The periodic job: schedule the next run first (a crash keeps the chain), then work."""
    schedule_report_refresh()
    summary = refresh_summaries()
    log.info("report summaries: %s", summary)
    return summary
