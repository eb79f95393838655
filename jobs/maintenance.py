"""Housekeeping jobs: the worker heartbeat, and pruning rows that only matter for a while.

``wechat_messages_seen`` dedupes WeChat's pushes (retried within seconds) and
``outbound_messages`` is the template-message outbox, whose unique key stops a notice
being sent twice; ``staff_sessions`` keeps every staff sign-in, which ends within 12 hours.
All would grow forever; old rows are deleted in batches, oldest first
(ids grow with time, so the scan stops early), by a job every ``PRUNE_INTERVAL_SECONDS``
(default an hour).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select

from app.accounts.models import StaffSession
from app.core.redis import get_redis
from app.core.time import utcnow
from app.extensions import db
from app.wechat.models import OutboundMessage, WechatMessageSeen
from jobs.queues import schedule_in_slot, single_flight

HEARTBEAT_KEY = "worker:heartbeat"
# WeChat retries a push within about 15 seconds; a week is ample to dedupe any replay.
SEEN_KEEP = timedelta(days=7)
# Sent or failed notices stay 90 days for the admin log; pending ones are never pruned.
OUTBOX_KEEP = timedelta(days=90)
# A staff session lives 12 hours at most; 30 days of them answer "who signed in from where".
STAFF_SESSIONS_KEEP = timedelta(days=30)
PRUNE_BATCH = 5000
PRUNE_SECONDS = 3600


def record_heartbeat() -> str:
    """Store the time now, so the admin dashboard can show the worker is alive.

    Every (non-burst) worker's ticker calls it each tick (``jobs/worker.py``), every
    ``WORKER_TICK_SECONDS``; the dashboard takes a heartbeat older than a minute or so
    for a worker that stopped (``app/admin/dashboard.py``).
    """
    stamp = utcnow().isoformat()
    get_redis().set(HEARTBEAT_KEY, stamp, ex=24 * 3600)
    return stamp


def _delete_batch(model, batch: int, *conditions) -> int:
    """Delete up to ``batch`` rows matching ``conditions``, lowest ids first; flushes."""
    ids = db.session.scalars(
        select(model.id).where(*conditions).order_by(model.id).limit(batch)
    ).all()
    if ids:
        db.session.execute(
            delete(model).where(model.id.in_(ids)).execution_options(synchronize_session=False)
        )
    return len(ids)


def prune_old_rows(now: datetime | None = None, batch: int = PRUNE_BATCH) -> dict[str, int]:
    """Delete push dedupe rows older than ``SEEN_KEEP``, finished outbox rows older than
    ``OUTBOX_KEEP`` and staff sessions begun before ``STAFF_SESSIONS_KEEP`` (long over), a
    batch of each per call, committing after each; the counts."""
    now = now or utcnow()
    seen = _delete_batch(WechatMessageSeen, batch, WechatMessageSeen.received_at < now - SEEN_KEEP)
    db.session.commit()
    outbox = _delete_batch(
        OutboundMessage,
        batch,
        OutboundMessage.status.in_(("sent", "failed")),
        OutboundMessage.created_at < now - OUTBOX_KEEP,
    )
    db.session.commit()
    sessions = _delete_batch(
        StaffSession, batch, StaffSession.created_at < now - STAFF_SESSIONS_KEEP
    )
    db.session.commit()
    return {"seen": seen, "outbox": outbox, "staff_sessions": sessions}


def schedule_pruning(at: datetime | None = None) -> str | None:
    """Schedule ``run_pruning`` for the slot after ``at`` (default now), once per slot."""
    interval = int(current_app.config.get("PRUNE_INTERVAL_SECONDS", PRUNE_SECONDS))
    return schedule_in_slot(
        "maintenance:prune", "maintenance-prune", run_pruning, interval, "low", at
    )


@single_flight("maintenance:prune")
def run_pruning(batch: int = PRUNE_BATCH) -> dict[str, int] | None:
    """The periodic job: schedule the next run first (a crash keeps the chain), then prune
    until a batch comes back short."""
    schedule_pruning()
    total = {"seen": 0, "outbox": 0, "staff_sessions": 0}
    while True:
        done = prune_old_rows(batch=batch)
        for key, count in done.items():
            total[key] += count
        if all(count < batch for count in done.values()):
            return total
