"""Template messages in tests: the stand-in's message log and switches, and a worker that
runs every queued job in the test process (tests/test_wechat_notify.py,
tests/test_outbox_chunks.py)."""

from __future__ import annotations

from collections.abc import Iterator

import requests
from rq import Queue, SimpleWorker

from app.core.redis import redis_for
from app.extensions import db
from jobs.worker import AppWorker


class InProcessWorker(AppWorker, SimpleWorker):
    """The app's worker (an app context per job) without forking a work horse."""


def work(app) -> None:
    """Run every queued job (and immediate retries) until the queues are empty."""
    queues = [Queue(name, connection=redis_for(app)) for name in ("high", "default", "low")]
    worker = InProcessWorker(queues, connection=queues[0].connection)
    worker.flask_app = app
    worker.work(burst=True, with_scheduler=False)
    db.session.rollback()  # see what the jobs committed


def sent(sandbox, kind: str | None = None) -> list[dict]:
    """Template messages in the stand-in's log, oldest first (optionally of one template)."""
    rows = requests.get(f"{sandbox.url}/_sandbox/messages", timeout=5).json()["messages"]
    rows = [r for r in reversed(rows) if r["kind"] == "template"]
    return [r for r in rows if kind is None or r["template_id"] == f"TPL_{kind}"]


def stand_in_settings(sandbox, **values) -> dict:
    """Switch the stand-in's message endpoint (failures, known templates); its settings."""
    res = requests.post(f"{sandbox.url}/_sandbox/messages/settings", json=values, timeout=5)
    res.raise_for_status()
    return res.json()


def message_log(sandbox) -> Iterator:
    """For a ``log`` fixture: the stand-in's message log, emptied first; its switches
    reset afterwards."""
    requests.post(f"{sandbox.url}/_sandbox/messages/clear", timeout=5)
    yield sandbox
    stand_in_settings(sandbox, fail_errcode=None, templates=[])
