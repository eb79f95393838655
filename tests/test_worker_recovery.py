"""Workers killed with SIGKILL, as an operator or the OOM killer would: the paid-order
follow-up still writes every earning exactly once within a minute of a worker being back,
and periodic work goes on without the dead worker, one run at a time.

The workers are real processes: ``flask worker`` and tests/support/kill_worker.py, which is the
same worker made to kill itself after its Nth database statement (or to slow down).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from rq import Retry
from rq.executions import Execution
from rq.job import Job
from rq.registry import (
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from sqlalchemy import select

from app import create_app
from app.core.redis import redis_for
from app.core.time import utcnow
from app.distribution.binding import bind
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.services import ItemRequest, mark_paid, place_order
from app.wechat.notify import KINDS, save_setting, set_staff_openids
from config import Config
from jobs.commissions import compute_order_commissions, run_settlement
from jobs.follow_ups import SWEEP_JOB_PREFIX, follow_up_pending, waiting_sweep
from jobs.payments import (
    enqueue_order_paid,
    resume_lost_follow_ups,
)
from jobs.queues import (
    ORPHAN_CONFIRM_SECONDS,
    get_queue,
    mark_worker_alive,
    requeue_abandoned_jobs,
)
from tests.support.pay import address_for, wait_until
from tests.support.processes import stop

pytestmark = pytest.mark.postgresql  # once-only after killed workers

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "tests" / "support" / "kill_worker.py"
RECOVERY_BUDGET = 60  # seconds from a worker being up (its alive key) to every earning written
DAY = "86400"
# Quick liveness for the tests' sake (the defaults: tick 5 s, alive 15 s, recovery 10 s,
# grace 20 s); periodic work a day apart unless a test wants it.
QUICK = {
    "WORKER_TICK_SECONDS": "1",
    "WORKER_ALIVE_SECONDS": "3",
    "RECOVERY_INTERVAL_SECONDS": "1",
    "FOLLOW_UP_GRACE_SECONDS": "1",
    "TIMERS_INTERVAL_SECONDS": DAY,
    "SETTLEMENT_INTERVAL_SECONDS": DAY,
    "TRANSFER_SYNC_INTERVAL_SECONDS": DAY,
    "OUTBOX_SWEEP_INTERVAL_SECONDS": DAY,
    "INCENTIVES_INTERVAL_SECONDS": DAY,
    "REPORTS_INTERVAL_SECONDS": DAY,
    "PRUNE_INTERVAL_SECONDS": DAY,
}


def _env(database_url, redis_url, sandbox, **settings) -> dict:
    return dict(
        os.environ,
        APP_ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        WECHAT_API_BASE=sandbox.url,
        WECHAT_PAY_API_BASE=sandbox.url,
        **{**QUICK, **settings},
    )


def _flask_worker(env, *args) -> subprocess.Popen:
    """The real ``flask worker`` command."""
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _hooked_worker(env, *args, kill_after: int = 0, slow_ms: int = 0) -> subprocess.Popen:
    """The same worker through tests/support/kill_worker.py."""
    env = dict(env, KILL_AFTER_STATEMENTS=str(kill_after), SLOW_STATEMENTS_MS=str(slow_ms))
    return subprocess.Popen(
        [sys.executable, str(LAUNCHER), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _chain_and_customer(make, *, notices: bool = False):
    """Seller under a parent; a customer bound to the seller; 10% and 5%; with ``notices``
    every template message switched on, two staff receiving paid orders (committed)."""
    if notices:
        for kind in KINDS:
            save_setting(kind, f"TPL_{kind}", True)
        set_staff_openids(["oStaffBoss000000000000000001", "oStaffClerk00000000000000002"])
    settings = get_distribution_settings()
    settings.level1_bp, settings.level2_bp, settings.level3_bp = 1000, 500, 0
    parent = create_distributor(make.user(nickname="上级").id, None)
    seller = create_distributor(make.user(nickname="店主").id, parent)
    db.session.commit()
    customer = make.user(nickname="顾客")
    bind(customer.id, seller, "link")
    db.session.commit()
    return seller, parent, customer


def _paid_order(make, customer, *, enqueue: bool = True) -> int:
    """An order of 2 x 100.00, paid as the notice does, its follow-up queued: the id."""
    product = make.product(price_fen=10000, stock=1000)
    order = place_order(customer.id, [ItemRequest(product.skus[0].id, 2)], address_for(customer).id)
    db.session.commit()
    mark_paid(order, transaction_id=f"4200{order.id:08d}", amount_fen=order.total_fen)
    db.session.commit()
    if enqueue:
        enqueue_order_paid(order.id)
    return order.id


def _earnings(order_ids) -> Counter:
    """(order, beneficiary, kind, fen) of every earning of the orders, with how many times."""
    db.session.rollback()
    rows = db.session.execute(
        select(
            LedgerEntry.order_id,
            LedgerEntry.distributor_id,
            LedgerEntry.kind,
            LedgerEntry.amount_fen,
        ).where(LedgerEntry.order_id.in_(order_ids))
    ).all()
    db.session.rollback()
    return Counter(tuple(row) for row in rows)


def _expected(order_ids, seller, parent) -> Counter:
    return Counter(
        entry
        for order_id in order_ids
        for entry in (
            (order_id, seller.id, "level_1", 2000),
            (order_id, parent.id, "level_2", 1000),
        )
    )


def _wait_idle(app, timeout: float) -> bool:
    """Wait until nothing is queued or running on the app's queues; whether it happened."""
    redis = redis_for(app)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(
            get_queue(name).count or redis.zcard(get_queue(name).started_job_registry.key)
            for name in ("high", "default", "low")
        ):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(
    os.environ.get("TEST_DB") != "postgresql", reason="the kill sweep runs on PostgreSQL"
)
def test_worker_killed_at_every_statement_of_the_follow_up(
    app, make, sandbox, database_url, redis_url, tmp_path
):
    """A paid order's follow-up (the paid job, then the commission job with its region
    dividends, incentives and notices) is run by a worker that dies right after its Nth
    statement or commit; a normal worker is then started, and within a minute every
    earning of every order so far exists exactly once. N goes over the follow-up's
    statements, all of them with KILL_SWEEP_POINTS=0, else a sample (``kill_points``): the
    first, second and last, one of each kind of statement (SELECT, INSERT, UPDATE, DELETE,
    COMMIT...), the rest drawn from the others up to KILL_SWEEP_POINTS (default 6; each
    kill costs two worker starts). The draw is seeded (KILL_SWEEP_SEED, default 0), so a
    run is repeatable; another seed rotates the sample over other statements."""
    seller, parent, customer = _chain_and_customer(make, notices=True)
    env = _env(database_url, redis_url, sandbox)
    # A first order's follow-up does some things once (team totals rows...): run it here.
    order_ids = [_paid_order(make, customer, enqueue=False)]
    compute_order_commissions(order_ids[0])
    # Its notices are sent first, so that they are not counted as the follow-up's points.
    assert _hooked_worker(env, "--burst").wait(120) == 0
    # One follow-up run through without a kill: how many statements it has.
    order_ids.append(_paid_order(make, customer))
    count_file, log_file = tmp_path / "statements", tmp_path / "statement-log"
    counter = _hooked_worker(
        dict(env, STATEMENT_COUNT_FILE=str(count_file), STATEMENT_LOG_FILE=str(log_file)),
        "--burst",
    )
    assert counter.wait(120) == 0
    assert _earnings(order_ids) == _expected(order_ids, seller, parent)
    total = int(count_file.read_text())
    assert total > 10, total
    kinds = statement_kinds(log_file.read_text())
    assert len(kinds) == total and {"SELECT", "INSERT", "COMMIT"} <= set(kinds.values()), kinds
    seed = int(os.environ.get("KILL_SWEEP_SEED", "0"))
    points = kill_points(kinds, int(os.environ.get("KILL_SWEEP_POINTS", "6")), seed)

    kills = 0
    for n in points:
        order_ids.append(_paid_order(make, customer))
        killer = _hooked_worker(env, "--burst", kill_after=n)
        if killer.wait(120) == 0:  # this order's follow-up had fewer than N statements
            assert n >= total - 3, f"N={n} of {total}: not killed"
            assert _earnings(order_ids) == _expected(order_ids, seller, parent)
            continue
        assert killer.returncode == -signal.SIGKILL, f"N={n}: exit {killer.returncode}"
        kills += 1
        before = _alive_workers(app)
        worker = _flask_worker(env)
        try:
            # From the worker being up: a busy machine may take seconds to start Python.
            wait_until(lambda up=before: _alive_workers(app) - up, timeout=60, interval=0.2)
            started = time.monotonic()
            wait_until(
                lambda: _earnings(order_ids) == _expected(order_ids, seller, parent),
                timeout=RECOVERY_BUDGET,
                interval=0.2,
            )
            assert time.monotonic() - started < RECOVERY_BUDGET
            # Let the worker finish what is left (notices...), so the next kill lands in
            # the next order's follow-up; leftovers would only move the kill point.
            _wait_idle(app, 30)
        except AssertionError:
            got = _earnings(order_ids)
            raise AssertionError(
                f"killed after statement {n} of {total} ({kinds[n]}, KILL_SWEEP_SEED={seed}): {got}"
            ) from None
        finally:
            stop(worker)
    assert kills >= len(points) - 1
    assert _earnings(order_ids) == _expected(order_ids, seller, parent)


