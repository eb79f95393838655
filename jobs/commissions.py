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

Who queues it. The pay path no longer does: it wakes the follow-up sweep
(``jobs/follow_ups.py``), which follows pending paid orders up in batches through
``follow_up_batch`` below. The commission job remains the door for one order: an order the
sweep holds back (it failed alone), ``on_order_paid`` run by hand or left from before,
the recovery pass for held orders.

Batches. A backlog of paid orders (a sale day) is followed up many orders per job and per
transaction: when an order's commission job runs, it claims up to
``FOLLOW_UP_BATCH_SIZE`` - 1 other paid orders still without follow-up (``SET NX`` on
``commissions:batch:<order id>`` in Redis, ``BATCH_CLAIM_SECONDS``) and runs the pipeline
(``app.earnings.on_paid.follow_up_orders``) for all of them in one transaction, with
their ``OrderFollowUp`` rows and their paid notices (deduplicated: an order's own
``on_order_paid`` sends it too). The other orders' jobs then find their follow-up
committed and do nothing (``on_order_paid`` does not even queue them). Commission jobs
go to the front of the queue (unless a running batch holds their order), so the first
one takes the next batch of the backlog before the other orders' paid-jobs run. One
batch runs at a time (``commissions:batch:running``): batches share hot rows (the team
totals at the top of the tree) that each holds until its commit, so a job that finds a
batch running follows up its own order alone, as every job did before batches. If
anything in a batch fails, the batch is rolled back and the job follows up its own order
alone (a bad order holds back only itself; the others' own jobs take them). A worker
killed mid-batch commits nothing; its job is retried, and every claimed order still has
its own job (or the recovery pass).

``run_settlement`` settles due entries once per slot of ``SETTLEMENT_INTERVAL_SECONDS``
(default 600), scheduled like the order timers (``jobs/payments.py``): one job per time
slot, its id derived from the slot and claimed with ``SET NX`` so several workers never
schedule the same slot twice, and one run at a time (``single_flight``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import LockError
from rq import Retry
from sqlalchemy import bindparam, exists, select

from app.core.redis import get_redis
from app.core.sql import dialect_insert
from app.core.time import utcnow
from app.earnings.on_paid import follow_up_orders
from app.extensions import db
from app.ledger.settlement import settle_due
from app.orders.models import Order, OrderFollowUp
from app.signals import commissions_settled, orders_paid
from jobs.queues import enqueue_unless_live, schedule_in_slot, single_flight
from jobs.risk import enqueue_paid_check

log = logging.getLogger(__name__)

SETTLEMENT_SECONDS = 600
RETRY_INTERVALS = [10, 60, 300, 900, 3600]  # backoff between attempts, seconds
FOLLOW_UP_BATCH_SIZE = 100  # paid orders followed up in one transaction (sweep, commission job)
BATCH_LOCK = "commissions:batch:running"
# How long a batch's claim on an order lasts: longer than a batch takes; a claim left by
# a killed worker only makes other batches skip the order until then (its own job does it).
BATCH_CLAIM_SECONDS = 120
# Paid orders older than this are not picked up by other orders' batches (their own jobs,
# or the recovery pass, follow them up); it keeps the search on the recent end of orders.
BATCH_WINDOW = timedelta(hours=6)


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
        # Ahead of the paid-jobs of a backlog: it takes a batch of them (module docstring).
        # Not when a running batch holds the order: it would only wait for that batch.
        at_front=not get_redis().exists(_batch_claim(order_id)),
    )


def _protection_claim(order_id: int) -> str:
    return f"commissions:protection-extended:{order_id}"


def mark_followed_up(*order_ids: int) -> None:
    """Record (once) that the orders' follow-up is written; flushes with the caller."""
    if order_ids:
        now = utcnow()
        db.session.execute(
            dialect_insert(OrderFollowUp)
            .values([{"order_id": order_id, "done_at": now} for order_id in order_ids])
            .on_conflict_do_nothing(index_elements=["order_id"])
        )


_FOLLOWED_UP = select(exists().where(OrderFollowUp.order_id == bindparam("order_id")))
_WITHOUT_FOLLOW_UP = (
    select(Order.id)
    .where(
        Order.paid_at >= bindparam("since"),
        Order.id != bindparam("own_id"),
        ~exists().where(OrderFollowUp.order_id == Order.id),
    )
    .order_by(Order.id)
    .limit(bindparam("limit"))
)


def is_followed_up(order_id: int) -> bool:
    """Whether ``order_id``'s follow-up has committed (its ``OrderFollowUp`` row)."""
    return bool(db.session.scalar(_FOLLOWED_UP, {"order_id": order_id}))


def batch_size() -> int:
    """How many paid orders one commission job follows up at most (``FOLLOW_UP_BATCH_SIZE``)."""
    return max(1, int(current_app.config.get("FOLLOW_UP_BATCH_SIZE", FOLLOW_UP_BATCH_SIZE)))


def _batch_claim(order_id: int) -> str:
    return f"commissions:batch:{order_id}"


def claim_batch(order_id: int, size: int) -> list[int]:
    """``order_id`` and up to ``size`` - 1 other paid orders without follow-up, oldest
    first, each claimed in Redis so a concurrent batch takes others; the ids in order.

    The own order is always in (its job must do it, claimed elsewhere or not: the line
    lock then makes the two runs go one after the other).
    """
    redis = get_redis()
    redis.set(_batch_claim(order_id), 1, ex=BATCH_CLAIM_SECONDS)
    if size <= 1:
        return [order_id]
    candidates = db.session.scalars(
        _WITHOUT_FOLLOW_UP,
        {"since": utcnow() - BATCH_WINDOW, "own_id": order_id, "limit": 3 * size},
    ).all()
    db.session.rollback()  # no snapshot held while Redis is asked
    if not candidates:
        return [order_id]
    with redis.pipeline(transaction=False) as pipe:
        for candidate in candidates:
            pipe.set(_batch_claim(candidate), 1, nx=True, ex=BATCH_CLAIM_SECONDS)
        won = [c for c, ok in zip(candidates, pipe.execute(), strict=True) if ok]
    extra = won[size - 1 :]
    if extra:
        redis.delete(*(_batch_claim(c) for c in extra))
    return [order_id, *won[: size - 1]]


def _release(keys: list[str]) -> None:
    if keys:
        get_redis().delete(*keys)


def follow_up_batch(order_ids: list[int], own_id: int) -> list:
    """Run the pipeline for ``order_ids`` in one transaction and commit; the results.

    The protection extension is claimed once per order in Redis (``SET NX``) first; the
    claims of a batch that fails are given back. Orders other than ``own_id`` get their
    paid notices here too (their own paid-job then skips): deduplicated per order.
    """
    redis = get_redis()
    with redis.pipeline(transaction=False) as pipe:
        for order_id in order_ids:
            pipe.set(_protection_claim(order_id), 1, nx=True, ex=90 * 86400)
        extend = [o for o, ok in zip(order_ids, pipe.execute(), strict=True) if ok]
    try:
        done = follow_up_orders(order_ids, extend_protection=set(extend))
        followed = [result.order_id for result in done if not result.skipped]
        others = [order_id for order_id in followed if order_id != own_id]
        if others:  # their paid notices, all at once (their own paid-jobs, if any, skip)
            orders = db.session.scalars(select(Order).where(Order.id.in_(others)))
            orders_paid.send(__name__, orders=sorted(orders, key=lambda o: o.id))
        mark_followed_up(*followed)  # what the recovery pass looks for
        db.session.commit()
    except Exception:
        db.session.rollback()
        _release([_protection_claim(o) for o in extend])  # nothing was extended
        raise
    enqueue_paid_check(followed)  # the risk checks (jobs/risk.py), after the commit
    return done


def compute_order_commissions(order_id: int) -> dict:
    """Follow up a paid order through the paid-order pipeline (``app/earnings/on_paid.py``),
    with a batch of other paid orders still waiting (module docstring); commit once.

    Returns a summary of the job's own order for logs and tests (and how many orders the
    batch followed up). Running it again writes nothing new.
    """
    order = db.session.get(Order, order_id)
    if order is None or order.paid_at is None:
        return {"order_id": order_id, "skipped": True}
    if is_followed_up(order_id):  # done already (by a batch, or a run before this one)
        db.session.rollback()
        return _summary(order_id, None, 0)
    db.session.rollback()
    # One batch at a time: batches share hot rows (the team totals of the tree's top, the
    # distributors tasks lock) that each holds until its commit, so a second batch would
    # only wait behind the first. A job that finds a batch running follows up its own
    # order alone, a short transaction, as every job did before batches.
    lock = get_redis().lock(BATCH_LOCK, timeout=BATCH_CLAIM_SECONDS, thread_local=False)
    batching = lock.acquire(blocking=False)
    try:
        batch = claim_batch(order_id, batch_size() if batching else 1)
        try:
            done = follow_up_batch(batch, order_id)
        except Exception:
            _release([_batch_claim(o) for o in batch[1:]])  # their own jobs will take them
            if len(batch) == 1:
                _release([_batch_claim(order_id)])  # a later batch may take it before the retry
                raise
            log.exception("batch of %s orders failed: order %s alone", len(batch), order_id)
            batch = [order_id]
            try:
                done = follow_up_batch(batch, order_id)
            except Exception:
                _release([_batch_claim(order_id)])
                raise
    finally:
        if batching:
            try:
                lock.release()
            except LockError:
                log.warning("the batch lock lapsed before the batch ended")
    own = done[0]
    log.info(
        "order %s: %s commission entries written (%s orders in the batch)",
        order_id,
        own.entries,
        len(batch),
    )
    return _summary(order_id, own, len(batch))


def _summary(order_id: int, own, batch: int) -> dict:
    return {
        "order_id": order_id,
        "entries": own.entries if own else 0,
        "dividends": own.dividends if own else 0,
        "joined": own.joined if own else False,
        "upgraded": list(own.upgraded) if own else [],
        "batch": batch,
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
