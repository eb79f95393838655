"""Sending the outbox (app/wechat/notify.py) to WeChat: chunk jobs, one-row jobs, a sweep.

Two jobs post rows' payloads to ``/cgi-bin/message/template/send``, both queued after the
commit that recorded the rows (``app/wechat/outbox.py`` names them by dotted path):

- ``send_outbound_messages(ids)``: a chunk of up to ``WECHAT_SEND_CHUNK`` rows (default
  50) of one commit, job id ``outbound-chunk-<first>-<last>``, sent one by one in id
  order. One RQ job, one app context and one kept-alive HTTPS connection
  (app/wechat/clients.py) serve the whole chunk: that is what makes a sale day's
  hundred thousand messages drain (bench/README.md, cluster).
- ``send_outbound_message(id)``: one row, job id ``outbound-<id>``, with ``Retry`` backoff
  (``WECHAT_NOTIFY_RETRY_INTERVALS``, default 30 s, 2 min, 10 min). A lone row, the
  retries of a chunk's failed row, the sweep's re-queues of single rows, and the jobs
  older code queued (a deployed queue may still hold them) run this.

Each row, in either job: its Redis lock (``wechat:outbound:<id>:sending``, so two
workers never send it at the same moment), then its status read under the lock (only a
``pending`` row is sent), the send with no transaction open, then its own conditional
update (``... WHERE status = 'pending'``), autocommitted: ``sent``, or a failure written
to the row (``attempts``, ``last_error``). The job holds one pooled connection in
autocommit for all its rows: two round trips to the database per row. A failure a
retry can fix leaves the row ``pending``: the one-row job raises so RQ retries it; in a
chunk the row gets its own ``outbound-<id>`` job with the backoff and the chunk goes on
with the next row. The last try, or an error a retry cannot fix, marks the row
``failed`` (the row is the record, not RQ's failed registry). A worker that dies after
WeChat accepted a message but before its update leaves it ``pending``; the next try
sends it again with the same ``client_msg_id``, which WeChat uses to drop repeats within
10 minutes. A chunk killed mid-way is handed back by the recovery pass (jobs/worker.py)
and retried: its sent rows are skipped.

``sweep_outbox`` re-queues ``pending`` rows older than a few minutes whose job is gone (Redis
was down at commit time, a job expired or failed, a job popped by a worker killed before it
registered the job): neither the row's own job nor a chunk job whose id range covers it is
waiting, scheduled or started. The worker schedules it like the other periodic jobs, one
run per slot of ``OUTBOX_SWEEP_INTERVAL_SECONDS`` (default 300), one run at a time. When
the recovery pass finds a dead worker's job, ``sweep_outbox_soon`` adds one sweep 30 s
later taking rows only 30 s old: a follow-up batch committed by a worker killed before it
queued its messages is sent within about a minute, not after 5-10.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import current_app
from rq import Queue, Retry, get_current_job
from rq.utils import as_text
from sqlalchemy import Connection, select, update
from wechatpy.exceptions import WeChatClientException

from app.core.params import MAX_ID
from app.core.redis import get_redis
from app.core.time import utcnow
from app.extensions import db
from app.wechat.clients import get_wechat_client
from app.wechat.models import OutboundMessage
from app.wechat.outbox import (
    SEND_JOB,
    chunk_range,
    enqueue_sends,
    outbound_job_id,
    retry_intervals,
)
from jobs.queues import get_queue, job_is_live, schedule_in_slot, single_flight

log = logging.getLogger(__name__)

# WeChat errors a retry cannot fix: bad openid, bad template, not a follower, bad data,
# template deleted or the account lacks the permission.
PERMANENT_ERRCODES = frozenset({40003, 40036, 40037, 43004, 43019, 47001, 47003, 48001})
SWEEP_SECONDS = 300
SWEEP_MIN_AGE = timedelta(minutes=5)
SWEEP_MAX_AGE = timedelta(days=3)
SWEEP_MAX_ATTEMPTS = 10
SWEEP_PAGE = 1000  # pending rows read per query
SWEEP_PAGES = 50  # at most this many pages per sweep (50,000 pending rows looked at)
SWEEP_MAX_QUEUED = 5000  # rows queued again per sweep at most
# After a worker died mid-job (the recovery pass handed its job back), rows it committed
# may have missed their enqueue: a sweep this soon takes rows this old.
PROMPT_SWEEP_DELAY = timedelta(seconds=30)
PROMPT_MIN_AGE = timedelta(seconds=30)
# A row's sending lock (``WECHAT_SEND_LOCK_SECONDS``): longer than a send with a token
# refresh (10 s timeout each, 30 s lock wait); a dead sender's lock lapses after it.
SEND_LOCK_SECONDS = 120


class SendFailed(Exception):
    """A send that failed and will be retried by RQ."""


def _describe(err: Exception) -> tuple[int | None, str]:
    if isinstance(err, WeChatClientException):
        if err.errcode is None:
            status = getattr(getattr(err, "response", None), "status_code", None)
            return None, f"HTTP {status}" if status else "无法连接微信接口"
        return err.errcode, f"{err.errcode} {err.errmsg or ''}".strip()
    return None, f"{type(err).__name__}: {err}"


def _is_last_try() -> bool:
    job = get_current_job()
    return job is None or not job.retries_left


def _lock(message_id: int):
    seconds = int(current_app.config.get("WECHAT_SEND_LOCK_SECONDS", SEND_LOCK_SECONDS))
    return get_redis().lock(f"wechat:outbound:{message_id}:sending", timeout=seconds)


@contextmanager
def _autocommit() -> Iterator[Connection]:
    """A pooled connection in autocommit for a job's sends, checked out once per job.

    Each row's status read and its conditional update are single statements, atomic on
    their own: in autocommit each is one round trip (no BEGIN, COMMIT, nor the pool's
    ping at every checkout a session would make twice per row), and no transaction is
    ever open while WeChat answers.
    """
    with db.engine.connect() as conn:
        yield conn.execution_options(isolation_level="AUTOCOMMIT")


def _send_locked(conn: Connection, message_id: int, last_try) -> tuple[str, str]:
    """Send one row whose lock the caller holds: (outcome, error text).

    The outcome is ``sent``, ``failed`` (recorded for good), ``retry`` (recorded as a failed
    try, ``pending``: the caller schedules the next one), or the row's status when it was
    not ``pending`` (``sent``/``failed`` already: nothing done), or ``missing``.
    """
    row = conn.execute(
        select(OutboundMessage.status, OutboundMessage.payload).where(
            OutboundMessage.id == message_id
        )
    ).one_or_none()
    if row is None:
        return "missing", ""
    if row.status != "pending":
        return row.status, ""
    try:
        payload = json.loads(row.payload)
    except ValueError:
        _record(conn, message_id, "failed", "消息内容不是有效的 JSON")
        return "failed", ""
    try:
        get_wechat_client().post("message/template/send", data=payload)
    except (WeChatClientException, OSError) as err:
        errcode, text = _describe(err)
        final = errcode in PERMANENT_ERRCODES or last_try()
        _record(conn, message_id, "failed" if final else "pending", text)
        log.warning(
            "outbound message %s (%s) failed%s: %s",
            message_id,
            payload.get("touser") if isinstance(payload, dict) else None,
            "" if final else ", will retry",
            text,
        )
        return ("failed" if final else "retry"), text
    _record(conn, message_id, "sent", "")
    return "sent", ""


def _release(lock, message_id: int) -> None:
    try:
        lock.release()
    except Exception:  # expired under a very slow send: nothing to release
        log.debug("outbound lock %s already gone", message_id)


def send_outbound_message(message_id: int) -> str:
    """Send one outbox row; return ``sent``, ``failed`` or why nothing was done.

    Raises ``SendFailed`` after recording a failure that RQ will retry.
    """
    lock = _lock(message_id)
    if not lock.acquire(blocking=False):
        return "busy"  # another worker is sending it right now
    try:
        with _autocommit() as conn:
            outcome, text = _send_locked(conn, message_id, _is_last_try)
    finally:
        _release(lock, message_id)
    if outcome == "retry":
        raise SendFailed(text)
    return outcome


def send_outbound_messages(message_ids: list[int]) -> dict[str, int]:
    """Send a chunk of outbox rows one by one, in id order; return how many ended how.

    Each row is claimed (its Redis lock, then ``pending`` read under it) and recorded
    (its conditional update, autocommitted) on its own, exactly as ``send_outbound_message``
    does: a worker killed mid-chunk leaves the rows before it ``sent``, and the chunk's
    retry (the recovery pass hands the abandoned job back) skips them. A row that fails
    is recorded and gets its own retry job (``outbound-<id>``, the configured backoff),
    while the chunk goes on with the next row. A row another worker holds right now
    gets a one-row job for when that lock lapses (a no-op if the holder sent it).
    """
    ids = sorted({int(i) for i in message_ids if isinstance(i, int) and 0 < i <= MAX_ID})
    outcomes: Counter[str] = Counter()
    with _autocommit() as conn:
        for message_id in ids:
            lock = _lock(message_id)
            if not lock.acquire(blocking=False):
                # Another job sends it now: if its sender dies, this row's own job sends
                # it once the lock has lapsed (and finds it sent otherwise).
                if not job_is_live(outbound_job_id(message_id)):
                    wait = get_redis().pttl(lock.name) or 0
                    _queue_retry(message_id, max(wait, 0) // 1000 + 1)
                outcomes["busy"] += 1
                continue
            try:
                outcome, _text = _send_locked(conn, message_id, _no_retries_configured)
            finally:
                _release(lock, message_id)
            if outcome == "retry" and not job_is_live(outbound_job_id(message_id)):
                _queue_retry(message_id)
            outcomes[outcome] += 1
    return dict(outcomes)


def _no_retries_configured() -> bool:
    """A chunk's failed row is retried on its own unless no retries are configured."""
    return not retry_intervals()


