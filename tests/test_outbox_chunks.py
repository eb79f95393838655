"""Sending the outbox in chunks (jobs/notifications.py): one job sends many rows, each row
still claimed, sent once and recorded on its own; a failing row retried alone; duplicates
and a worker killed mid-chunk send nothing twice; the kept-alive WeChat connection.

The stand-in (tests/support: the real client code over HTTP) logs each message it
delivers and counts ``repeats``: sends it dropped as a repeat of a ``client_msg_id``, i.e.
a row posted to WeChat a second time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from rq import Queue
from rq.executions import Execution
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.utils import import_attribute
from sqlalchemy import select, update

from app.core.redis import redis_for
from app.core.time import utcnow
from app.extensions import db
from app.wechat.clients import get_wechat_client, kept_http_session
from app.wechat.models import OutboundMessage
from app.wechat.notify import KINDS, notification_setting, queue_notifications, save_setting
from app.wechat.outbox import SEND_CHUNK_JOB, SEND_JOB, enqueue_send, enqueue_sends
from jobs.notifications import (
    PROMPT_MIN_AGE,
    send_outbound_message,
    send_outbound_messages,
    sweep_outbox,
    sweep_outbox_soon,
)
from jobs.worker import app_queues, run_recovery
from tests.support.messages import message_log, sent, stand_in_settings, work
from tests.support.processes import app_env, start_worker, stop, wait_for

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "tests" / "support" / "kill_worker.py"


@pytest.fixture
def log(sandbox):
    """The stand-in's message log, emptied first; its switches reset afterwards."""
    yield from message_log(sandbox)


@pytest.fixture
def enabled(app_ctx):
    """Every kind on with template id TPL_<kind>."""
    for kind in KINDS:
        save_setting(kind, f"TPL_{kind}", True)
    db.session.commit()


@pytest.fixture
def quick_retries(app, monkeypatch):
    """Retries without waiting (RQ re-queues at once for a zero interval)."""
    monkeypatch.setitem(app.config, "WECHAT_NOTIFY_RETRY_INTERVALS", [0, 0])


def _rows(tag: str, n: int, bad: set[int] = frozenset()) -> list[int]:
    """``n`` member_bound messages recorded in one commit (so queued as chunks); the
    ``bad`` ones (by position) go to an openid WeChat refuses (40003). Their ids."""
    setting = notification_setting("member_bound")
    messages = [
        (
            f"bad openid {i}" if i in bad else f"o{tag}{i:04d}".ljust(28, "x"),
            {"thing1": f"客户{i}"},
            f"chunks:{tag}:{i}",
            "",
        )
        for i in range(n)
    ]
    ids = queue_notifications("member_bound", messages, setting, utcnow())
    db.session.commit()
    assert len(ids) == n
    return ids


def _state(ids) -> dict[int, tuple[str, int]]:
    db.session.rollback()
    rows = db.session.execute(
        select(OutboundMessage.id, OutboundMessage.status, OutboundMessage.attempts).where(
            OutboundMessage.id.in_(ids)
        )
    ).all()
    db.session.rollback()
    return {row.id: (row.status, row.attempts) for row in rows}


def _repeats(sandbox) -> int:
    return requests.get(f"{sandbox.url}/_sandbox/messages", timeout=5).json()["repeats"]


def _queued(app) -> list[str]:
    return Queue("default", connection=redis_for(app)).job_ids


# --- chunks -------------------------------------------------------------------------------


def test_the_jobs_the_app_names_are_the_workers():
    assert import_attribute(SEND_CHUNK_JOB) is send_outbound_messages
    assert import_attribute(SEND_JOB) is send_outbound_message


def test_a_commit_of_many_rows_queues_one_job_per_chunk(app, log, enabled, monkeypatch):
    monkeypatch.setitem(app.config, "WECHAT_SEND_CHUNK", 2)
    ids = _rows("chunk", 5)
    assert _queued(app) == [
        f"outbound-chunk-{ids[0]}-{ids[1]}",
        f"outbound-chunk-{ids[2]}-{ids[3]}",
        f"outbound-{ids[4]}",  # a lone row: the one-row job
    ]
    chunk = Job.fetch(f"outbound-chunk-{ids[0]}-{ids[1]}", connection=redis_for(app))
    assert chunk.timeout == 60 + 15 * 2  # time for each row's slow send, not RQ's 180 s
    work(app)
    assert _state(ids) == dict.fromkeys(ids, ("sent", 1))
    assert sorted(m["touser"] for m in sent(log)) == sorted(
        f"ochunk{i:04d}".ljust(28, "x") for i in range(5)
    )
    assert _repeats(log) == 0


def test_a_row_refused_for_good_fails_alone(app, log, enabled):
    ids = _rows("refused", 3, bad={1})
    assert _queued(app) == [f"outbound-chunk-{ids[0]}-{ids[2]}"]
    work(app)
    state = _state(ids)
    assert state[ids[0]] == state[ids[2]] == ("sent", 1)
    assert state[ids[1]] == ("failed", 1)
    assert len(sent(log)) == 2
    assert Queue("default", connection=redis_for(app)).count == 0  # no retry of a 40003


