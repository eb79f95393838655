"""Risk checks as jobs (app/risk/signals.py): never on a request path.

- ``check_paid_orders``: queued by the paid-order follow-up (``jobs/commissions.py``)
  after its batch commits: the per-order signals of each followed-up order;
- ``check_refunded_order``: queued by each refund edge after its commit (admin approval,
  the Open API, WeChat's refund notice): threshold-then-refund and the refund rate;
- ``run_risk_sweep``: every ``RISK_SWEEP_SECONDS`` (default 10 minutes) the catch-up of
  both, over orders paid or refunded in the last ``SWEEP_LOOKBACK`` (a job lost with its
  worker, or Redis down at enqueue time, is made good here).

Every check writes its flags and holds once (unique keys), so a rerun, a retry or the
sweep meeting a job that already ran changes nothing. Each job commits at its own edge.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import select

from app.core.time import utcnow
from app.distribution.models import Binding
from app.extensions import db
from app.orders.models import REFUND_REFUNDED, Order, Refund
from app.risk import signals
from jobs.queues import enqueue_unless_live, schedule_in_slot, single_flight

log = logging.getLogger(__name__)

RISK_SWEEP_SECONDS = 600
SWEEP_LOOKBACK = timedelta(days=2)
SWEEP_LIMIT = 5000


def check_paid_orders(order_ids: list[int], now: datetime | None = None) -> int:
    """The per-order signals of paid orders; new flags (commits)."""
    flagged = 0
    now = now or utcnow()
    bindings_checked: set[int] = set()  # once per distributor for the job's one ``now``
    for order_id in order_ids:
        flagged += signals.check_order(order_id, now, bindings_checked)
        db.session.commit()
    return flagged


def check_refunded_order(order_id: int, now: datetime | None = None) -> int:
    """The signals a refund of the order may trip; new flags (commits)."""
    flagged = signals.after_refund(order_id, now)
    db.session.commit()
    return flagged


def _enqueue(func, arg, job_id: str) -> None:
    try:
        enqueue_unless_live(
            "low", func, arg, job_id=job_id, retry=Retry(max=3, interval=[10, 30, 60])
        )
    except RedisError:  # the periodic sweep makes it good
        log.warning("risk check %s not queued: Redis unreachable", job_id)


def enqueue_paid_check(order_ids: list[int]) -> None:
    """Queue the checks of followed-up paid orders (after their commit)."""
    if order_ids:
        ids = sorted(order_ids)
        _enqueue(check_paid_orders, ids, f"risk-paid-{ids[0]}-{len(ids)}")


def enqueue_refund_check(order_id: int | None, refund_id: int) -> None:
    """Queue the checks of a refunded order (after the refund's commit)."""
    if order_id is not None:
        _enqueue(check_refunded_order, order_id, f"risk-refund-{order_id}-{refund_id}")


def sweep(now: datetime | None = None) -> dict:
    """Check again what was paid or refunded lately and the bindings of the last hour."""
    now = now or utcnow()
    since = now - SWEEP_LOOKBACK
    paid = db.session.scalars(
        select(Order.id)
        .where(Order.paid_at.is_not(None), Order.paid_at >= since)
        .order_by(Order.id)
        .limit(SWEEP_LIMIT)
    ).all()
    refunded = db.session.scalars(
        select(Refund.order_id)
        .where(Refund.status == REFUND_REFUNDED, Refund.refunded_at >= since)
        .distinct()
        .limit(SWEEP_LIMIT)
    ).all()
    distributors = db.session.scalars(
        select(Binding.distributor_id)
        .where(Binding.bound_at >= now - timedelta(hours=1))
        .distinct()
    ).all()
    db.session.rollback()
    flagged = check_paid_orders(list(paid), now)
    for order_id in refunded:
        flagged += check_refunded_order(order_id, now)
    for distributor_id in distributors:
        flagged += signals.check_bindings(distributor_id, now)
        db.session.commit()
    return {"paid": len(paid), "refunded": len(refunded), "flagged": flagged}


def _interval() -> int:
    return int(current_app.config.get("RISK_SWEEP_SECONDS", RISK_SWEEP_SECONDS))


def schedule_risk_sweep(at: datetime | None = None) -> str | None:
    """Schedule ``run_risk_sweep`` for the slot after ``at``, once per slot."""
    return schedule_in_slot("risk", "risk-sweep", run_risk_sweep, _interval(), "low", at)


@single_flight("risk")
def run_risk_sweep() -> dict | None:
    """The periodic catch-up: schedule the next run first, then sweep."""
    schedule_risk_sweep()
    done = sweep()
    log.info("risk sweep: %s", done)
    return done