def _queue_retry(message_id: int, delay: int | None = None) -> None:
    """Queue the one-row job for a row of a chunk: its first retry ``delay`` seconds from
    now (default the first configured interval), with the other intervals as RQ retries."""
    intervals = retry_intervals()
    if delay is None:
        delay, intervals = (intervals[0], intervals[1:]) if intervals else (0, [])
    options = {
        "job_id": outbound_job_id(message_id),
        "retry": Retry(max=len(intervals), interval=intervals) if intervals else None,
        "result_ttl": 86400,
        "failure_ttl": 7 * 86400,
    }
    queue = get_queue("default")
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), SEND_JOB, message_id, **options)
    else:
        queue.enqueue(SEND_JOB, message_id, **options)


def _record(conn: Connection, message_id: int, status: str, error: str) -> None:
    """Write a try's outcome to a row still ``pending`` (one autocommitted statement)."""
    values: dict = {
        "status": status,
        "attempts": OutboundMessage.attempts + 1,
        "last_error": error[:300],
    }
    if status == "sent":
        values["sent_at"] = utcnow()
    conn.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == message_id, OutboundMessage.status == "pending")
        .values(**values)
    )


# --- the sweep ----------------------------------------------------------------------------


def _jobs_held(connection) -> set[str]:
    """Ids of the jobs the default queue holds to run: waiting in its list, scheduled, or
    started (a started job of a dead worker is handed back by the recovery pass first)."""
    queue = Queue("default", connection=connection)
    held = {as_text(raw) for raw in connection.lrange(queue.key, 0, -1)}
    held.update(as_text(raw) for raw in connection.zrange(queue.scheduled_job_registry.key, 0, -1))
    held.update(
        as_text(raw).split(":", 1)[0]
        for raw in connection.zrange(queue.started_job_registry.key, 0, -1)
    )
    return held


