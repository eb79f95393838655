"""The follow-up sweep (jobs/follow_ups.py): the pay path wakes one sweep for many paid
orders; the sweep follows them up in batches, exactly once, skips orders held back, takes
over the lock of a dead worker's sweep and leaves a live one alone; an order whose WeChat
payment time is older than the window is still swept when the pay path named it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.core.redis import get_redis
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import Order, OrderFollowUp
from jobs.follow_ups import (
    RERUN_KEY,
    SWEEP_LOCK,
    follow_up_pending,
    hold_for_a_person,
    waiting_sweep,
)
from jobs.payments import enqueue_order_paid
from jobs.queues import get_queue, mark_worker_alive
from tests.support.commissions import (
    chain,
    configure,
    customer_of,
    duplicate_earnings,
    earned,
    pay,
    place,
)

pytestmark = pytest.mark.postgresql  # once-only follow-up


def _paid(make, seller, count: int) -> list[int]:
    """``count`` orders paid as the pay notice does (committed, then the pay path's call)."""
    ids = []
    for _ in range(count):
        order = pay(place(make, customer_of(make, seller)), run_job=False)
        enqueue_order_paid(order.id)
        ids.append(order.id)
    return ids


def _followed_up(order_ids) -> int:
    db.session.rollback()
    return db.session.scalar(
        select(func.count()).select_from(OrderFollowUp).where(OrderFollowUp.order_id.in_(order_ids))
    )


def test_one_sweep_follows_up_many_paid_orders_exactly_once(app, make):
    configure(levels=2)
    seller, parent = chain(make, 2)
    app.config["FOLLOW_UP_BATCH_SIZE"] = 2  # several batches
    order_ids = _paid(make, seller, 5)
    assert get_queue("default").job_ids == [waiting_sweep()]  # one job for five orders

    done = follow_up_pending()
    assert done["ran"] and done["followed_up"] == 5 and done["batches"] == 3
    assert _followed_up(order_ids) == 5
    for order_id in order_ids:
        assert earned(order_id) == {f"level_1@{seller.id}": 1000, f"level_2@{parent.id}": 500}
    assert follow_up_pending()["followed_up"] == 0  # again: nothing left, nothing twice
    assert duplicate_earnings() == 0


def test_held_orders_are_skipped(app, make):
    configure(levels=1)
    (seller,) = chain(make, 1)
    first, second = _paid(make, seller, 2)
    hold_for_a_person(first)  # it failed too often: a person looks at it
    assert follow_up_pending()["followed_up"] == 1
    assert _followed_up([first]) == 0 and _followed_up([second]) == 1


def test_a_dead_workers_sweep_is_taken_over_a_live_ones_is_not(app, make):
    configure(levels=1)
    (seller,) = chain(make, 1)
    order_ids = _paid(make, seller, 2)
    redis = get_redis()
    mark_worker_alive(redis, "busy-worker", 60)
    redis.set(SWEEP_LOCK, "busy-worker|token", ex=120)
    done = follow_up_pending()
    assert not done["ran"] and redis.exists(RERUN_KEY)  # the live sweep will run again
    assert _followed_up(order_ids) == 0

    redis.set(SWEEP_LOCK, "dead-worker|token", ex=120)  # no alive key: its worker is gone
    assert follow_up_pending()["followed_up"] == 2
    assert _followed_up(order_ids) == 2
    assert not redis.exists(SWEEP_LOCK)  # released


def test_a_late_notice_of_an_old_payment_is_swept(app, make):
    configure(levels=1)
    (seller,) = chain(make, 1)
    order = pay(place(make, customer_of(make, seller)), run_job=False)
    # WeChat's payment time, a week back (a notice that came very late).
    db.session.execute(
        update(Order).where(Order.id == order.id).values(paid_at=utcnow() - timedelta(days=7))
    )
    db.session.commit()
    enqueue_order_paid(order.id)
    assert follow_up_pending()["followed_up"] == 1
    assert _followed_up([order.id]) == 1
