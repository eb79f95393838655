"""Withdrawal jobs: keep WeChat transfer bills and withdrawals in step.

WeChat notifies a bill's final state (``POST /pay/transfer-notify``), but a notice can be
lost and a create call can time out. ``sync_transfers`` asks WeChat about every WeChat
withdrawal still ``approved`` or ``awaiting_confirm`` after ``WITHDRAWAL_SYNC_MINUTES``
(default 10) and applies the answer: paid, failed (money back: also the 24 h expiry), or,
for an approved withdrawal WeChat has never heard of, the bill created again with the same
out_bill_no. One commit per withdrawal, so one bad bill never holds back the rest.

The worker schedules ``run_transfer_sync`` like the order timers (``jobs.payments``): once
per slot of ``WITHDRAWAL_SYNC_SECONDS`` (default 300), the slot claimed with ``SET NX``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import current_app

from app.core.redis import get_redis
from app.core.time import utcnow
from app.distribution.distributors import DistributionError
from app.distribution.models import Withdrawal
from app.extensions import db
from app.orders.states import InvalidTransition
from jobs.queues import get_queue

log = logging.getLogger(__name__)

SYNC_MINUTES = 10
SYNC_SECONDS = 300


def sync_transfers(now: datetime | None = None) -> dict[str, int]:
    """Query and apply every stuck WeChat withdrawal; return counts by outcome."""
    from app.distribution.withdrawals import stuck_withdrawal_ids, sync_withdrawal
    from app.payments.client import PaymentError

    minutes = int(current_app.config.get("WITHDRAWAL_SYNC_MINUTES", SYNC_MINUTES))
    older_than = (now or utcnow()) - timedelta(minutes=minutes)
    outcomes: dict[str, int] = {}
    for withdrawal_id in stuck_withdrawal_ids(older_than):
        db.session.rollback()  # each withdrawal starts from a clean transaction
        w = db.session.get(Withdrawal, withdrawal_id)
        try:
            outcome = sync_withdrawal(w)
            db.session.commit()
        except PaymentError as err:
            # start_transfer flushed WeChat's message into review_note: keep it for staff.
            db.session.commit()
            log.warning("withdrawal %s: WeChat %s (%s)", w.out_bill_no, err.code, err.message)
            outcome = "retry"
        except (InvalidTransition, DistributionError) as err:
            db.session.rollback()
            log.warning("withdrawal %s: %s", withdrawal_id, err)
            outcome = "skipped"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    db.session.rollback()
    return outcomes


def _interval() -> int:
    return int(current_app.config.get("WITHDRAWAL_SYNC_SECONDS", SYNC_SECONDS))


def sync_job_id(slot: int) -> str:
    return f"withdrawals-sync-{slot}"


def schedule_transfer_sync(at: datetime | None = None) -> str | None:
    """Schedule ``run_transfer_sync`` for the slot after ``at`` (default now), once per slot.

    Returns the job id when this call scheduled it, None when another worker already had.
    """
    interval = _interval()
    slot = int((at or utcnow()).timestamp() // interval) + 1
    if not get_redis().set(f"withdrawals:sync:slot:{slot}", 1, nx=True, ex=interval * 10):
        return None
    job_id = sync_job_id(slot)
    get_queue("low").enqueue_at(
        datetime.fromtimestamp(slot * interval, UTC),
        run_transfer_sync,
        job_id=job_id,
        result_ttl=3600,
    )
    return job_id


def run_transfer_sync() -> dict:
    """The periodic job: schedule the next run first (a crash keeps the chain), then work."""
    schedule_transfer_sync()
    return sync_transfers()
