"""The RQ worker the ``flask worker`` command runs: the app's queues, an app context per job,
and a ticker thread in every worker instead of RQ's scheduler process.

Why a ticker and not RQ's scheduler: RQ runs one scheduler process per set of queues,
started by whichever worker took its lock; the lock lives about a minute, but the other
workers try to take it only in their maintenance pass, every 10 minutes and only between
jobs or after an idle wait of almost 7 minutes (the worker TTL less 15 s). When that
process died, scheduled work (order timers, settlement, retries with a delay) stopped for
10-20 minutes. Likewise RQ notices a job whose worker was killed only once the job's
timeout has passed and a maintenance pass looks. So every worker, burst or not, runs a
small daemon thread (``Ticker``) that every ``WORKER_TICK_SECONDS`` (default 5):

1. says the worker is alive (``worker:alive:<name>``, TTL ``WORKER_ALIVE_SECONDS``,
   default 15), renews the locks of the periodic runs this process works on, and (not in
   burst mode) records the heartbeat the admin dashboard shows (``worker:heartbeat``);
2. moves due scheduled jobs to their queues (what RQ's scheduler did; a short lock makes
   one worker do it at a time, a dead holder's lock lapses within seconds);
3. schedules the next slot of each periodic job (order timers, settlement, transfer sync,
   outbox sweep, incentives, reports, funnel rollup, pruning), each claimed once per slot
   with ``SET NX``;
4. every ``RECOVERY_INTERVAL_SECONDS`` (default 10; one worker per interval, one pass at
   a time) runs the recovery pass: the started jobs of workers that are no longer alive
   go to RQ's abandoned-job handling at once (retried, or failed), then paid orders whose
   follow-up never committed are queued again (``resume_lost_follow_ups``). When it
   handed back a dead worker's job, it also schedules one outbox sweep 30 s later for
   rows 30 s old (``sweep_outbox_soon``): messages that job committed but never queued.

There is no scheduler process to lose: while any worker runs, all of this goes on, and a
periodic run that died with its worker is retried once its lock has lapsed. A ``SIGKILL``
of a worker mid-job is noticed within ``WORKER_ALIVE_SECONDS`` + ``RECOVERY_INTERVAL_SECONDS``
by any other worker (or by the restarted one), well within a minute with the defaults.
A killed job with retries left runs again after its retry interval (the commission job:
10 s); one without (the paid-order job) is failed, and the same pass queues the order's
follow-up again because its ``OrderFollowUp`` row is missing. Every earning is guarded by
the ledger's unique keys, so a job run twice writes nothing twice.

Burst workers (``--burst``) tick too, for their liveness only: they move due jobs once at
start, as RQ's burst scheduler did, and schedule and recover nothing.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker

from app.core.metrics import count_job
from app.core.observe import log_context, log_job
from app.core.redis import redis_for
from app.extensions import db
from jobs.commissions import schedule_settlement
from jobs.funnel import schedule_funnel_rollup
from jobs.incentives import schedule_incentives
from jobs.maintenance import record_heartbeat, schedule_pruning
from jobs.notifications import schedule_outbox_sweep, sweep_outbox_soon
from jobs.payments import resume_lost_follow_ups, schedule_timers
from jobs.queues import (
    enqueue_due_jobs,
    mark_worker_alive,
    renew_held_locks,
    requeue_abandoned_jobs,
    single_flight,
    worker_alive_key,
)
from jobs.reports import schedule_report_refresh
from jobs.risk import schedule_risk_sweep
from jobs.withdrawals import schedule_transfer_sync

log = logging.getLogger(__name__)

# Each periodic job's next slot is claimed by whichever worker ticks first.
PERIODIC_SCHEDULERS = (
    schedule_timers,
    schedule_settlement,
    schedule_transfer_sync,
    schedule_outbox_sweep,
    schedule_incentives,
    schedule_report_refresh,
    schedule_funnel_rollup,
    schedule_pruning,
    schedule_risk_sweep,
)
RECOVERY_SLOT_KEY = "worker:recovery:slot"


class AppWorker(SimpleWorker):
    """An RQ worker that runs each job in-process (no fork), in a fresh app context.

    Why no forked work horse (RQ's default): a horse is a new process per job, so every
    job opened a new database connection (and a PostgreSQL backend with cold caches),
    which cost more than most jobs themselves (bench/commissions.py). Running in-process
    keeps the pooled connection from one job to the next. It stays safe because a job
    never shares a transaction with another: each gets a new app context and session,
    commits or rolls back its own work, and the session is removed after it (a job that
    raised leaves nothing behind: closing the session rolls back). RQ still records
    failures and retries; a job that hangs is still stopped by its timeout (a signal in
    this process), and a worker killed mid-job leaves the job in the started registry,
    from where the ticker's recovery pass hands it to RQ's abandoned-job handling.
    """

    flask_app: Flask

    def perform_job(self, job, queue):
        started = time.perf_counter()
        request_id = (job.meta or {}).get("request_id")
        with self.flask_app.app_context(), log_context(request_id=request_id, job_id=job.id):
            finished = False
            try:
                finished = super().perform_job(job, queue)
                return finished
            finally:
                db.session.remove()
                log_job(job, time.perf_counter() - started, "finished" if finished else "failed")

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string=""):
        # Counted in Redis (every process's /metrics sees every worker's counts); a
        # Redis failure here must not stop RQ from recording the failure itself.
        retried = job.should_retry and self._stopped_job_id != job.id
        try:
            count_job(self.connection, "retried" if retried else "failed", job.func_name)
        except RedisError:
            log.warning("could not count the failure of job %s", job.id)
        return super().handle_job_failure(job, queue, started_job_registry, exc_string)

    def handle_job_retry(self, job, queue, retry, started_job_registry, execution):
        try:
            count_job(self.connection, "retried", job.func_name)
        except RedisError:
            log.warning("could not count the retry of job %s", job.id)
        return super().handle_job_retry(job, queue, retry, started_job_registry, execution)


def app_queues(app: Flask) -> list[Queue]:
    """The app's named queues, highest priority first."""
    connection = redis_for(app)
    return [Queue(name, connection=connection) for name in ("high", "default", "low")]


@single_flight("recovery")
def run_recovery(queues: list[Queue], worker_name: str | None = None) -> dict:
    """One recovery pass: jobs of dead workers first, then lost paid-order follow-ups.

    ``worker_name`` is the worker whose ticker runs the pass: alive, whatever its key says.
    """
    abandoned = requeue_abandoned_jobs(queues, alive_worker=worker_name)
    if abandoned:  # a job that died after its commit may not have queued its messages
        sweep_outbox_soon()
    resumed = resume_lost_follow_ups()
    if abandoned or resumed:
        log.warning(
            "recovery: %s abandoned jobs handed back, %s follow-ups queued", abandoned, resumed
        )
    return {"abandoned": abandoned, "resumed": resumed}


class Ticker(threading.Thread):
    """The worker's clock: liveness, due scheduled jobs, periodic slots and recovery."""

    def __init__(self, app: Flask, worker_name: str, queues: list[Queue], burst: bool) -> None:
        super().__init__(name=f"ticker-{worker_name}", daemon=True)
        self.app = app
        self.worker_name = worker_name
        self.queues = queues
        self.burst = burst
        self.tick_seconds = int(app.config.get("WORKER_TICK_SECONDS", 5))
        self.alive_seconds = int(app.config.get("WORKER_ALIVE_SECONDS", 15))
        self.recovery_seconds = int(app.config.get("RECOVERY_INTERVAL_SECONDS", 10))
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.tick()
            except Exception:  # a Redis or database hiccup: the next tick tries again
                log.exception("worker tick failed")
            self._stopped.wait(self.tick_seconds)

    def stop(self) -> None:
        """End the loop; the worker is gone, so say so at once."""
        self._stopped.set()
        self.join(self.tick_seconds + 5)
        try:
            redis_for(self.app).delete(worker_alive_key(self.worker_name))
        except RedisError:  # Redis is gone too: the key lapses on its own
            log.warning("could not clear the alive key of %s", self.worker_name)

    def tick(self) -> None:
        """One tick (see the module docstring)."""
        redis = redis_for(self.app)
        mark_worker_alive(redis, self.worker_name, self.alive_seconds)
        with self.app.app_context():
            renew_held_locks()
            if self.burst:
                return
            # The admin dashboard's "后台任务 运行中": first, so a failing step below
            # (a bad scheduled job, a database hiccup) cannot make a running worker look dead.
            record_heartbeat()
            try:
                enqueue_due_jobs(self.queues, self.alive_seconds)
                for schedule in PERIODIC_SCHEDULERS:
                    schedule()
                if redis.set(
                    RECOVERY_SLOT_KEY, self.worker_name, nx=True, ex=self.recovery_seconds
                ):
                    run_recovery(self.queues, self.worker_name)
            finally:
                db.session.remove()


def run_worker(app: Flask, burst: bool = False) -> None:
    """Work the app's queues until stopped (or until empty with ``burst``)."""
    queues = app_queues(app)
    worker = AppWorker(queues, connection=queues[0].connection)
    worker.flask_app = app
    ticker = Ticker(app, worker.name, queues, burst)
    # Alive before the first job is taken, so no recovery pass takes this worker for dead.
    mark_worker_alive(queues[0].connection, worker.name, ticker.alive_seconds)
    if burst:
        enqueue_due_jobs(queues)
    ticker.start()
    try:
        worker.work(burst=burst, with_scheduler=False)
    finally:
        ticker.stop()
