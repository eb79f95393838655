"""The sweep: paid orders followed up by one job, in batches, not one RQ job per order.

A pay notice commits the order paid and calls ``jobs.payments.enqueue_order_paid``: the
order's id goes into ``PAID_KEY`` and ``wake_follow_ups`` runs: one ``SET NX``, and only
when no sweep is waiting yet, one job ``follow_up_pending`` (id
``follow-up-pending-<token>``; the waiting job's id is the value of ``WAKE_KEY``). An RQ
job costs about as much as a whole order's follow-up done in a batch, so a backlog of paid
orders (a sale day) is followed up by a handful of jobs, not by one or two per order.

``follow_up_pending`` takes the oldest paid orders that have no ``OrderFollowUp`` row
(those the pay path named in ``PAID_KEY``, a sorted set of ids, whenever WeChat says they
were paid, and those paid within the window, ``jobs.commissions.BATCH_WINDOW``),
``FOLLOW_UP_BATCH_SIZE`` at a time, follows each batch up in one transaction
(``jobs.commissions.follow_up_batch``: the pipeline, the paid notices, the
``OrderFollowUp`` rows, one commit) and goes on until none are left or its time is up
(``SWEEP_SECONDS``; it then queues its continuation, so other jobs get a turn).

One sweep at a time (``SWEEP_LOCK``): every batch adds to the same hot rows (the team
totals at the top of the tree, the distributors whose tasks are evaluated) and holds them
until its commit, so a second sweep would only wait behind the first. A sweep that finds
another running raises ``RERUN_KEY`` and ends; the running one looks at that flag after
releasing the lock and sweeps again if it is up. The order of the two steps (flag, then
lock; release, then flag) means an order paid while a sweep ends is never left behind.
The lock's value names the sweep's worker, so the sweep of a worker that died (its alive
key lapsed) is taken over at once by the next sweep (RQ retries the dead one's job).

Exactly once: everything the pipeline writes is keyed, and the ``OrderFollowUp`` row goes
in the batch's commit. A batch that fails is rolled back and its orders are followed up
one per transaction; an order that fails alone is *held* (``HELD_KEY``, for the length of
the window): sweeps skip it and its own commission job (``enqueue_commissions``, with
retries and backoff) takes it, so one bad order never blocks the backlog. Lost sweeps (a
worker killed, Redis down at the pay notice) are the recovery pass's business:
``jobs.payments.resume_lost_follow_ups`` wakes a sweep when paid orders older than the
grace have no follow-up and no sweep is waiting.
"""

from __future__ import annotations

import logging
import time
import uuid

from rq import Retry, get_current_job
from sqlalchemy import bindparam, exists, select

from app.core.redis import get_redis
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import Order, OrderFollowUp
from jobs.commissions import BATCH_WINDOW, batch_size, enqueue_commissions, follow_up_batch
from jobs.queues import enqueue_once_piped, job_is_live, worker_is_alive

log = logging.getLogger(__name__)

SWEEP_JOB_PREFIX = "follow-up-pending"
WAKE_KEY = "follow-ups:waiting"  # the id of the sweep job waiting in the queue
RERUN_KEY = "follow-ups:rerun"  # a sweep was asked for while one ran
SWEEP_LOCK = "follow-ups:running"
PAID_KEY = "follow-ups:paid"  # paid orders the pay path named, scored by id
HELD_KEY = "follow-ups:held"  # orders that failed alone: left to their own jobs
# A sweep hands over to a fresh job after this long (other jobs get a turn).
SWEEP_SECONDS = 20
# The lock's value names the sweep's worker: a sweep of a dead worker (its alive key
# lapsed, ``jobs.queues.worker_is_alive``) is taken over at once; the TTL only bounds a
# sweep run outside a worker.
SWEEP_LOCK_SECONDS = 120
# A waiting sweep's token outlives any queue wait; the recovery pass clears a stale one.
WAKE_SECONDS = 600
PAID_COUNTER_KEY = "orders:paid:followups"

_PENDING = (
    select(Order.id)
    .where(
        Order.paid_at >= bindparam("since"),
        ~exists().where(OrderFollowUp.order_id == Order.id),
    )
    .order_by(Order.id)
    .limit(bindparam("limit"))
)
_WAITING_AMONG = select(Order.id).where(
    Order.id.in_(bindparam("ids", expanding=True)),
    Order.paid_at.is_not(None),
    ~exists().where(OrderFollowUp.order_id == Order.id),
)
_DONE_AMONG = select(OrderFollowUp.order_id).where(
    OrderFollowUp.order_id.in_(bindparam("ids", expanding=True))
)

