"""The RQ worker the ``flask worker`` command runs: the app's queues, an app context per job."""

from __future__ import annotations

from flask import Flask
from rq import Queue, Worker

from app.core.redis import redis_for
from app.extensions import db


class AppWorker(Worker):
    """An RQ worker that runs each job inside the Flask app's context.

    The work horse is a forked child: it drops pooled connections inherited from the
    parent (never share a socket across fork) and removes the session after the job.
    """

    flask_app: Flask

    def perform_job(self, job, queue):
        with self.flask_app.app_context():
            db.engine.dispose(close=False)
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
        from jobs.notifications import schedule_outbox_sweep
        from jobs.payments import schedule_timers
        from jobs.withdrawals import schedule_transfer_sync

        with app.app_context():
            schedule_timers()  # the order timers reschedule themselves from then on
            schedule_settlement()  # so does commission settlement
            schedule_transfer_sync()  # likewise the transfer bill sync
            schedule_outbox_sweep()  # and the WeChat outbox sweep
            schedule_incentives()  # and the incentives pass (tasks, rewards, leaderboards)
    worker.work(burst=burst, with_scheduler=True)