def statement_kinds(log: str) -> dict[int, str]:
    """Each counted point of a STATEMENT_LOG_FILE (tests/support/kill_worker.py) and its
    kind: the SQL's first word (SELECT, INSERT, UPDATE, DELETE, SAVEPOINT...) or COMMIT."""
    kinds = {}
    for line in log.splitlines():
        number, _tab, sql = line.partition("\t")
        kinds[int(number)] = (sql.split() or ["?"])[0].upper()
    return kinds


def kill_points(kinds: dict[int, str], wanted: int, seed: int) -> list[int]:
    """The statements to kill a worker after: all of them if ``wanted`` is 0 or covers
    them; else the first, the second, the last and one of each kind (drawn with ``seed``),
    then more drawn from the rest up to ``wanted``."""
    total = len(kinds)
    if wanted <= 0 or wanted >= total:
        return list(range(1, total + 1))
    draw = random.Random(seed)
    points = {1, 2, total}
    for kind in sorted(set(kinds.values())):
        if not any(kinds[n] == kind for n in points):
            points.add(draw.choice([n for n in sorted(kinds) if kinds[n] == kind]))
    rest = [n for n in sorted(kinds) if n not in points]
    points |= set(draw.sample(rest, max(0, min(len(rest), wanted - len(points)))))
    return sorted(points)


