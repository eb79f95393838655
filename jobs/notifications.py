"""Sending the outbox (app/wechat/notify.py) to WeChat: jobs, and a sweep.

``send_outbound_message`` posts one ``OutboundMessage``'s payload to
``/cgi-bin/message/template/send``. It is queued after the commit that recorded the row
(by ``app/wechat/outbox.enqueue_send``, which names this job by its dotted path),
with the job id ``outbound-<id>`` and ``Retry`` backoff (``WECHAT_NOTIFY_RETRY_INTERVALS``,
default 30 s, 2 min, 10 min). A commit that recorded several rows queues
``send_outbound_messages`` instead, one job per ``outbox.SEND_BATCH`` rows: it tries each
row once, as above, and a row whose try failed and may be retried gets its own
``send_outbound_message`` job after the first interval with the remaining tries (same
number of tries in all). Each failure is written to the row (``attempts``,
``last_error``) and raised so RQ retries; the last try, or an error a retry cannot fix,
marks the row ``failed`` and returns normally (the row is the record, not RQ's failed
registry).

Once: a row is sent only while ``pending``, and a Redis lock per row keeps two workers
from sending it at the same moment. A worker that dies after WeChat accepted the message
but before the commit leaves it ``pending``; the retry then sends it again with the same
``client_msg_id``, which WeChat uses to drop repeats within 10 minutes.

``sweep_outbox`` re-queues ``pending`` rows older than a few minutes whose job is gone (Redis
was down at commit time, a job expired or failed, a job popped by a worker killed before it
registered the job); the worker schedules it like the other periodic jobs, one run per slot
of ``OUTBOX_SWEEP_INTERVAL_SECONDS`` (default 300), one run at a time.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from flask import current_app
from rq import get_current_job
from sqlalchemy import select, update
from wechatpy.exceptions import WeChatClientException

from app.core.redis import get_redis
from app.core.time import utcnow
from app.extensions import db
from app.wechat.clients import get_wechat_client
from app.wechat.models import OutboundMessage
from app.wechat.outbox import enqueue_retry, enqueue_send, outbound_job_id, retry_intervals
from jobs.queues import job_is_live, schedule_in_slot, single_flight

log = logging.getLogger(__name__)

# WeChat errors a retry cannot fix: bad openid, bad template, not a follower, bad data,
# template deleted or the account lacks the permission.
PERMANENT_ERRCODES = frozenset({40003, 40036, 40037, 43004, 43019, 47001, 47003, 48001})
SWEEP_SECONDS = 300
SWEEP_MIN_AGE = timedelta(minutes=5)
SWEEP_MAX_AGE = timedelta(days=3)
SWEEP_MAX_ATTEMPTS = 10


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


def send_outbound_message(message_id: int) -> str:
    """Send one outbox row; return ``sent``, ``failed`` or why nothing was done.

    Raises ``SendFailed`` after recording a failure that RQ will retry.
    """
    return _send(message_id, _is_last_try)


def send_outbound_messages(message_ids: list[int]) -> dict[str, int]:
    """Send several outbox rows (``outbox.enqueue_sends``), each as ``send_outbound_message``
    would; how many ended each way. A row whose try failed and may be retried is left
    ``pending`` with its error and gets its own job (``outbox.enqueue_retry``: after the
    first interval, with the remaining tries), so one bad row neither stops the others
    nor sends them twice."""
    done: dict[str, int] = {}
    no_retries = not retry_intervals()
    for message_id in message_ids:
        try:
            status = _send(message_id, lambda: no_retries)
        except SendFailed:
            enqueue_retry(message_id)
            status = "retry"
        done[status] = done.get(status, 0) + 1
    return done


def _send(message_id: int, last_try) -> str:
    lock = get_redis().lock(f"wechat:outbound:{message_id}:sending", timeout=120)
    if not lock.acquire(blocking=False):
        return "busy"  # another worker is sending it right now
    try:
        row = db.session.scalar(
            select(OutboundMessage)
            .where(OutboundMessage.id == message_id)
            .execution_options(populate_existing=True)
        )
        if row is None:
            return "missing"
        if row.status != "pending":
            return row.status
        payload = json.loads(row.payload)
        db.session.rollback()  # hold no transaction open while WeChat answers
        try:
            get_wechat_client().post("message/template/send", data=payload)
        except (WeChatClientException, OSError) as err:
            errcode, text = _describe(err)
            final = errcode in PERMANENT_ERRCODES or last_try()
            _record(message_id, "failed" if final else "pending", text)
            log.warning(
                "outbound message %s (%s) failed%s: %s",
                message_id,
                payload.get("touser"),
                "" if final else ", will retry",
                text,
            )
            if not final:
                raise SendFailed(text) from None
            return "failed"
        _record(message_id, "sent", "")
        return "sent"
    finally:
        try:
            lock.release()
        except Exception:  # expired under a very slow send: nothing to release
            log.debug("outbound lock %s already gone", message_id)


def _record(message_id: int, status: str, error: str) -> None:
    values: dict = {
        "status": status,
        "attempts": OutboundMessage.attempts + 1,
        "last_error": error[:300],
    }
    if status == "sent":
        values["sent_at"] = utcnow()
    db.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == message_id, OutboundMessage.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


# --- the sweep ----------------------------------------------------------------------------


def sweep_outbox(now: datetime | None = None) -> int:
    """Queue again every ``pending`` row a few minutes old whose job is gone; return how many."""
    now = now or utcnow()
    ids = db.session.scalars(
        select(OutboundMessage.id)
        .where(
            OutboundMessage.status == "pending",
            OutboundMessage.created_at <= now - SWEEP_MIN_AGE,
            OutboundMessage.created_at >= now - SWEEP_MAX_AGE,
            OutboundMessage.attempts < SWEEP_MAX_ATTEMPTS,
        )
        .order_by(OutboundMessage.id)
        .limit(1000)
    ).all()
    db.session.rollback()
    queued = 0
    for message_id in ids:
        if not job_is_live(outbound_job_id(message_id)):
            enqueue_send(message_id)
            queued += 1
    return queued


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
