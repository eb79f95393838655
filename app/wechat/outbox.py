"""Queuing the send of outbox rows (``OutboundMessage``) as RQ jobs.

The jobs themselves are the worker's business and live in ``jobs/notifications.py``; the
app only names them (dotted paths RQ imports in the worker), so queuing a message after a
commit does not make ``app`` import ``jobs``. ``jobs/notifications.py`` imports this module
for its sweep, which re-queues lost sends, and for the retry of one row.

- One row: ``send_outbound_message(id)`` (``SEND_JOB``), job id ``outbound-<id>``, with
  ``Retry`` backoff. Used for a lone row, a row's retries, and rows queued by older code.
- Many rows of one commit (a follow-up batch records hundreds): ``enqueue_sends`` queues
  one ``send_outbound_messages(ids)`` job (``SEND_CHUNK_JOB``) per chunk of up to
  ``WECHAT_SEND_CHUNK`` ids (default 50), job id ``outbound-chunk-<first>-<last>``. The
  chunk sends its rows one by one, each claimed and recorded on its own; a row that fails
  gets its own ``outbound-<id>`` retry job and does not hold up the others.
"""

from __future__ import annotations

import logging

from flask import current_app
from rq import Retry

from app.core.observe import TracedQueue
from app.core.redis import get_redis

log = logging.getLogger(__name__)

#: the job that sends one row; RQ resolves the path in the worker
SEND_JOB = "jobs.notifications.send_outbound_message"
#: the job that sends a chunk of rows, one by one
SEND_CHUNK_JOB = "jobs.notifications.send_outbound_messages"
#: rows per chunk job (``WECHAT_SEND_CHUNK`` overrides)
SEND_CHUNK = 50
CHUNK_JOB_PREFIX = "outbound-chunk-"
#: a chunk job's time limit: a minute, plus per row a send's 10 s timeout with room
CHUNK_TIMEOUT_BASE = 60
CHUNK_TIMEOUT_PER_ROW = 15
#: seconds between tries after the first (``WECHAT_NOTIFY_RETRY_INTERVALS`` overrides)
RETRY_INTERVALS = (30, 120, 600)


def outbound_job_id(message_id: int) -> str:
    """The one job id a message's send can have."""
    return f"outbound-{message_id}"


def chunk_job_id(message_ids: list[int]) -> str:
    """The job id of a chunk: its first and last row id (ascending ids)."""
    return f"{CHUNK_JOB_PREFIX}{message_ids[0]}-{message_ids[-1]}"


def chunk_range(job_id: str) -> tuple[int, int] | None:
    """(first, last) row id of a chunk job id, or None for another job id."""
    if not job_id.startswith(CHUNK_JOB_PREFIX):
        return None
    first, _, last = job_id[len(CHUNK_JOB_PREFIX) :].partition("-")
    try:
        return int(first), int(last)
    except ValueError:
        return None


def send_chunk_size() -> int:
    """How many rows one send job sends (``WECHAT_SEND_CHUNK``, at least 1)."""
    return max(1, int(current_app.config.get("WECHAT_SEND_CHUNK", SEND_CHUNK)))


def retry_intervals() -> list[int]:
    """The configured backoff between tries of a send, in seconds."""
    return list(current_app.config.get("WECHAT_NOTIFY_RETRY_INTERVALS", RETRY_INTERVALS))


def enqueue_send(message_id: int) -> None:
    """Queue the send of one outbox row (after the commit that recorded it). Never raises:
    a row left ``pending`` is picked up by ``jobs.notifications.sweep_outbox``."""
    intervals = retry_intervals()
    try:
        TracedQueue("default", connection=get_redis()).enqueue(
            SEND_JOB,
            message_id,
            job_id=outbound_job_id(message_id),
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
            result_ttl=86400,
            failure_ttl=7 * 86400,
        )
    except Exception:  # the event itself is committed; the sweep will queue it later
        log.exception("could not queue outbound message %s", message_id)


def enqueue_sends(message_ids: list[int]) -> None:
    """Queue the sends of many rows (after the commit that recorded them) in one Redis
    round trip: one chunk job per ``WECHAT_SEND_CHUNK`` rows, in id order; a lone row gets
    the one-row job. Never raises, like ``enqueue_send``."""
    if len(message_ids) == 1:
        enqueue_send(message_ids[0])
        return
    if not message_ids:
        return
    ids = sorted(set(message_ids))
    size = send_chunk_size()
    intervals = retry_intervals()
    queue = TracedQueue("default", connection=get_redis())
    try:
        with queue.connection.pipeline() as pipe:
            for start in range(0, len(ids), size):
                chunk = ids[start : start + size]
                one = len(chunk) == 1
                queue.enqueue_call(
                    SEND_JOB if one else SEND_CHUNK_JOB,
                    args=(chunk[0],) if one else (chunk,),
                    job_id=outbound_job_id(chunk[0]) if one else chunk_job_id(chunk),
                    # A chunk's retry is for a worker killed mid-chunk (the recovery pass
                    # hands it back): its sent rows are skipped, the rest sent.
                    retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
                    # RQ's default 180 s would stop a chunk whose WeChat is slow mid-way.
                    timeout=None
                    if one
                    else CHUNK_TIMEOUT_BASE + CHUNK_TIMEOUT_PER_ROW * len(chunk),
                    result_ttl=86400,
                    failure_ttl=7 * 86400,
                    pipeline=pipe,
                )
            pipe.execute()
    except Exception:  # the events are committed; the sweep will queue them later
        log.exception("could not queue %s outbound messages", len(message_ids))
