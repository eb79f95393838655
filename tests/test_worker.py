"""The RQ worker command runs real jobs from the app's queues against the real Redis."""

import os
import subprocess
import sys
from pathlib import Path

from app.core.redis import redis_for
from jobs.maintenance import HEARTBEAT_KEY, record_heartbeat
from jobs.queues import get_queue

ROOT = Path(__file__).resolve().parent.parent


def test_worker_command_runs_a_queued_job(app, database_url, redis_url):
    with app.app_context():
        job = get_queue("default").enqueue(record_heartbeat)
        assert redis_for(app).get(HEARTBEAT_KEY) is None
    env = dict(
        os.environ,
        APP_ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    with app.app_context():
        job.refresh()
        assert job.get_status() == "finished"
        assert redis_for(app).get(HEARTBEAT_KEY).decode() == job.return_value()
