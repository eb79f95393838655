"""The periodic incentives job: tasks, invite rewards, settlement of rewards, grade sweep,
leaderboard rebuild.

Events keep things current (app/incentives/events.py); this job covers what no event
reports (a task created after the sales, a member who joined by application, a drifted
Redis set) and settles rewards, whose settlement depends on orders passing their hold.
It runs once per slot of ``INCENTIVES_INTERVAL_SECONDS`` (default 600), scheduled like the
commission settlement: one job per time slot, the slot claimed with ``SET NX`` so several
workers never schedule it twice, one run at a time (``single_flight``). Every step is
idempotent too (unique reward keys, conditional state changes, absolute Redis scores).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select

from app.core.time import utcnow
from app.distribution.models import Distributor
from app.extensions import db
from app.incentives import invites, leaderboards, tasks
from app.incentives.grades import upgrade_many
from jobs.queues import schedule_in_slot, single_flight

log = logging.getLogger(__name__)

INCENTIVES_SECONDS = 600


def _interval() -> int:
    return int(current_app.config.get("INCENTIVES_INTERVAL_SECONDS", INCENTIVES_SECONDS))


def schedule_incentives(at: datetime | None = None) -> str | None:
    """Schedule ``run_incentives`` for the slot after ``at``, once per slot."""
    return schedule_in_slot("incentives", "incentives", run_incentives, _interval(), "low", at)


def evaluate_everything(now: datetime | None = None) -> dict:
    """One pass of every rule (commits after each step); a summary for logs and tests."""
    now = now or utcnow()
    written: list[int] = []
    for task in tasks.open_tasks(now):
        written += tasks.evaluate_task(task)
        db.session.commit()
    invited = invites.evaluate_all()
    db.session.commit()
    # New members who joined by application or staff approval: their inviters' grades.
    since = now - timedelta(seconds=_interval() * 3)
    inviters = db.session.scalars(
        select(Distributor.parent_id)
        .where(
            Distributor.parent_id.is_not(None),
            or_(Distributor.created_at >= since, Distributor.approved_at >= since),
        )
        .distinct()
    ).all()
    upgraded = upgrade_many(inviters, "新成员加入后达标")
    db.session.commit()
    settled = tasks.settle_task_rewards(now) + invites.settle_invite_rewards(now)
    db.session.commit()
    leaderboards.rebuild_all()
    return {
        "task_entries": written,
        "invite_entries": invited,
        "upgraded": list(upgraded),
        "settled": settled,
    }


@single_flight("incentives")
def run_incentives() -> dict | None:
    """The periodic job: schedule the next run first (a crash keeps the chain), then work."""
    schedule_incentives()
    summary = evaluate_everything()
    log.info("incentives: %s", summary)
    return summary