def test_a_failing_row_gets_its_own_retry_with_backoff(app, log, enabled):
    stand_in_settings(log, fail_errcode=-1, fail_times=1)  # the chunk's first send fails
    ids = _rows("backoff", 3)
    work(app)
    state = _state(ids)
    assert state[ids[0]] == ("pending", 1)
    assert state[ids[1]] == state[ids[2]] == ("sent", 1)  # not held up by the first
    assert [m["touser"][:14] for m in sent(log)] == ["obackoff0001xx", "obackoff0002xx"]
    registry = ScheduledJobRegistry("default", connection=redis_for(app))
    assert registry.get_job_ids() == [f"outbound-{ids[0]}"]  # that row alone
    retry_at = registry.get_scheduled_time(f"outbound-{ids[0]}")
    assert timedelta(seconds=20) < retry_at - utcnow() <= timedelta(seconds=31)
    registry.remove(f"outbound-{ids[0]}", delete_job=True)


def test_a_failing_row_is_retried_alone_until_sent(app, log, enabled, quick_retries):
    stand_in_settings(log, fail_errcode=45009, fail_times=1)  # the chunk's first send
    ids = _rows("retried", 3)
    work(app)
    assert _state(ids) == {ids[0]: ("sent", 2), ids[1]: ("sent", 1), ids[2]: ("sent", 1)}
    # The others went first: the failing row's retries came after the chunk.
    assert [m["touser"][:13] for m in sent(log)] == [
        "oretried0001x",
        "oretried0002x",
        "oretried0000x",
    ]
    assert _repeats(log) == 0


def test_each_row_of_a_chunk_spends_its_own_retries(app, log, enabled, quick_retries):
    stand_in_settings(log, fail_errcode=-1)  # WeChat down for good
    ids = _rows("spent", 2)
    work(app)
    assert _state(ids) == dict.fromkeys(ids, ("failed", 3))  # 1 try + 2 retries each
    assert sent(log) == []


# --- duplicates ---------------------------------------------------------------------------


@pytest.mark.postgresql  # once-only outbox
def test_duplicate_jobs_send_each_row_once(app, log, enabled):
    """The chunk queued again (the sweep, a second commit hook), one-row jobs for the same
    rows (older code, the sweep): each row is sent and recorded once."""
    ids = _rows("dupes", 4)
    enqueue_sends(ids)  # the same chunk id again: RQ lists it twice
    enqueue_sends(ids[2:])
    for message_id in ids:
        enqueue_send(message_id)
    assert len(_queued(app)) >= 6
    work(app)
    assert _state(ids) == dict.fromkeys(ids, ("sent", 1))
    assert len(sent(log)) == 4
    assert _repeats(log) == 0
    assert send_outbound_messages(ids) == {"sent": 4}  # by status: nothing posted
    assert len(sent(log)) == 4


@pytest.mark.postgresql  # once-only outbox, two workers at once
def test_two_workers_on_the_same_chunk_send_each_row_once(app, log, enabled):
    ids = _rows("twice", 20)
    Queue("default", connection=redis_for(app)).empty()
    results: list[dict] = []
    start = threading.Barrier(2)

    def run() -> None:
        with app.app_context():
            start.wait()
            results.append(send_outbound_messages(ids))
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2
    assert _state(ids) == dict.fromkeys(ids, ("sent", 1))
    assert len(sent(log)) == 20
    assert _repeats(log) == 0
    # A row the other worker held is handed to its own job (a no-op once it is sent).
    busy = sum(r.get("busy", 0) for r in results)
    assert len(ScheduledJobRegistry("default", connection=redis_for(app))) == busy
    redis_for(app).delete(ScheduledJobRegistry("default", connection=redis_for(app)).key)


# --- the sweep ----------------------------------------------------------------------------


def _age(ids, minutes: float) -> None:
    db.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id.in_(ids))
        .values(created_at=utcnow() - timedelta(minutes=minutes))
    )
    db.session.commit()


@pytest.mark.postgresql  # once-only outbox
def test_the_sweep_leaves_rows_a_waiting_chunk_holds(app, log, enabled):
    ids = _rows("sweep", 3)
    _age(ids, 10)
    assert sweep_outbox() == 0  # the chunk job waits in the queue
    Queue("default", connection=redis_for(app)).empty()  # as if Redis lost it
    assert sweep_outbox() == 3
    assert _queued(app) == [f"outbound-chunk-{ids[0]}-{ids[2]}"]
    assert sweep_outbox() == 0
    work(app)
    assert _state(ids) == dict.fromkeys(ids, ("sent", 1))


