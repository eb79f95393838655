"""Test support: the app's normal worker, made to die or crawl at chosen database statements.

``python tests/support/kill_worker.py [--burst]`` runs ``jobs.worker.run_worker`` as
``flask worker`` does, with SQLAlchemy listeners that count what the jobs do on the worker's
main thread (each statement executed, each commit; the ticker thread's own queries are not counted):

- ``KILL_AFTER_STATEMENTS=N``: right after the Nth, the process sends itself ``SIGKILL``, as
  ``kill -9``, the OOM killer or a lost machine would: no handler runs, the open
  transaction dies with the connection, RQ's bookkeeping stays as it was.
- ``SLOW_STATEMENTS_MS=M``: each statement of the main thread is followed by a pause of
  M ms, so a short periodic job lasts long enough for two workers to meet in it.
- ``STATEMENT_COUNT_FILE=path``: when the worker ends, how many there were is written
  there (a burst worker run once tells a test how many points its jobs have).
- ``COUNT_JOB_PREFIX=prefix``: count only what jobs whose id starts with it do (a run's
  other jobs, such as the risk checks a follow-up queues, neither count nor get killed).
- ``STATEMENT_LOG_FILE=path``: each counted point is appended there as it happens, its
  number and its SQL (or ``COMMIT``), to tell which point a kill number stands for.

Only tests use this; the production worker has no such hook.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rq import get_current_job
from sqlalchemy import event
from sqlalchemy.orm import Session

from app import create_app
from app.extensions import db
from jobs.worker import run_worker


def main() -> None:
    """Build the app from the environment, install the listeners, run the worker."""
    kill_after = int(os.environ.get("KILL_AFTER_STATEMENTS") or 0)
    pause = int(os.environ.get("SLOW_STATEMENTS_MS") or 0) / 1000
    app = create_app()
    counter = itertools.count(1)
    seen = [0]
    log_file = os.environ.get("STATEMENT_LOG_FILE")
    job_prefix = os.environ.get("COUNT_JOB_PREFIX")

    def step(*args) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if job_prefix:
            job = get_current_job()
            if job is None or not job.id.startswith(job_prefix):
                return
        seen[0] = next(counter)
        if log_file:
            what = " ".join(str(args[2]).split()) if len(args) > 2 else "COMMIT"
            with open(log_file, "a") as out:
                out.write(f"{seen[0]}\t{what}\n")
        if kill_after and seen[0] >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if pause:
            time.sleep(pause)

    with app.app_context():
        event.listen(db.engine, "after_cursor_execute", step)
    event.listen(Session, "after_commit", step)
    try:
        run_worker(app, burst="--burst" in sys.argv[1:])
    finally:
        if os.environ.get("STATEMENT_COUNT_FILE"):
            Path(os.environ["STATEMENT_COUNT_FILE"]).write_text(str(seen[0]))


if __name__ == "__main__":
    main()
