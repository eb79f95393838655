"""Commission jobs: the follow-up of a paid order, and the periodic settlement.

``compute_order_commissions`` is enqueued by ``on_order_paid`` with the deterministic
job id ``commissions-<order id>`` and retries with backoff. It may still run twice (a
re-enqueue, an abandoned job that RQ retries, two workers): every entry it writes is
guarded by a unique key, and the one thing that is not idempotent, extending the
customer's protection period, is claimed once per order in Redis (``SET NX``). If the
worker dies between that claim and the commit, the extension of that one order is lost
(never doubled); everything else is redone by the retry. The same commit inserts
the order's ``OrderFollowUp`` row: an order paid without one is one the worker's recovery pass
(``jobs.payments.resume_lost_follow_ups``) queues again.

``run_settlement`` settles due entries once per slot of ``SETTLEMENT_INTERVAL_SECONDS``
(default 600), scheduled like the order timers (``jobs/payments.py``): one job per time
slot, its id derived from the slot and claimed with ``SET NX`` so several workers never
schedule the same slot twice, and one run at a time (``single_flight``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from rq import Retry

from app.core.redis import get_redis
from app.core.sql import dialect_insert
from app.core.time import utcnow
from app.distribution.commissions import settle_due
from app.earnings.on_paid import follow_up_order
from app.extensions import db
from app.orders.models import Order, OrderFollowUp
from app.signals import commissions_settled
from jobs.queues import enqueue_unless_live, schedule_in_slot, single_flight

log = logging.getLogger(__name__)

SETTLEMENT_SECONDS = 600
RETRY_INTERVALS = [10, 60, 300, 900, 3600]  # backoff between attempts, seconds


def commissions_job_id(order_id: int) -> str:
    """The one job id an order's commission job can have."""
    return f"commissions-{order_id}"


def enqueue_commissions(order_id: int):
    """Queue ``compute_order_commissions`` for a paid order (after the commit), unless
    that job is already waiting, scheduled or running; the job, or None."""
    return enqueue_unless_live(
        "default",
        compute_order_commissions,
        order_id,
        job_id=commissions_job_id(order_id),
        retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
        result_ttl=7 * 86400,
    )


def _protection_claim(order_id: int) -> str:
    return f"commissions:protection-extended:{order_id}"


def mark_followed_up(order_id: int) -> None:
    """Record (once) that ``order_id``'s follow-up is written; flushes with the caller."""
    db.session.execute(
        dialect_insert(OrderFollowUp)
        .values(order_id=order_id, done_at=utcnow())
        .on_conflict_do_nothing(index_elements=["order_id"])
    )


def compute_order_commissions(order_id: int) -> dict:
    """Run the paid-order pipeline (``app/earnings/on_paid.py``) for one order; commit once.

    Returns a summary for logs and tests. Running it again writes nothing new.
    """
    order = db.session.get(Order, order_id)
    if order is None or order.paid_at is None:
        return {"order_id": order_id, "skipped": True}
    redis = get_redis()
    claim = _protection_claim(order_id)
    extend = bool(redis.set(claim, 1, nx=True, ex=90 * 86400))
    try:
        done = follow_up_order(order, extend_protection_once=extend)
        mark_followed_up(order_id)  # what the recovery pass looks for
        db.session.commit()
    except Exception:
        db.session.rollback()
        if extend:
            redis.delete(claim)  # nothing was extended: let the retry do it
        raise
    log.info("order %s: %s commission entries written", order_id, done.entries)
    return {
        "order_id": order_id,
        "entries": done.entries,
        "dividends": done.dividends,
        "joined": done.joined,
        "upgraded": list(done.upgraded),
    }


# --- settlement ---------------------------------------------------------------------------


def _interval() -> int:
    return int(current_app.config.get("SETTLEMENT_INTERVAL_SECONDS", SETTLEMENT_SECONDS))


def schedule_settlement(at: datetime | None = None) -> str | None:
    """Schedule ``run_settlement`` for the slot after ``at`` (default now), once per slot."""
    return schedule_in_slot(
        "commissions:settlement", "commissions-settlement", run_settlement, _interval(), "low", at
    )


@single_flight("commissions:settlement")
def run_settlement(batch: int = 5000) -> int | None:
    """The periodic job: schedule the next run first (a crash keeps the chain), then settle.

    Commits after every batch so no lock is held for long; returns how many settled
    (None when another run was working).
    """
    schedule_settlement()
    now = utcnow()
    settled = settle_due(now, batch=batch, after_batch=db.session.commit)
    if settled:
        commissions_settled.send(__name__, settled_at=now)  # the entries stamped settled_at = now
        db.session.commit()
    log.info("settled %s commission entries", settled)
    return settled