def test_kill_points_cover_every_kind_and_the_ends_and_repeat_with_their_seed():
    kinds = dict(enumerate(["SELECT"] * 20 + ["INSERT", "UPDATE", "COMMIT"], 1))
    points = kill_points(kinds, 6, seed=0)
    assert {1, 2, 23} <= set(points) and len(points) == 6
    assert {kinds[n] for n in points} == {"SELECT", "INSERT", "UPDATE", "COMMIT"}
    assert kill_points(kinds, 6, seed=0) == points  # repeatable
    assert {tuple(kill_points(kinds, 6, seed=s)) for s in range(5)} != {tuple(points)}
    assert kill_points(kinds, 0, seed=0) == list(range(1, 24))
    assert kill_points(kinds, 2, seed=0) == [1, 2, 21, 22, 23]  # never fewer than the kinds


# --- lost follow-ups: the database says what is missing, RQ whether it will still run ----


def _later(seconds: int = 30):
    return utcnow() + timedelta(seconds=seconds)


def test_a_follow_up_whose_job_failed_or_was_lost_is_queued_again(app, make):
    """A job key that still exists is not a job that will run: a failed follow-up sweep,
    and one popped from its queue by a worker killed before registering it, are queued
    again (one sweep for every order it leaves behind)."""
    seller, parent, customer = _chain_and_customer(make)
    failed = _paid_order(make, customer)
    popped = _paid_order(make, customer)
    redis = redis_for(app)
    queue = get_queue("default")
    sweep = waiting_sweep()  # the two pay notices woke one sweep
    assert queue.job_ids == [sweep]
    # It failed (its retries spent, say).
    job = Job.fetch(sweep, connection=redis)
    queue.remove(job)
    FailedJobRegistry(queue=queue).add(job, ttl=3600, exc_string="killed")
    job.set_status("failed")
    assert queue.job_ids == []

    assert resume_lost_follow_ups(_later()) == 2  # both orders: a new sweep
    second = waiting_sweep()
    assert second != sweep and queue.job_ids == [second]
    assert resume_lost_follow_ups(_later()) == 0  # it waits: never twice
    # The new one is popped by a worker killed before registering it.
    redis.lrem(queue.key, 1, second)
    assert resume_lost_follow_ups(_later()) == 0  # maybe a worker about to register it
    time.sleep(ORPHAN_CONFIRM_SECONDS + 0.5)
    assert resume_lost_follow_ups(_later()) == 2  # still nowhere a few seconds on: lost
    third = waiting_sweep()
    assert third not in (sweep, second) and queue.job_ids == [third]

    assert follow_up_pending()["followed_up"] == 2  # as the worker would run it
    assert _earnings([failed, popped]) == _expected([failed, popped], seller, parent)
    queue.empty()
    assert resume_lost_follow_ups(_later()) == 0  # done: never again


