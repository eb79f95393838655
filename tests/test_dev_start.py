"""``make dev``'s start order (scripts/dev.py): the WeChat stand-in first, the worker only
once it answers, so the template messages the seed queued are sent at the first try and
the worker's log holds no traceback."""

from __future__ import annotations

import json
import threading
import time

import requests

from app.extensions import db
from app.wechat.models import OutboundMessage
from app.wechat.outbox import enqueue_send
from scripts import dev
from tests.support.processes import FLASK, app_env, stop, wait_for
from tests.support.servers import ServerThread, free_port


def _hello(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"late but here"]


def test_wait_until_answers_waits_for_a_server_that_starts_late():
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = ServerThread(_hello, port)
    assert not dev.answers(url)
    threading.Timer(1.5, server.start).start()
    began = time.monotonic()
    try:
        assert dev.wait_until_answers(url, timeout=20)  # a 404 is an answer too
        assert time.monotonic() - began >= 1.0
    finally:
        wait_for(server.thread.is_alive, 5)
        server.stop()


def test_wait_until_answers_gives_up_when_the_server_process_dies():
    url = f"http://127.0.0.1:{free_port()}/"
    crashed = dev.subprocess.Popen(["python3", "-c", "raise SystemExit(3)"])
    began = time.monotonic()
    assert not dev.wait_until_answers(url, timeout=30, process=crashed)
    assert time.monotonic() - began < 10
    assert not dev.wait_until_answers(url, timeout=0.5)


def test_dev_steps_start_the_stand_in_first_and_wait_for_it():
    steps = dev.dev_steps(["flask"])
    assert [name for name, _cmd, _url in steps] == ["wechat-sandbox", "web", "worker"]
    assert steps[0][2] == f"http://127.0.0.1:{dev.SANDBOX_PORT}"


def test_seeded_messages_go_out_at_the_first_try_without_a_traceback(
    app_ctx, database_url, redis_url, tmp_path
):
    """A template message waits in the queue, as after ``seed-demo``; then the stand-in
    and the worker start in ``make dev``'s order (real processes)."""
    row = OutboundMessage(
        dedupe_key="dev-start:1",
        kind="order_paid",
        openid="o-dev-start",
        payload=json.dumps(
            {"touser": "o-dev-start", "template_id": "T-1", "data": {"k": {"value": "v"}}}
        ),
    )
    db.session.add(row)
    db.session.commit()
    enqueue_send(row.id)

    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = app_env(database_url, redis_url, origin)
    log_path = tmp_path / "dev.log"
    with open(log_path, "wb") as log:
        processes = dev.start_in_order(
            [
                ("wechat-sandbox", [*FLASK, "wechat-sandbox", "--port", str(port)], origin),
                ("worker", [*FLASK, "worker"], None),
            ],
            env,
            stdout=log,
            stderr=dev.subprocess.STDOUT,
        )
    try:

        def sent() -> bool:
            db.session.rollback()
            return db.session.get(OutboundMessage, row.id).status == "sent"

        assert wait_for(sent, 60), log_path.read_text()
        received = requests.get(f"{origin}/_sandbox/messages", timeout=5).json()
        assert "o-dev-start" in json.dumps(received)
    finally:
        for process in reversed(processes.values()):
            stop(process)
    output = log_path.read_text()
    assert "Traceback" not in output and "SendFailed" not in output, output
    assert db.session.get(OutboundMessage, row.id).attempts == 1