def _merged(ranges) -> tuple[list[int], list[int]]:
    """Id ranges merged where they overlap: (starts, ends), ascending, for ``bisect``."""
    starts: list[int] = []
    ends: list[int] = []
    for first, last in sorted(ranges):
        if ends and first <= ends[-1]:
            ends[-1] = max(ends[-1], last)
        else:
            starts.append(first)
            ends.append(last)
    return starts, ends


def sweep_outbox(now: datetime | None = None, min_age: timedelta = SWEEP_MIN_AGE) -> int:
    """Queue again every ``pending`` row at least ``min_age`` old whose job is gone
    (neither its own ``outbound-<id>`` job nor a chunk job whose id range covers it is
    going to run); return how many. Pages through the pending rows in id order, so rows
    waiting in live chunks of a long backlog do not hide lost ones behind them."""
    now = now or utcnow()
    connection = get_redis()
    held = _jobs_held(connection)
    starts, ends = _merged(r for r in map(chunk_range, held) if r is not None)
    lost: list[int] = []
    after = 0
    for _page in range(SWEEP_PAGES):
        ids = db.session.scalars(
            select(OutboundMessage.id)
            .where(
                OutboundMessage.status == "pending",
                OutboundMessage.id > after,
                OutboundMessage.created_at <= now - min_age,
                OutboundMessage.created_at >= now - SWEEP_MAX_AGE,
                OutboundMessage.attempts < SWEEP_MAX_ATTEMPTS,
            )
            .order_by(OutboundMessage.id)
            .limit(SWEEP_PAGE)
        ).all()
        db.session.rollback()
        for message_id in ids:
            n = bisect.bisect_right(starts, message_id) - 1
            if n >= 0 and message_id <= ends[n]:
                continue  # a chunk job that will run holds it
            job_id = outbound_job_id(message_id)
            if job_id in held or job_is_live(job_id, connection):
                continue
            lost.append(message_id)
        if len(ids) < SWEEP_PAGE or len(lost) >= SWEEP_MAX_QUEUED:
            break
        after = ids[-1]
    lost = lost[:SWEEP_MAX_QUEUED]
    enqueue_sends(lost)
    return len(lost)