def test_the_started_job_of_a_dead_worker_is_handed_back_at_once(app, make):
    """An entry in the started registry whose worker is no longer alive goes through RQ's
    abandoned-job handling now, not when its timeout has passed: retried if it has retries."""
    _seller, _parent, customer = _chain_and_customer(make)
    order_id = _paid_order(make, customer, enqueue=False)
    redis = redis_for(app)
    queue = get_queue("default")
    job = queue.enqueue(
        compute_order_commissions, order_id, job_id="commissions-test", retry=Retry(max=1)
    )
    queue.remove(job)
    for name, alive in (("dead-worker", False), ("live-worker", True)):
        execution = Execution.create(job, ttl=3600, pipeline=redis.pipeline(), worker_name=name)
        with redis.pipeline() as pipe:
            execution.save(3600, pipeline=pipe)
            pipe.zadd(queue.started_job_registry.key, {execution.composite_key: time.time() + 3600})
            pipe.execute()
        if alive:
            mark_worker_alive(redis, name, 60)
    assert requeue_abandoned_jobs([queue]) == ["commissions-test"]  # only the dead one's
    assert queue.job_ids == ["commissions-test"]
    assert Job.fetch("commissions-test", connection=redis).retries_left == 0
    assert redis.zcard(queue.started_job_registry.key) == 1  # the live worker's stays
    assert requeue_abandoned_jobs([queue]) == []


def _started_by(redis, queue, job, worker_name: str) -> None:
    """Register ``job`` as started by ``worker_name`` (who may be dead), as a worker would."""
    queue.remove(job)
    execution = Execution.create(job, ttl=3600, pipeline=redis.pipeline(), worker_name=worker_name)
    with redis.pipeline() as pipe:
        execution.save(3600, pipeline=pipe)
        pipe.zadd(queue.started_job_registry.key, {execution.composite_key: time.time() + 3600})
        pipe.execute()


