"""The RQ worker the ``flask worker`` command runs: the app's queues, an app context per job."""

from __future__ import annotations

from flask import Flask
from rq import Queue, SimpleWorker

from app.core.redis import redis_for
from app.extensions import db


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
    from where RQ's abandoned-job handling requeues it once the worker is restarted.
    """

    flask_app: Flask

    def perform_job(self, job, queue):
        with self.flask_app.app_context():
            try:
                return super().perform_job(job, queue)
            finally:
                db.session.remove()


def app_queues(app: Flask) -> list[Queue]:
    """The app's named queues, highest priority first."""
    connection = redis_for(app)
    return [Queue(name, connection=connection) for name in ("high", "default", "low")]


def run_worker(app: Flask, burst: bool = False) -> None:
    """Work the app's queues until stopped (or until empty with ``burst``)."""
    queues = app_queues(app)
    worker = AppWorker(queues, connection=queues[0].connection)
    worker.flask_app = app
    if not burst:
        from jobs.commissions import schedule_settlement
        from jobs.incentives import schedule_incentives
        from jobs.maintenance import schedule_pruning
        from jobs.notifications import schedule_outbox_sweep
        from jobs.payments import schedule_timers
        from jobs.reports import schedule_report_refresh
        from jobs.withdrawals import schedule_transfer_sync

        with app.app_context():
            schedule_timers()  # the order timers reschedule themselves from then on
            schedule_settlement()  # so does commission settlement
            schedule_transfer_sync()  # likewise the transfer bill sync
            schedule_outbox_sweep()  # and the WeChat outbox sweep
            schedule_incentives()  # and the incentives pass (tasks, rewards, leaderboards)
            schedule_report_refresh()  # and the report summaries (app/reports/summary.py)
            schedule_pruning()  # and the hourly pruning of push dedupe and outbox rows
            db.session.remove()
            # RQ forks its scheduler process: let it inherit no pooled database connection.
            db.engine.dispose()
    worker.work(burst=burst, with_scheduler=True)
