"""Payment jobs: the follow-up of a paid order, and the order timers.

Each job takes ids, runs under the worker's app context and commits per order, so one
bad order never holds back the rest and a job run twice changes nothing the second time.

Timers: ``run_timers`` cancels orders left unpaid past their deadline (after asking
WeChat, which has the last word) and completes shipped orders after
``ShopSettings.auto_complete_days``. It runs once per slot of ``TIMERS_INTERVAL_SECONDS``
(default 60): every worker's ticker schedules the next slot (``enqueue_at``), the slot's job
id is deterministic and claimed with ``SET NX`` first, so several workers never schedule the
same slot twice, and ``single_flight`` keeps two runs from working at once.

Paid orders: ``enqueue_order_paid`` (the pay path, after its commit) names the order to
the follow-up sweep and wakes one (``jobs/follow_ups.py``); ``on_order_paid`` is the older
job of one order alone (paid notices, then its commission job), kept as a door.

Lost follow-ups: ``resume_lost_follow_ups`` (run by the worker's recovery pass) decides
from the database which paid orders have no committed follow-up (an ``OrderFollowUp`` row
is inserted in the transaction that writes the earnings) and from Redis and RQ whether a
sweep (or, for an order held back, its own job) is really going to run, and wakes a sweep
(or queues that job) again otherwise.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, select

from app.core.redis import get_redis
from app.core.status import InvalidTransition
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import Order, OrderFollowUp
from app.orders.services import (
    cancel_order,
    due_shipped_order_ids,
    due_unpaid_order_ids,
)
from app.orders.shipping import complete_order
from app.payments.client import PaymentError, close_order, query_order, record_transaction
from app.payments.notices import NoticeRejected, apply_payment
from app.signals import order_paid
from jobs.commissions import commissions_job_id, enqueue_commissions, is_followed_up
from jobs.follow_ups import (
    PAID_COUNTER_KEY,
    clear_stale_wake,
    held_orders,
    hold_for_a_person,
    lock_holder_alive,
    name_paid_order,
    paid_done_key,
    waiting_sweep,
    wake_follow_ups,
)
from jobs.queues import job_is_live, schedule_in_slot, single_flight

log = logging.getLogger(__name__)

# Lost follow-ups are looked for among orders paid in this window, older than the grace
# (``FOLLOW_UP_GRACE_SECONDS``: the pay notice commits, then enqueues; a job in between is
# not lost, only not there yet).
FOLLOW_UP_GRACE_SECONDS = 20
FOLLOW_UP_WINDOW = timedelta(hours=6)
# An order's follow-up queued again this many times and still not committed is left to a
# person (it may be what kills the worker); the counter lives as long as the window.
MAX_RESUMES = 10
TIMER_SECONDS = 60


def order_paid_job_id(order_id: int) -> str:
    """The one job id an order's follow-up can have."""
    return f"order-paid-{order_id}"


def enqueue_order_paid(order_id: int) -> None:
    """Have the newly paid ``order_id`` followed up (call after the commit).

    Wakes the follow-up sweep (``jobs/follow_ups.py``): one ``SET NX`` in Redis, and one
    job only when no sweep is waiting already, so a sale day's backlog is followed up in
    batches by a few jobs rather than by one job per order. The sweep sends the order's
    paid notices too. ``on_order_paid`` remains the job of one order alone.
    """
    try:
        name_paid_order(order_id)
        wake_follow_ups()
    except Exception:  # the payment is committed; a lost follow-up must not fail the notice
        log.exception("could not queue the follow-up of paid order %s", order_id)


def on_order_paid(order_id: int) -> bool:
    """Work that follows a payment. Idempotent: True once.

    Records the paid notices (once per order and recipient) and commits, then queues the
    commission job (unless it is already queued or running, or a batch has followed the
    order up already, notices included), then counts paid orders in
    Redis; the ``SET NX`` marker makes a second run of the same order's job a no-op. If
    this job dies before the commission job is queued, the order has no ``OrderFollowUp``
    row and the recovery pass queues this job again; the notices are deduped.
    """
    order = db.session.get(Order, order_id)
    # Followed up already: another order's commission job took this one in its batch,
    # paid notices included (jobs/commissions.py); nothing left to send or queue.
    done = order is not None and is_followed_up(order_id)
    if order is not None and order.paid_at is not None and not done:
        # Listeners (the staff's WeChat notices) dedupe per order and recipient.
        order_paid.send(__name__, order=order)
        db.session.commit()
    db.session.rollback()  # hold no transaction open while Redis is asked
    if not done:
        enqueue_commissions(order_id)
    redis = get_redis()
    if not redis.set(paid_done_key(order_id), 1, nx=True, ex=30 * 86400):
        return False
    redis.incr(PAID_COUNTER_KEY)
    log.info("order %s paid: follow-up done", order_id)
    return True


# --- timers -------------------------------------------------------------------------------


def expire_order(order_id: int) -> str:
    """Settle one overdue unpaid order; return what happened (for logs and tests).

    WeChat is asked first: a payment whose notice has not arrived yet marks the order paid
    instead of cancelling it. Otherwise the order is closed at WeChat (so it can no longer
    be paid) and cancelled, which gives its stock back once. If WeChat cannot be reached
    nothing happens and the next run tries again.
    """
    order = db.session.get(Order, order_id)
    if order is None or order.status != "pending_payment":
        return "skipped"
    try:
        state = query_order(order.out_trade_no)
        trade_state = (state or {}).get("trade_state", "NOTPAY")
        if trade_state == "SUCCESS":
            try:
                _order, first = apply_payment(state)
            except NoticeRejected as err:
                log.error("order %s: WeChat says paid but %s", order.number, err.message)
                db.session.rollback()
                return "mismatch"
            db.session.commit()
            if first:
                enqueue_order_paid(order.id)
            return "paid"
        if trade_state == "USERPAYING":
            return "waiting"  # the customer is entering a password right now
        if state is not None and trade_state != "CLOSED":
            close_order(order.out_trade_no)
    except PaymentError as err:
        log.warning("order %s: WeChat not reachable (%s); retry later", order.number, err.code)
        db.session.rollback()
        return "retry"
    try:
        if state is not None:
            record_transaction(order.id, "closed", order.out_trade_no, 0, "CLOSED", {})
        cancel_order(order, "system", "超时未支付，自动取消")
    except InvalidTransition:
        db.session.rollback()
        return "skipped"
    db.session.commit()
    return "cancelled"