def test_a_dead_workers_job_is_handed_back_once_while_rq_cleans_its_registries(
    app, make, monkeypatch
):
    """RQ's own registry cleanup, which every worker runs at start and every 10 minutes,
    may run while the recovery pass hands a dead worker's job back: the job is retried
    once, after its first retry interval. (Handed back twice, it spent two retries and the
    second one's interval won: the commission job's first order after a kill waited a
    minute instead of 10 seconds.) The pass's own worker is never taken for dead."""
    _seller, _parent, customer = _chain_and_customer(make)
    order_id = _paid_order(make, customer, enqueue=False)
    redis = redis_for(app)
    queue = get_queue("default")
    job = queue.enqueue(
        compute_order_commissions,
        order_id,
        job_id="commissions-race",
        retry=Retry(max=3, interval=[10, 600, 600]),
    )
    _started_by(redis, queue, job, "busy-worker")  # its alive key lapsed: a slow tick
    assert requeue_abandoned_jobs([queue], alive_worker="busy-worker") == []
    assert redis.zcard(queue.started_job_registry.key) == 1

    handed = []
    real_retry = Job.retry

    def retry_while_rq_cleans(self, queue, pipeline):
        handed.append(self.id)
        if len(handed) == 1:  # another worker's maintenance cleans the registry right now
            StartedJobRegistry(queue=queue).cleanup()
        return real_retry(self, queue, pipeline)

    monkeypatch.setattr(Job, "retry", retry_while_rq_cleans)
    assert requeue_abandoned_jobs([queue]) == ["commissions-race"]
    assert handed == ["commissions-race"]
    job = Job.fetch("commissions-race", connection=redis)
    assert job.retries_left == 2
    assert job.get_status() == "scheduled"
    due = redis.zscore(ScheduledJobRegistry(queue=queue).key, "commissions-race")
    assert due <= time.time() + 10.5  # the first retry interval, not the second
    assert redis.zcard(queue.started_job_registry.key) == 0
    assert not list(redis.scan_iter("worker:abandoned:*"))  # nothing left behind
    assert requeue_abandoned_jobs([queue]) == []


# --- periodic work ------------------------------------------------------------------------


def _finished_runs(app, prefix: str) -> list[Job]:
    redis = redis_for(app)
    ids = [
        job_id
        for job_id in FinishedJobRegistry(queue=get_queue("low")).get_job_ids()
        if job_id.startswith(prefix)
    ]
    return [job for job in Job.fetch_many(ids, connection=redis) if job is not None]


