"""Request ids, one log line per request and per job, and the request-latency metric.

Every request gets an id: the caller's ``X-Request-ID`` when it looks like one (letters,
digits, ``.-_``, 8-64 characters; a proxy's or a load balancer's), else a new one. It is
sent back as ``X-Request-ID``, written on every log line of the request, and carried into
the jobs the request enqueues (``TracedQueue`` puts it in the job's ``meta``), whose log
lines carry it too.

With ``LOG_FORMAT=json`` every log record is one JSON object on one line, and each request
and each job ends with one line of its own (``event`` "request" or "job") saying what ran,
how it ended and how long it took, with the order number and ``out_trade_no`` where the
code noted them (``note``). Query strings are never logged (they carry WeChat's
signatures and OAuth codes), nor headers, bodies or secrets; an openid is masked
(``mask_openid``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import Flask, g, request
from rq import Queue

from app.core.metrics import observe_request

REQUEST_ID_HEADER = "X-Request-ID"
_GOOD_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Fields a log line may carry from the context (request or job).
_CONTEXT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("log_context", default=None)
request_log = logging.getLogger("shop.request")
job_log = logging.getLogger("shop.job")
_MASKED_FIELDS = ("openid", "unionid")


def mask_openid(value: str | None) -> str | None:
    """``oAbCdEfGhIjKlMn123`` → ``oAbC***n123``: enough to tell two apart, not to use."""
    if not value:
        return value
    value = str(value)
    if len(value) <= 8:
        return "***"
    return f"{value[:4]}***{value[-4:]}"


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_context() -> dict:
    """The fields of the request or job running now (empty outside one)."""
    return dict(_CONTEXT.get() or {})


def current_request_id() -> str | None:
    return (_CONTEXT.get() or {}).get("request_id")


def note(**fields) -> None:
    """Add fields (``order_number``, ``out_trade_no`` ...) to the current request's or job's
    log lines. An openid is masked; ``None`` values are left out."""
    context = _CONTEXT.get()
    if context is None:
        return
    for key, value in fields.items():
        if value is None:
            continue
        context[key] = mask_openid(value) if key in _MASKED_FIELDS else value


@contextmanager
def log_context(**fields) -> Iterator[dict]:
    """Run a block (a job) with its own log context."""
    token = _CONTEXT.set({k: v for k, v in fields.items() if v is not None})
    try:
        yield _CONTEXT.get()
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the context's fields and
    the record's own ``fields`` (``extra={"fields": {...}}``)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "context", None) or current_context())
        line.update(getattr(record, "fields", None) or {})
        for key in _MASKED_FIELDS:
            if line.get(key):
                line[key] = mask_openid(line[key])
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(app: Flask) -> None:
    """``LOG_FORMAT=json``: every record of the process goes out as one JSON line (stderr)."""
    if app.config.get("LOG_FORMAT") != "json":
        return
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    app.logger.handlers[:] = []  # Flask's own handler would print the record a second time
    app.logger.propagate = True


class TracedQueue(Queue):
    """An RQ queue whose new jobs carry the request id of the request enqueueing them."""

    def create_job(self, *args, **kwargs):
        request_id = current_request_id()
        if request_id:
            meta = dict(kwargs.get("meta") or {})
            meta.setdefault("request_id", request_id)
            kwargs["meta"] = meta
        return super().create_job(*args, **kwargs)


def register_observability(app: Flask) -> None:
    """Request ids, the request log line and the latency histogram, on every request."""
    configure_logging(app)

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _GOOD_REQUEST_ID.match(incoming) else new_request_id()
        g._log_token = _CONTEXT.set({"request_id": request_id})
        g._started = time.perf_counter()

    @app.after_request
    def _finish(response):
        started = g.pop("_started", None)
        context = current_context()
        if context.get("request_id"):
            response.headers[REQUEST_ID_HEADER] = context["request_id"]
        if started is None:
            return response
        seconds = time.perf_counter() - started
        route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
        observe_request(route, request.method, response.status_code, seconds)
        if app.config.get("LOG_FORMAT") == "json":
            request_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "context": context,
                    "fields": {
                        "event": "request",
                        "method": request.method,
                        "path": request.path,  # never the query string
                        "route": route,
                        "status": response.status_code,
                        "duration_ms": round(seconds * 1000, 1),
                        "remote_addr": request.remote_addr,
                    },
                },
            )
        return response

    @app.teardown_request
    def _reset(_exc) -> None:
        token = g.pop("_log_token", None)
        if token is not None:
            try:
                _CONTEXT.reset(token)
            except ValueError:  # set in another context (a streamed response)
                _CONTEXT.set(None)


def log_job(job, seconds: float, status: str) -> None:
    """The one line a job ends with (``LOG_FORMAT=json`` or not: it is short)."""
    job_log.info(
        "job %s %s",
        job.func_name,
        status,
        extra={
            "context": current_context(),
            "fields": {
                "event": "job",
                "job_id": job.id,
                "func": job.func_name,
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
            },
        },
    )
