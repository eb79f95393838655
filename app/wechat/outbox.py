"""Queuing the send of an outbox row (``OutboundMessage``) as an RQ job.

The job itself, ``send_outbound_message``, is the worker's business and lives in
``jobs/notifications.py``; the app only names it (``SEND_JOB``, a dotted path RQ imports in
the worker), so queuing a message after a commit does not make ``app`` import ``jobs``.
``jobs/notifications.py`` imports this module for its sweep, which re-queues lost sends.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from rq import Retry

from app.core.observe import TracedQueue
from app.core.redis import get_redis

log = logging.getLogger(__name__)

#: the job that sends one row; RQ resolves the path in the worker
SEND_JOB = "jobs.notifications.send_outbound_message"
#: the job that sends several rows, each once; a row that fails gets its own job
SEND_MANY_JOB = "jobs.notifications.send_outbound_messages"
#: seconds between tries after the first (``WECHAT_NOTIFY_RETRY_INTERVALS`` overrides)
RETRY_INTERVALS = (30, 120, 600)
#: rows per ``SEND_MANY_JOB``: a batch of paid orders records hundreds of messages in one
#: commit, and an RQ job (queue, fetch, bookkeeping) costs more than the send itself
SEND_BATCH = 25


def outbound_job_id(message_id: int) -> str:
    """The one job id a message's send can have."""
    return f"outbound-{message_id}"


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


def outbound_batch_job_id(message_ids: list[int]) -> str:
    """The job id of the send of several rows (its first id and how many)."""
    return f"outbound-{message_ids[0]}-x{len(message_ids)}"


def enqueue_sends(message_ids: list[int]) -> None:
    """Queue the send of many rows (a batch of paid orders records hundreds of messages in
    one commit): one ``SEND_MANY_JOB`` per ``SEND_BATCH`` rows, all in one Redis round
    trip. Never raises, like ``enqueue_send``."""
    if len(message_ids) == 1:
        enqueue_send(message_ids[0])
        return
    if not message_ids:
        return
    intervals = retry_intervals()
    queue = TracedQueue("default", connection=get_redis())
    try:
        with queue.connection.pipeline() as pipe:
            for at in range(0, len(message_ids), SEND_BATCH):
                chunk = list(message_ids[at : at + SEND_BATCH])
                queue.enqueue_call(
                    SEND_MANY_JOB,
                    args=(chunk,),
                    job_id=outbound_batch_job_id(chunk),
                    # A job lost with its worker runs again: rows sent are not pending.
                    retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
                    result_ttl=86400,
                    failure_ttl=7 * 86400,
                    pipeline=pipe,
                )
            pipe.execute()
    except Exception:  # the events are committed; the sweep will queue them later
        log.exception("could not queue %s outbound messages", len(message_ids))


def enqueue_retry(message_id: int) -> None:
    """After a row's first try failed in a ``SEND_MANY_JOB``: its own job (``SEND_JOB``,
    id ``outbound-<id>``) after the first interval, with the remaining tries and intervals
    (as many tries in all as a row sent alone gets). Never raises."""
    intervals = retry_intervals()
    if not intervals:
        return
    queue = TracedQueue("default", connection=get_redis())
    options = {
        "job_id": outbound_job_id(message_id),
        "retry": Retry(max=len(intervals) - 1, interval=intervals[1:])
        if len(intervals) > 1
        else None,
        "result_ttl": 86400,
        "failure_ttl": 7 * 86400,
    }
    try:
        if intervals[0] > 0:
            queue.enqueue_in(timedelta(seconds=intervals[0]), SEND_JOB, message_id, **options)
        else:  # as RQ re-queues a retry at once for a zero interval
            queue.enqueue(SEND_JOB, message_id, **options)
    except Exception:  # the row stays pending; the sweep will queue it later
        log.exception("could not queue the retry of outbound message %s", message_id)