def test_periodic_work_goes_on_when_the_worker_that_ticked_dies(
    app_ctx, sandbox, database_url, redis_url
):
    app = app_ctx
    """Settlement every 2 s: the only worker (and any process it started, such as RQ's
    scheduler) is SIGKILLed; a worker started afterwards runs settlement within a minute
    of the kill."""
    env = _env(database_url, redis_url, sandbox, SETTLEMENT_INTERVAL_SECONDS="2")
    first = _flask_worker(env)
    try:
        wait_until(lambda: _finished_runs(app, "commissions-settlement-"), timeout=60, interval=0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    killed_at = time.time()
    second = _flask_worker(env)
    try:
        wait_until(
            lambda: [
                job
                for job in _finished_runs(app, "commissions-settlement-")
                if job.ended_at.timestamp() > killed_at + 1
            ],
            timeout=RECOVERY_BUDGET,
            interval=0.2,
        )
        assert time.time() - killed_at < RECOVERY_BUDGET
    finally:
        stop(second)


def test_two_workers_never_run_a_periodic_job_at_once(app_ctx, sandbox, database_url, redis_url):
    """Settlement queued six times at once (as a slot and its retries, or a hand re-enqueue,
    could) and run by two workers whose statements take a second each: the runs that did
    the work never overlap; the others saw it was being done and stopped."""
    queue = get_queue("low")
    for copy in range(6):
        queue.enqueue(run_settlement, job_id=f"settlement-copy-{copy}")
    env = _env(database_url, redis_url, sandbox)
    workers = [_hooked_worker(env, "--burst", slow_ms=1000) for _ in range(2)]
    for worker in workers:
        assert worker.wait(180) == 0
    runs = _finished_runs(app_ctx, "settlement-copy-")
    assert len(runs) == 6
    assert len({job.worker_name for job in runs}) == 2  # both workers took copies
    worked = sorted(
        (job.started_at.timestamp(), job.ended_at.timestamp())
        for job in runs
        if job.return_value() is not None
    )
    assert worked and len(worked) < 6
    for (_start, end), (next_start, _end) in pairwise(worked):
        assert next_start > end - 0.2, worked  # one ended before the next began


def _alive_workers(app) -> set[bytes]:
    return set(redis_for(app).scan_iter("worker:alive:*"))


def test_default_settings_recover_a_killed_commission_job_within_a_minute(
    app, make, sandbox, database_url, redis_url, tmp_path
):
    """With the default liveness settings (tick 5 s, alive 15 s, recovery every 10 s,
    grace 20 s), a worker killed inside the commission job: a worker started afterwards
    has the earnings written within a minute of being up."""
    seller, parent, customer = _chain_and_customer(make)
    defaults = {
        name: str(getattr(Config, name))
        for name in (
            "WORKER_TICK_SECONDS",
            "WORKER_ALIVE_SECONDS",
            "RECOVERY_INTERVAL_SECONDS",
            "FOLLOW_UP_GRACE_SECONDS",
        )
    }
    # Only the follow-up sweep's statements count: the risk check it queues afterwards
    # (jobs/risk.py) must not move the kill point out of the sweep.
    env = dict(
        _env(database_url, redis_url, sandbox, **defaults), COUNT_JOB_PREFIX=SWEEP_JOB_PREFIX
    )
    order_ids = [_paid_order(make, customer, enqueue=False)]
    compute_order_commissions(order_ids[0])
    order_ids.append(_paid_order(make, customer))
    count_file = tmp_path / "statements"
    counter = _hooked_worker(dict(env, STATEMENT_COUNT_FILE=str(count_file)), "--burst")
    assert counter.wait(120) == 0
    total = int(count_file.read_text())

    order_ids.append(_paid_order(make, customer))
    killer = _hooked_worker(env, "--burst", kill_after=total * 2 // 3)  # mid-way
    assert killer.wait(120) == -signal.SIGKILL
    started = get_queue("default").started_job_registry.get_job_ids(cleanup=False)
    assert len(started) == 1 and started[0].startswith(SWEEP_JOB_PREFIX)  # died in the sweep
    assert _earnings(order_ids) != _expected(order_ids, seller, parent)

    before = _alive_workers(app)
    worker = _flask_worker(env)
    try:
        wait_until(lambda: _alive_workers(app) - before, timeout=60, interval=0.2)
        up = time.monotonic()
        wait_until(
            lambda: _earnings(order_ids) == _expected(order_ids, seller, parent),
            timeout=RECOVERY_BUDGET,
            interval=0.2,
        )
        assert time.monotonic() - up < RECOVERY_BUDGET
    finally:
        stop(worker)


def test_worker_intervals_come_from_the_environment(monkeypatch):
    """Each interval is read from the environment under its own name; junk stops the start."""
    monkeypatch.setenv("SETTLEMENT_INTERVAL_SECONDS", "120")
    monkeypatch.setenv("RECOVERY_INTERVAL_SECONDS", "7")
    app = create_app("test")
    assert app.config["SETTLEMENT_INTERVAL_SECONDS"] == 120
    assert app.config["RECOVERY_INTERVAL_SECONDS"] == 7
    assert app.config["TIMERS_INTERVAL_SECONDS"] == 60  # today's value by default
    for junk in ("0", "-5", "ten", "1.5"):
        monkeypatch.setenv("TIMERS_INTERVAL_SECONDS", junk)
        with pytest.raises(RuntimeError, match="TIMERS_INTERVAL_SECONDS"):
            create_app("test")
