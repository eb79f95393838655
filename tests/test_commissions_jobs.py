"""The commission job run twice, at once, by real workers, and by a worker killed mid-job:
every (order line, beneficiary, kind) is written exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Retry
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from app.core.redis import get_redis, redis_for
from app.earnings.on_paid import follow_up_order
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from jobs.commissions import commissions_job_id, compute_order_commissions, enqueue_commissions
from jobs.payments import on_order_paid
from jobs.queues import get_queue
from tests.support.commissions import (
    chain,
    configure,
    customer_of,
    duplicate_earnings,
    earned,
    pay,
    place,
)

pytestmark = pytest.mark.postgresql  # once-only under concurrent workers

ROOT = Path(__file__).resolve().parent.parent
STARTED_KEY = "test:commissions:started"
RELEASE_KEY = "test:commissions:release"


def _paid_orders(make, count: int, people) -> list[Order]:
    user = customer_of(make, people[0])
    return [pay(place(make, user, quantity=2), run_job=False) for _ in range(count)]


def _earning_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(LedgerEntry))


def _worker_env(database_url, redis_url) -> dict:
    return dict(os.environ, APP_ENV="test", DATABASE_URL=database_url, REDIS_URL=redis_url)


def _burst(env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_duplicate_runs_write_nothing_new(app, make):
    configure(levels=3)
    people = chain(make, 3)
    (order,) = _paid_orders(make, 1, people)
    first = compute_order_commissions(order.id)
    assert first["entries"] == 3
    for _ in range(3):
        assert compute_order_commissions(order.id)["entries"] == 0
    assert earned(order.id) == {
        f"level_1@{people[0].id}": 2000,
        f"level_2@{people[1].id}": 1000,
        f"level_3@{people[2].id}": 400,
    }


def test_the_paid_follow_up_queues_the_commission_job_with_retries(app, make):
    configure(levels=1)
    (order,) = _paid_orders(make, 1, chain(make, 1))
    on_order_paid(order.id)
    on_order_paid(order.id)  # a repeat of the follow-up re-queues the same job id
    job = Job.fetch(commissions_job_id(order.id), connection=redis_for(app))
    assert job.retries_left == 5
    assert get_queue("default").job_ids.count(commissions_job_id(order.id)) >= 1


def test_concurrent_jobs_in_threads(app, make):
    configure(levels=3)
    people = chain(make, 3)
    orders = _paid_orders(make, 3, people)
    errors: list[BaseException] = []
    barrier = threading.Barrier(9)

    def run(order_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                compute_order_commissions(order_id)
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(o.id,)) for o in orders for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    db.session.rollback()  # see what the workers committed
    assert duplicate_earnings() == 0
    assert _earning_count() == 9


def test_two_real_workers_at_once_and_again(app, make, database_url, redis_url):
    configure(levels=2)
    people = chain(make, 2)
    orders = _paid_orders(make, 6, people)
    queue = get_queue("default")
    for order in orders:
        enqueue_commissions(order.id)
        for copy in range(3):  # duplicates under other ids, as a re-enqueue by hand would
            queue.enqueue(compute_order_commissions, order.id, job_id=f"dup-{order.id}-{copy}")
    env = _worker_env(database_url, redis_url)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        _out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
    for order in orders:
        enqueue_commissions(order.id)
    result = _burst(env)  # and once more, after everything was written
    assert result.returncode == 0, result.stderr
    db.session.rollback()  # see what the workers committed
    assert duplicate_earnings() == 0
    assert _earning_count() == 12
    for order in orders:
        job = Job.fetch(commissions_job_id(order.id), connection=redis_for(app))
        assert job.get_status() == "finished", job.exc_info


# --- a worker killed mid-job ----------------------------------------------------------------


def commissions_then_block(order_id: int, when: str) -> int:
    """Test job: the real follow-up; the first attempt then reports its process id and
    waits on a Redis key before (or after) committing, so the test can kill it while the
    job holds an open transaction. Later attempts (the retry) run straight through."""
    redis = get_redis()
    order = db.session.get(Order, order_id)
    follow_up_order(order, extend_protection_once=False)
    first_attempt = redis.set(f"{STARTED_KEY}:once:{order_id}", 1, nx=True)
    if first_attempt and when == "after_commit":
        db.session.commit()
    if first_attempt:
        redis.rpush(STARTED_KEY, os.getpid())  # the worker's pid
        redis.blpop([RELEASE_KEY], timeout=120)
    db.session.commit()
    return order_id


def _kill_mid_job(app, make, database_url, redis_url, when: str) -> None:
    configure(levels=2)
    people = chain(make, 2)
    (order,) = _paid_orders(make, 1, people)
    # A client of its own without redis-py's 5 s socket timeout: BLPOP below may wait longer
    # for the job to start when the machine is busy.
    redis = Redis.from_url(redis_url, socket_timeout=None)
    job = get_queue("default").enqueue(
        commissions_then_block,
        order.id,
        when,
        job_id=commissions_job_id(order.id),
        retry=Retry(max=2),
    )
    env = _worker_env(database_url, redis_url)
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = redis.blpop([STARTED_KEY], timeout=60)
        assert started is not None, "the job never started"
        # The app's worker runs jobs in its own process (no forked work horse), so killing
        # the job mid-way is killing the worker: its open transaction dies with it.
        assert int(started[1]) == worker.pid
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(120)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stderr.close()
    assert _earning_count() == (2 if when == "after_commit" else 0)
    # Restarting: RQ's abandoned-job handling (run here with a late clock rather than
    # waiting for the job's heartbeat to expire) requeues the job, which has retries.
    StartedJobRegistry(queue=get_queue("default")).cleanup(timestamp=time.time() + 10**5)
    assert job.id in get_queue("default").job_ids
    result = _burst(env)
    assert result.returncode == 0, result.stderr
    job.refresh()
    assert job.get_status() == "finished", job.exc_info
    assert job.retries_left == 1  # the killed attempt counted as a failure and was retried
    db.session.rollback()  # see what the workers committed
    assert duplicate_earnings() == 0
    assert earned(order.id) == {f"level_1@{people[0].id}": 2000, f"level_2@{people[1].id}": 1000}


@pytest.mark.parametrize("when", ["before_commit", "after_commit"])
def test_worker_killed_mid_job_then_restarted(app, make, database_url, redis_url, when):
    _kill_mid_job(app, make, database_url, redis_url, when)
