"""Order timers: unpaid orders expire (after asking WeChat), shipped orders complete."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry
from sqlalchemy import select, update

from app.catalog.models import Sku
from app.core.redis import get_redis, redis_for
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import Order, PaymentTransaction
from app.orders.services import get_settings
from app.orders.states import move_order
from app.payments.client import query_order
from jobs.follow_ups import SWEEP_JOB_PREFIX, waiting_sweep
from jobs.payments import (
    PAID_COUNTER_KEY,
    auto_complete_orders,
    expire_unpaid_orders,
    on_order_paid,
    run_timers,
    schedule_timers,
    timer_job_id,
)
from jobs.queues import get_queue
from tests.support.pay import fresh, new_order, prepay, sandbox_pay

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

ROOT = Path(__file__).resolve().parent.parent


def _overdue(order: Order) -> None:
    db.session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(pay_deadline=utcnow() - timedelta(minutes=1))
    )
    db.session.commit()


def test_unpaid_order_is_closed_at_wechat_then_cancelled_and_stock_returns(app, make, sandbox):
    order, sku_id = new_order(make, quantity=2, stock=5)
    prepay(order)
    _overdue(order)
    assert db.session.get(Sku, sku_id).stock == 3
    assert expire_unpaid_orders() == {"cancelled": 1}
    order = fresh(Order, order.id)
    assert order.status == "cancelled"
    assert db.session.get(Sku, sku_id).stock == 5
    assert query_order(order.number)["trade_state"] == "CLOSED"
    closed = db.session.scalars(
        select(PaymentTransaction.kind).where(PaymentTransaction.order_id == order.id)
    ).all()
    assert sorted(closed) == ["closed", "prepay"]
    # Idempotent: a second run finds nothing to do and the stock stays put.
    assert expire_unpaid_orders() == {}
    assert db.session.get(Sku, sku_id).stock == 5


def test_order_never_sent_to_wechat_is_cancelled(app, make, sandbox):
    order, sku_id = new_order(make, stock=1)
    _overdue(order)
    assert expire_unpaid_orders() == {"cancelled": 1}
    assert fresh(Order, order.id).status == "cancelled"
    assert db.session.get(Sku, sku_id).stock == 1


def test_paid_at_wechat_without_a_notice_is_marked_paid_not_cancelled(app, make, sandbox):
    order, sku_id = new_order(make, stock=5)
    prepay(order)
    sandbox_pay(sandbox, order.number, notify=False)  # the notice is lost
    _overdue(order)
    assert expire_unpaid_orders() == {"paid": 1}
    order = fresh(Order, order.id)
    assert order.status == "paid"
    assert order.transaction_id.startswith("4200")
    assert db.session.get(Sku, sku_id).stock == 4
    # The pay path wakes the follow-up sweep (one job, whatever the number of orders).
    assert Queue("default", connection=redis_for(app)).job_ids == [waiting_sweep()]


def test_orders_not_yet_due_are_left_alone(app, make, sandbox):
    order, _sku = new_order(make)
    assert expire_unpaid_orders() == {}
    assert fresh(Order, order.id).status == "pending_payment"


def test_unreachable_wechat_cancels_nothing(app, make, sandbox):
    order, _sku = new_order(make)
    prepay(order)
    _overdue(order)
    saved = app.config["WECHAT_PAY_API_BASE"]
    app.extensions.pop("wechatpay", None)
    app.config["WECHAT_PAY_API_BASE"] = "http://127.0.0.1:9"
    try:
        assert expire_unpaid_orders() == {"retry": 1}
    finally:
        app.config["WECHAT_PAY_API_BASE"] = saved
        app.extensions.pop("wechatpay", None)
    assert fresh(Order, order.id).status == "pending_payment"


def test_shipped_orders_complete_after_the_configured_days(app, make, sandbox):
    settings = get_settings()
    settings.auto_complete_days = 7
    db.session.commit()
    orders = []
    for days_ago in (8, 6):
        order, _sku = new_order(make)
        db.session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(status="paid", paid_fen=order.total_fen, transaction_id=f"T{order.id}")
        )
        db.session.commit()
        order = fresh(Order, order.id)
        move_order(order, "shipped", "staff:1", shipped_at=utcnow() - timedelta(days=days_ago))
        db.session.commit()
        orders.append(order)
    assert auto_complete_orders() == 1
    assert fresh(Order, orders[0].id).status == "completed"
    assert fresh(Order, orders[0].id).completed_at is not None
    assert fresh(Order, orders[1].id).status == "shipped"
    assert auto_complete_orders() == 0


def test_the_follow_up_job_is_idempotent(app_ctx):
    assert on_order_paid(41) is True
    assert on_order_paid(41) is False
    assert int(get_redis().get(PAID_COUNTER_KEY)) == 1


def test_timers_are_scheduled_once_per_slot(app_ctx):
    now = utcnow()
    first = schedule_timers(now)
    assert first is not None
    assert schedule_timers(now) is None  # a second worker starting at the same time
    registry = ScheduledJobRegistry(queue=get_queue("default"))
    assert registry.get_job_ids() == [first]
    slot = int(now.timestamp() // 60) + 1
    assert first == timer_job_id(slot)


def test_jobs_run_in_a_real_worker(app, make, sandbox, database_url, redis_url, live_port):
    """``flask worker --burst`` runs the timers and the paid-order follow-up from Redis."""
    due, sku_id = new_order(make, stock=3)
    prepay(due)
    _overdue(due)
    paid, _sku = new_order(make)
    prepay(paid)
    sandbox_pay(sandbox, paid.number, notify=False)
    _overdue(paid)
    job = get_queue("default").enqueue(run_timers, job_id="test-run-timers")
    env = dict(
        os.environ,
        APP_ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        WECHAT_PAY_API_BASE=sandbox.url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{live_port}",
    )
    for _ in range(2):  # the follow-up job is enqueued by the first job, run by the second
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
    job.refresh()
    assert job.get_status() == "finished", job.exc_info
    assert job.return_value()["expired"] == {"cancelled": 1, "paid": 1}
    assert fresh(Order, due.id).status == "cancelled"
    assert db.session.get(Sku, sku_id).stock == 3
    assert fresh(Order, paid.id).status == "paid"
    finished = FinishedJobRegistry(queue=get_queue("default")).get_job_ids()
    swept = [job_id for job_id in finished if job_id.startswith(SWEEP_JOB_PREFIX)]
    assert len(swept) == 1  # the timers' run woke the follow-up sweep, which ran
    follow_up = Job.fetch(swept[0], connection=redis_for(app))
    assert follow_up.get_status() == "finished"
    assert follow_up.return_value()["followed_up"] == 1
    assert int(get_redis().get(PAID_COUNTER_KEY)) == 1


def test_a_follow_up_lost_with_redis_is_queued_again_once(app, make):
    """Paid and committed, but the enqueue never reached Redis (it was down): the recovery
    pass queues the follow-up again after the grace period, once; the worker then runs it."""
    from app.orders.services import mark_paid
    from jobs.commissions import compute_order_commissions
    from jobs.payments import follow_up_grace, resume_lost_follow_ups

    order, _sku_id = new_order(make)
    mark_paid(order, transaction_id="4200lost", amount_fen=order.total_fen)
    db.session.commit()  # ... and no enqueue_order_paid: Redis was unreachable
    assert resume_lost_follow_ups() == 0  # within the grace: maybe just slow
    later = utcnow() + follow_up_grace() + timedelta(seconds=1)
    assert resume_lost_follow_ups(later) == 1  # a follow-up sweep woken for it
    job_id = waiting_sweep()
    assert job_id and Job.exists(job_id, connection=get_redis())
    assert resume_lost_follow_ups(later) == 0  # the sweep is there now: not queued twice
    assert get_queue("default").job_ids == [job_id]
    # The sweep's job lost (Redis flushed it, say): the next pass wakes another.
    get_queue("default").remove(job_id)
    Job.fetch(job_id, connection=get_redis()).delete()
    assert resume_lost_follow_ups(later) == 1
    assert waiting_sweep() != job_id and get_queue("default").job_ids == [waiting_sweep()]

    on_order_paid(order.id)  # as the worker would run it, and the commission job it queues
    compute_order_commissions(order.id)
    assert resume_lost_follow_ups(later) == 0  # done: never again
    # Orders paid long ago are not looked at (the window).
    assert resume_lost_follow_ups(utcnow() + timedelta(days=1)) == 0
