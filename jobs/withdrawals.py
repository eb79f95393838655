"""Withdrawal jobs: keep WeChat transfer bills and withdrawals in step.

WeChat notifies a bill's final state (``POST /pay/transfer-notify``), but a notice can be
lost and a create call can time out. ``sync_transfers`` asks WeChat about every WeChat
withdrawal still ``approved`` or ``awaiting_confirm`` after ``WITHDRAWAL_SYNC_MINUTES``
(default 10) and applies the answer: paid, failed (money back: also the 24 h expiry), or,
for an approved withdrawal WeChat has never heard of, the bill created again with the same
out_bill_no. One commit per withdrawal, so one bad bill never holds back the rest.

The worker schedules ``run_transfer_sync`` like the order timers (``jobs.payments``): once
per slot of ``TRANSFER_SYNC_INTERVAL_SECONDS`` (default 300), the slot claimed with ``SET NX``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app

from app.core.status import InvalidTransition
from app.core.time import utcnow
from app.distribution.distributors import DistributionError
from app.distribution.models import Withdrawal
from app.distribution.withdrawals import stuck_withdrawal_ids, sync_withdrawal
from app.extensions import db
from app.payments.client import PaymentError
from jobs.queues import schedule_in_slot, single_flight

log = logging.getLogger(__name__)

SYNC_MINUTES = 10
SYNC_SECONDS = 300


def sync_transfers(now: datetime | None = None) -> dict[str, int]:
    """Query and apply every stuck WeChat withdrawal; return counts by outcome."""
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
    return int(current_app.config.get("TRANSFER_SYNC_INTERVAL_SECONDS", SYNC_SECONDS))


def schedule_transfer_sync(at: datetime | None = None) -> str | None:
    """Schedule ``run_transfer_sync`` for the slot after ``at`` (default now), once per slot."""
    return schedule_in_slot(
        "withdrawals:sync", "withdrawals-sync", run_transfer_sync, _interval(), "low", at
    )


@single_flight("withdrawals:sync")
def run_transfer_sync() -> dict | None:
    """The periodic job: schedule the next run first (a crash keeps the chain), then work."""
    schedule_transfer_sync()
    return sync_transfers()