def expire_unpaid_orders() -> dict[str, int]:
    """Settle every unpaid order past its deadline; return counts by outcome."""
    outcomes: dict[str, int] = {}
    for order_id in due_unpaid_order_ids():
        db.session.rollback()  # each order starts from a clean transaction
        outcome = expire_order(order_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    db.session.rollback()
    return outcomes


def auto_complete_orders() -> int:
    """Complete shipped orders whose receipt period has passed; return how many."""
    done = 0
    for order_id in due_shipped_order_ids():
        order = db.session.get(Order, order_id)
        try:
            complete_order(order, "system", "超时自动确认收货")  # also dates its pending money
        except InvalidTransition:
            db.session.rollback()
            continue
        db.session.commit()
        done += 1
    return done


TIMER_JOB_PREFIX = "payments-timers"


def timer_job_id(slot: int) -> str:
    """The job id of the timers' run in ``slot`` (what ``schedule_in_slot`` gives it)."""
    return f"{TIMER_JOB_PREFIX}-{slot}"


def _interval() -> int:
    return int(current_app.config.get("TIMERS_INTERVAL_SECONDS", TIMER_SECONDS))


def schedule_timers(at: datetime | None = None) -> str | None:
    """Schedule ``run_timers`` for the slot after ``at`` (default now), once per slot.

    Returns the job id when this call scheduled it, None when another worker already had.
    """
    return schedule_in_slot(
        "payments:timers", TIMER_JOB_PREFIX, run_timers, _interval(), "default", at
    )


@single_flight("payments:timers")
def run_timers() -> dict:
    """The periodic job: schedule the next run first (a crash keeps the chain), then work."""
    schedule_timers()
    expired = expire_unpaid_orders()
    completed = auto_complete_orders()
    return {"expired": expired, "completed": completed}


def follow_up_grace() -> timedelta:
    """How old a paid order without a follow-up must be before it counts as lost."""
    return timedelta(
        seconds=int(current_app.config.get("FOLLOW_UP_GRACE_SECONDS", FOLLOW_UP_GRACE_SECONDS))
    )


def sweep_is_coming() -> bool:
    """Whether a follow-up sweep is running (its lock is held) or waiting to run."""
    if lock_holder_alive():
        return True
    job_id = waiting_sweep()
    return job_id is not None and job_is_live(job_id)


def resume_lost_follow_ups(now: datetime | None = None) -> int:
    """Queue again the follow-up of paid orders whose earnings never committed.

    The database says what is missing: orders paid between ``FOLLOW_UP_WINDOW`` and the
    grace ago that have no ``OrderFollowUp`` row. Redis and RQ say whether something will
    still do it. For most orders that is the follow-up sweep (``jobs/follow_ups.py``):
    running on a live worker (the lock names it) or waiting
    in the queue (``job_is_live``; run ``requeue_abandoned_jobs`` first). When none is,
    whatever the reason (Redis down at the payment's commit, a sweep killed or failed),
    a sweep is woken. Orders the sweep holds back (they failed alone) have their own
    commission job; when it is not live either, it is queued again. An order queued again
    ``MAX_RESUMES`` times and still not done is left to a person (it may be what kills the
    worker): sweeps skip it. Everything is idempotent and keyed, so a follow-up that is
    merely slow is harmless to queue again. Returns how many orders were queued again.
    """
    now = now or utcnow()
    order_ids = db.session.scalars(
        select(Order.id)
        .where(
            Order.paid_at >= now - FOLLOW_UP_WINDOW,
            Order.paid_at <= now - follow_up_grace(),
            ~exists().where(OrderFollowUp.order_id == Order.id),
        )
        .order_by(Order.id)
        .limit(1000)
    ).all()
    db.session.rollback()
    if not order_ids:
        return 0
    held = held_orders()
    resumed = 0
    for order_id in (o for o in order_ids if o in held):
        if job_is_live(order_paid_job_id(order_id)) or job_is_live(commissions_job_id(order_id)):
            continue
        if _resumed_too_often(order_id):
            continue
        log.warning("paid order %s (held back) has no job running: queueing it again", order_id)
        enqueue_commissions(order_id)
        resumed += 1
    loose = [o for o in order_ids if o not in held]
    if loose and not sweep_is_coming():
        clear_stale_wake()
        retry = [o for o in loose if not _resumed_too_often(o)]
        if retry and wake_follow_ups():
            log.warning("%s paid orders without follow-up and no sweep: woke one", len(retry))
            resumed += len(retry)
    return resumed


def _resumed_too_often(order_id: int) -> bool:
    """Count one more resume of ``order_id``; past ``MAX_RESUMES`` it is held for a person."""
    redis = get_redis()
    key = f"orders:paid:resumed:{order_id}"
    tries = redis.incr(key)
    redis.expire(key, int(FOLLOW_UP_WINDOW.total_seconds()))
    if tries <= MAX_RESUMES:
        return False
    log.error("paid order %s: follow-up queued %s times, never done", order_id, tries - 1)
    hold_for_a_person(order_id)
    return True