# Deletes KEYS[1] only if it still holds ARGV[1] (a sweep clears its own token only).
_DELETE_IF = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def paid_done_key(order_id: int) -> str:
    """The Redis marker set once an order's follow-up has been counted."""
    return f"orders:paid:done:{order_id}"


def waiting_sweep() -> str | None:
    """The id of the sweep job queued and not started yet, if any."""
    value = get_redis().get(WAKE_KEY)
    return value.decode() if isinstance(value, bytes) else value


def wake_follow_ups() -> str | None:
    """Queue a sweep unless one is waiting already; the new job's id, or None. One
    ``SET NX`` when a sweep is waiting.

    The sweep goes to the front of its queue: money before messages. Follow-ups queue
    template messages by the hundred (a chunk job per 50), and a sweep queued behind a
    sale day's backlog of them waited a minute or more (bench/cluster.py). Only one sweep
    ever waits, so it never holds the queue for long.
    """
    redis = get_redis()
    job_id = f"{SWEEP_JOB_PREFIX}-{uuid.uuid4().hex[:16]}"
    if not redis.set(WAKE_KEY, job_id, nx=True, ex=WAKE_SECONDS):
        return None
    try:
        enqueue_once_piped(
            "default",
            follow_up_pending,
            job_id=job_id,
            result_ttl=86400,
            retry=Retry(max=3, interval=[5, 30, 60]),
            at_front=True,
        )
    except Exception:
        _forget_token(job_id)
        raise
    return job_id


def _forget_token(job_id: str) -> None:
    get_redis().eval(_DELETE_IF, 1, WAKE_KEY, job_id)


def clear_stale_wake() -> bool:
    """Forget the waiting sweep's token if RQ will not run that job; True if it did."""
    job_id = waiting_sweep()
    if job_id is None or job_is_live(job_id):
        return False
    _forget_token(job_id)
    return True


def held_orders() -> set[int]:
    """Orders a sweep skips: they failed alone and their own commission job has them."""
    return {int(i) for i in get_redis().smembers(HELD_KEY)}


def hold(order_id: int) -> None:
    """Leave ``order_id`` to its own commission job (with retries); sweeps skip it."""
    hold_for_a_person(order_id)
    enqueue_commissions(order_id)


def hold_for_a_person(order_id: int) -> None:
    """Make sweeps skip ``order_id`` without queueing anything (it failed too often)."""
    redis = get_redis()
    redis.sadd(HELD_KEY, order_id)
    redis.expire(HELD_KEY, int(BATCH_WINDOW.total_seconds()))


def release_held(order_id: int) -> None:
    """Let sweeps take ``order_id`` again (its follow-up committed, or a person retries it)."""
    get_redis().srem(HELD_KEY, order_id)


def pending_orders(limit: int, skip: set[int] = frozenset()) -> list[int]:
    """The oldest paid orders still without follow-up, up to ``limit``, those in ``skip``
    left out; ends the read transaction.

    Two sources: the orders the pay path named (``PAID_KEY``, whenever they were paid:
    WeChat's payment time may be older than the window when a notice comes late) and
    the orders paid within the window (what the database alone can tell, for a pay path
    that could not reach Redis).
    """
    redis = get_redis()
    named = [int(i) for i in redis.zrange(PAID_KEY, 0, 2 * limit + len(skip) - 1)]
    found = set(
        db.session.scalars(
            _PENDING, {"since": utcnow() - BATCH_WINDOW, "limit": limit + len(skip)}
        ).all()
    )
    if named:
        waiting = set(db.session.scalars(_WAITING_AMONG, {"ids": named}))
        gone = [i for i in named if i not in waiting]  # followed up (or never paid)
        if gone:
            redis.zrem(PAID_KEY, *gone)
        found |= waiting
    db.session.rollback()
    return sorted(order_id for order_id in found if order_id not in skip)[:limit]


def name_paid_order(order_id: int) -> None:
    """Tell the sweeps about a newly paid order (the pay path, after its commit)."""
    get_redis().zadd(PAID_KEY, {str(order_id): order_id})


def _forget_named(order_ids: list[int]) -> None:
    if order_ids:
        get_redis().zrem(PAID_KEY, *order_ids)


def _count_paid(order_ids: list[int]) -> None:
    """The paid-order counter in Redis, once per order (what ``on_order_paid`` keeps)."""
    redis = get_redis()
    with redis.pipeline(transaction=False) as pipe:
        for order_id in order_ids:
            pipe.set(paid_done_key(order_id), 1, nx=True, ex=30 * 86400)
        first = sum(1 for ok in pipe.execute() if ok)
    if first:
        redis.incrby(PAID_COUNTER_KEY, first)


