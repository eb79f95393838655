"""Paid orders followed up in batches by real workers (jobs/commissions.py): one job's batch
writes exactly the ledger rows one job per order writes, and duplicate or concurrent jobs
write nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rq.job import Job
from sqlalchemy import func, select

from app.core.redis import redis_for
from app.distribution.binding import bind
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.models import Order, OrderFollowUp
from app.orders.services import ItemRequest, mark_paid, place_order
from app.wechat.models import OutboundMessage
from app.wechat.notify import save_setting, set_staff_openids
from jobs.commissions import commissions_job_id, compute_order_commissions, enqueue_commissions
from jobs.payments import enqueue_order_paid
from jobs.queues import get_queue
from tests.support.commissions import duplicate_earnings
from tests.support.pay import address_for

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

ROOT = Path(__file__).resolve().parent.parent


def _shop(make):
    """3 levels (10% / 5% / 2%), a seller's chain, a customer bound to the seller, the
    commission and paid notices on (committed); the customer and a product."""
    settings = get_distribution_settings()
    settings.levels = 3
    settings.level1_bp, settings.level2_bp, settings.level3_bp = 1000, 500, 200
    top = None
    for _ in range(3):
        top = create_distributor(make.user(nickname="分销员").id, top)
    save_setting("commission_earned", "TPL_commission_earned", True)
    save_setting("order_paid", "TPL_order_paid", True)
    set_staff_openids(["oStaffBoss000000000000000001"])
    db.session.commit()
    customer = make.user(nickname="顾客")
    bind(customer.id, top, "link")
    db.session.commit()
    return customer, make.product(price_fen=9900, stock=1000)


def _paid_orders(customer, product, count: int) -> list[int]:
    """``count`` orders of 1, 2, 3... units, paid as the pay notice does (not followed up)."""
    address = address_for(customer)
    ids = []
    for n in range(count):
        order = place_order(customer.id, [ItemRequest(product.skus[0].id, n % 3 + 1)], address.id)
        db.session.commit()
        mark_paid(order, transaction_id=f"TB{order.id:08d}", amount_fen=order.total_fen)
        db.session.commit()
        ids.append(order.id)
    return ids


def _burst(database_url, redis_url, batch: int, workers: int = 1) -> None:
    """``workers`` real ``flask worker --burst`` processes at once, until the queues are empty."""
    env = dict(
        os.environ,
        APP_ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        FOLLOW_UP_BATCH_SIZE=str(batch),
    )
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    for process in running:
        _out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err


def _rows(order_ids: list[int]) -> list[tuple]:
    """Every ledger entry of the orders, by the order's place in ``order_ids`` and the
    line's place in its order (not by id: the two runs are on different orders)."""
    db.session.rollback()
    position = {order_id: n for n, order_id in enumerate(order_ids)}
    line_rank = func.rank().over(
        partition_by=LedgerEntry.order_id, order_by=LedgerEntry.order_line_id
    )
    rows = db.session.execute(
        select(
            LedgerEntry.order_id,
            line_rank,
            LedgerEntry.distributor_id,
            LedgerEntry.kind,
            LedgerEntry.amount_fen,
            LedgerEntry.state,
            LedgerEntry.rule_source,
            LedgerEntry.note,
        ).where(LedgerEntry.order_id.in_(order_ids))
    ).all()
    return sorted((position[row[0]], *row[1:]) for row in rows)


def _follow_ups(order_ids: list[int]) -> int:
    db.session.rollback()
    return db.session.scalar(
        select(func.count()).select_from(OrderFollowUp).where(OrderFollowUp.order_id.in_(order_ids))
    )


def test_one_job_follows_up_a_batch_with_the_rows_of_one_job_per_order(
    app, make, database_url, redis_url
):
    customer, product = _shop(make)
    singles = _paid_orders(customer, product, 5)
    for order_id in singles:
        enqueue_commissions(order_id)
    _burst(database_url, redis_url, batch=1)  # one order per job: the reference
    assert _follow_ups(singles) == 5

    batched = _paid_orders(customer, product, 5)
    enqueue_commissions(batched[0])  # one job only, for the first order
    _burst(database_url, redis_url, batch=10)

    assert _follow_ups(batched) == 5  # the job took the 4 others in its batch
    result = Job.fetch(commissions_job_id(batched[0]), connection=redis_for(app)).return_value()
    assert result["batch"] == 5
    assert len(_rows(batched)) == 5 * 3  # one line, 3 levels
    assert _rows(batched) == _rows(singles)
    # The batch sent the other orders' paid notices (their own paid-jobs then skip).
    db.session.rollback()
    paid_notices = db.session.scalar(
        select(func.count())
        .select_from(OutboundMessage)
        .where(OutboundMessage.kind == "order_paid")
    )
    assert paid_notices == 4


def test_duplicate_and_concurrent_jobs_write_nothing_twice(app, make, database_url, redis_url):
    customer, product = _shop(make)
    order_ids = _paid_orders(customer, product, 12)
    queue = get_queue("default")
    for order_id in order_ids:
        enqueue_order_paid(order_id)  # as the pay notice does: each order's paid-job
        for copy in range(2):  # and duplicates of its commission job under other ids
            queue.enqueue(compute_order_commissions, order_id, job_id=f"dup-{order_id}-{copy}")
    _burst(database_url, redis_url, batch=4, workers=2)
    for order_id in order_ids:  # and again, after everything was written
        enqueue_commissions(order_id)
    _burst(database_url, redis_url, batch=4)

    assert _follow_ups(order_ids) == 12
    db.session.rollback()  # see what the workers committed
    assert duplicate_earnings() == 0
    assert len(_rows(order_ids)) == 12 * 3
    db.session.rollback()
    per_order = db.session.execute(
        select(OutboundMessage.dedupe_key, func.count()).group_by(OutboundMessage.dedupe_key)
    ).all()
    assert per_order and all(count == 1 for _key, count in per_order)
    # No job failed. (Whether a job here took others along depends on how the two workers
    # race for the claims; that a job batches is shown by the test above.)
    assert queue.failed_job_registry.count == 0
    db.session.rollback()
    assert all(db.session.get(Order, order_id).paid_at for order_id in order_ids)