def schedule_outbox_sweep(at: datetime | None = None) -> str | None:
    """Schedule ``run_outbox_sweep`` for the slot after ``at`` (default now), once per slot."""
    interval = int(current_app.config.get("OUTBOX_SWEEP_INTERVAL_SECONDS", SWEEP_SECONDS))
    return schedule_in_slot(
        "wechat:outbox:sweep", "outbox-sweep", run_outbox_sweep, interval, "low", at
    )


@single_flight("wechat:outbox:sweep")
def run_outbox_sweep() -> int | None:
    """The periodic job: schedule the next run first (a crash keeps the chain), then sweep."""
    schedule_outbox_sweep()
    return sweep_outbox()


def sweep_outbox_soon() -> str | None:
    """Schedule one outbox sweep ``PROMPT_SWEEP_DELAY`` from now taking rows only
    ``PROMPT_MIN_AGE`` old (the recovery pass calls it when it found a dead worker's job);
    at most one per delay. Returns the job id, or None when one is already on its way."""
    delay = int(PROMPT_SWEEP_DELAY.total_seconds())
    if not get_redis().set("wechat:outbox:prompt", 1, nx=True, ex=delay):
        return None
    job_id = f"outbox-sweep-prompt-{int(utcnow().timestamp())}"
    get_queue("high").enqueue_in(
        PROMPT_SWEEP_DELAY,
        run_prompt_outbox_sweep,
        job_id=job_id,
        result_ttl=3600,
        retry=Retry(max=2, interval=[10, 30]),
    )
    return job_id


@single_flight("wechat:outbox:prompt-sweep")
def run_prompt_outbox_sweep() -> int | None:
    """The sweep after a worker's death: pending rows 30 s old whose job is gone."""
    return sweep_outbox(min_age=PROMPT_MIN_AGE)