def _follow_up(order_ids: list[int]) -> int:
    """One batch, committed; falls back to one order per transaction if the batch fails.
    How many orders were followed up now."""
    done_before = set(db.session.scalars(_DONE_AMONG, {"ids": order_ids}))
    db.session.rollback()
    order_ids = [o for o in order_ids if o not in done_before]  # a concurrent job did them
    _forget_named(sorted(done_before))
    if not order_ids:
        return 0
    try:
        follow_up_batch(order_ids, None)
        _forget_named(order_ids)
        _count_paid(order_ids)
        return len(order_ids)
    except Exception:
        if len(order_ids) == 1:
            log.exception("paid order %s: follow-up failed; left to its own job", order_ids[0])
            hold(order_ids[0])
            return 0
        log.exception("a batch of %s paid orders failed: one at a time", len(order_ids))
    followed = 0
    for order_id in order_ids:
        followed += _follow_up([order_id])
    return followed


def sweep(limit_seconds: float | None = None) -> dict:
    """Follow up pending paid orders batch by batch until none are left or the time is up
    (then the continuation is queued); needs ``SWEEP_LOCK`` held. What it did."""
    size = batch_size()
    started = time.monotonic()
    limit = SWEEP_SECONDS if limit_seconds is None else limit_seconds
    followed = batches = 0
    while True:
        order_ids = pending_orders(size, held_orders())
        if not order_ids:
            return {"followed_up": followed, "batches": batches, "more": False}
        followed += _follow_up(order_ids)
        batches += 1
        if time.monotonic() - started > limit:
            return {"followed_up": followed, "batches": batches, "more": True}


# Takes the lock (KEYS[1]) for ARGV[1] when it is free, or when it still holds ARGV[2]
# (the value of a dead worker's sweep, read just before): 1 if taken.
_TAKE_LOCK = """
local held = redis.call('get', KEYS[1])
if held == false or held == ARGV[2] then
    redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[3])
    return 1
end
return 0
"""


def _take_lock(mine: str) -> bool:
    """``SWEEP_LOCK`` for this sweep: free, or held by a sweep whose worker is dead."""
    redis = get_redis()
    held = redis.get(SWEEP_LOCK)
    held = held.decode() if isinstance(held, bytes) else held
    stale = held if held is not None and not lock_holder_alive(held) else ""
    return bool(redis.eval(_TAKE_LOCK, 1, SWEEP_LOCK, mine, stale, SWEEP_LOCK_SECONDS))


def lock_holder_alive(value: str | None = None) -> bool:
    """Whether the sweep holding ``SWEEP_LOCK`` (its value) runs on a live worker; a sweep
    run outside a worker counts as alive until the lock lapses."""
    if value is None:
        raw = get_redis().get(SWEEP_LOCK)
        if raw is None:
            return False
        value = raw.decode() if isinstance(raw, bytes) else raw
    worker = value.split("|", 1)[0]
    return not worker or worker_is_alive(get_redis(), worker)


def follow_up_pending() -> dict:
    """The sweep job (module docstring): one at a time; returns what it did."""
    redis = get_redis()
    job = get_current_job()
    if job is not None:
        _forget_token(job.id)  # orders paid from now on queue another sweep
    mine = f"{(job.worker_name if job is not None else '') or ''}|{uuid.uuid4().hex}"
    # The flag first, then the lock: a running sweep that ends after this line sees it.
    redis.set(RERUN_KEY, 1, ex=SWEEP_LOCK_SECONDS)
    total = {"followed_up": 0, "batches": 0, "more": False, "ran": False}
    while _take_lock(mine):
        total["ran"] = True
        try:
            redis.delete(RERUN_KEY)
            done = sweep()
        finally:
            redis.eval(_DELETE_IF, 1, SWEEP_LOCK, mine)
        total["followed_up"] += done["followed_up"]
        total["batches"] += done["batches"]
        if done["more"]:
            total["more"] = True
            wake_follow_ups()  # the rest in a fresh job, ahead of the queue
            break
        # The lock released, then the flag: a sweep asked for meanwhile runs here.
        if not redis.exists(RERUN_KEY):
            break
    log.info("follow-up sweep: %s", total)
    return total


def sweep_now() -> dict:
    """Run a sweep in this process until nothing is pending (CLI, tests, demos)."""
    total = {"followed_up": 0, "batches": 0}
    while True:
        done = sweep(limit_seconds=float("inf"))
        total["followed_up"] += done["followed_up"]
        total["batches"] += done["batches"]
        if not done["more"]:
            return total