@pytest.mark.postgresql  # once-only outbox
def test_after_a_dead_workers_job_the_sweep_comes_soon_and_takes_young_rows(app, log, enabled):
    """A worker killed between a commit and its enqueue: the recovery pass finds its job
    in the started registry and schedules a sweep 30 s later for rows 30 s old."""
    ids = _rows("prompt", 3)
    redis = redis_for(app)
    Queue("default", connection=redis).empty()  # committed, never queued
    _age(ids, 1)
    assert sweep_outbox() == 0  # the periodic sweep waits for 5 minutes
    # The recovery pass meets a started job whose worker is dead.
    [high, default, _low] = app_queues(app)
    job = default.enqueue("bench.commissions.noop", 1, job_id="follow-up-of-a-dead-worker")
    default.remove(job)
    execution = Execution.create(job, ttl=3600, pipeline=redis.pipeline(), worker_name="gone")
    with redis.pipeline() as pipe:
        execution.save(3600, pipeline=pipe)
        pipe.zadd(default.started_job_registry.key, {execution.composite_key: time.time() + 60})
        pipe.execute()
    run_recovery(app_queues(app), "this-worker")
    [prompt] = ScheduledJobRegistry(queue=high).get_job_ids()
    assert prompt.startswith("outbox-sweep-prompt-")
    assert sweep_outbox_soon() is None  # one per 30 s
    assert sweep_outbox(min_age=PROMPT_MIN_AGE) == 3
    ScheduledJobRegistry(queue=high).remove(prompt, delete_job=True)
    for queue in app_queues(app):
        queue.empty()
    redis.delete("wechat:outbox:prompt")


# --- a worker killed mid-chunk ------------------------------------------------------------


@pytest.mark.postgresql  # once-only after a killed worker
@pytest.mark.parametrize(
    ("kill_after", "what"),
    [(4, "UPDATE"), (5, "SELECT")],
    ids=["after-the-second-rows-record", "after-the-third-rows-claim"],
)
def test_a_worker_killed_mid_chunk(
    app, log, enabled, database_url, redis_url, tmp_path, kill_after, what
):
    """Each row of a chunk is two statements (autocommitted): its status read under its
    lock, then its conditional update after the send. Killed after the 2nd row's update:
    rows 1-2 are sent and recorded, the chunk's retry sends the other four. Killed after
    the 3rd row's read (its lock held, nothing sent): the retry finds its lock and hands
    it to its own job, which sends it once the dead worker's lock lapses. Each row is
    delivered once and recorded once; WeChat never sees a row twice."""
    ids = _rows(f"kill{kill_after}", 6)
    env = app_env(
        database_url,
        redis_url,
        log.url,
        WECHAT_SEND_LOCK_SECONDS="2",
        COUNT_JOB_PREFIX="outbound-chunk-",
        STATEMENT_LOG_FILE=str(tmp_path / "statements"),
    )
    killer = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "--burst"],
        cwd=ROOT,
        env=dict(env, KILL_AFTER_STATEMENTS=str(kill_after)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert killer.wait(120) == -signal.SIGKILL
    points = (tmp_path / "statements").read_text().splitlines()
    assert points[-1].split("\t")[1].startswith(what), points
    state = _state(ids)
    assert [state[i][0] for i in ids] == ["sent", "sent"] + ["pending"] * 4
    assert len(sent(log)) == 2

    worker = start_worker(dict(env, STATEMENT_LOG_FILE=""), tmp_path / "worker.log")
    try:
        assert wait_for(lambda: all(s == "sent" for s, _a in _state(ids).values()), 150, 0.5), (
            _state(ids)
        )
    finally:
        stop(worker)
    assert _state(ids) == dict.fromkeys(ids, ("sent", 1))
    assert sorted(m["touser"] for m in sent(log)) == sorted(
        f"okill{kill_after}{i:04d}".ljust(28, "x") for i in range(6)
    )
    assert _repeats(log) == 0


# --- the kept-alive connection ------------------------------------------------------------


def test_one_http_connection_serves_many_jobs_and_the_base_url_is_still_read(
    app, log, enabled, monkeypatch
):
    """Each job has its app context and its client, but the thread's session (and its
    connection) is kept: three sends in three app contexts open one connection."""
    result: dict = {}

    def in_a_new_thread() -> None:  # a thread of its own: a session of its own
        clients = []
        for n in range(3):
            with app.app_context():
                client = get_wechat_client()
                clients.append(client)
                client.post(
                    "message/template/send",
                    data={
                        "touser": f"okept{n:04d}".ljust(28, "x"),
                        "template_id": "TPL_member_bound",
                        "data": {"thing1": {"value": "x"}},
                    },
                )
        result["clients"] = clients
        result["session"] = kept_http_session()

    thread = threading.Thread(target=in_a_new_thread)
    thread.start()
    thread.join(60)
    clients, session = result["clients"], result["session"]
    assert len({id(c) for c in clients}) == 3
    assert {id(c._http) for c in clients} == {id(session)}
    assert session is not kept_http_session()  # this thread's is another
    pools = session.adapters["http://"].poolmanager.pools
    [pool] = [pools[key] for key in pools.keys()]  # noqa: SIM118 (it cannot be iterated)
    assert pool.num_connections == 1
    assert pool.num_requests >= 3
    assert len(sent(log)) == 3

    # The origin is still read from the config on each new context.
    monkeypatch.setitem(app.config, "WECHAT_API_BASE", "http://127.0.0.1:9")
    with app.app_context():
        assert get_wechat_client().api_base == "http://127.0.0.1:9"
