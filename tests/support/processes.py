"""Real app processes for the tests: the ``flask`` commands (worker, WeChat stand-in) run
as ``make dev`` runs them, against the test database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
DAY = "86400"
# A quick ticker; periodic work a day apart, so only the work a test queues runs.
QUICK_WORKER = {
    "WORKER_TICK_SECONDS": "1",
    "WORKER_ALIVE_SECONDS": "3",
    "RECOVERY_INTERVAL_SECONDS": "1",
    "TIMERS_INTERVAL_SECONDS": DAY,
    "SETTLEMENT_INTERVAL_SECONDS": DAY,
    "TRANSFER_SYNC_INTERVAL_SECONDS": DAY,
    "OUTBOX_SWEEP_INTERVAL_SECONDS": DAY,
    "INCENTIVES_INTERVAL_SECONDS": DAY,
    "REPORTS_INTERVAL_SECONDS": DAY,
    "PRUNE_INTERVAL_SECONDS": DAY,
}


def app_env(database_url: str, redis_url: str, wechat_origin: str, **settings) -> dict:
    """The environment of an app process on the test database, Redis and a WeChat origin."""
    return dict(
        os.environ,
        APP_ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        WECHAT_API_BASE=wechat_origin,
        WECHAT_PAY_API_BASE=wechat_origin,
        PYTHONUNBUFFERED="1",
        **{**QUICK_WORKER, **settings},
    )


def start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    """The real ``flask worker`` command, its output (stdout and stderr) in ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [*FLASK, "worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen) -> None:
    """Warm shutdown (SIGTERM), or SIGKILL of the whole group if it does not end."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
