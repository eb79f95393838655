"""Prometheus metrics: what the app counts, and how ``/metrics`` reads them back.

Counters and the latency histogram live in ``prometheus_client``. Under gunicorn every
worker is a process of its own, so ``gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR``
(and empties it at start): each process writes its values to files there, and a scrape,
whichever worker answers it, sums the files of all of them (``MultiProcessCollector``).
Without that variable (``flask run``, the tests' in-process client) the process's own
registry is read.

Job failures and retries are counted in Redis (``JOB_COUNTS_KEY``), not in the files:
workers run on other machines, or die and restart, and every web process must see every
worker's counts. What is a level rather than a count (queue depth, outbox backlog,
settlement lag) is read at scrape time by the collector the ops package adds
(``app/ops/gauges.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from redis import Redis

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Redis hash: "<outcome>:<job function>" -> count, outcome "failed" or "retried".
JOB_COUNTS_KEY = "metrics:jobs"

REQUEST_LATENCY = Histogram(
    "shop_request_duration_seconds",
    "Time to answer a request, by route (the URL rule, never the raw path) and method.",
    ("route", "method", "status"),
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PAY_NOTICES = Counter(
    "shop_pay_notices_total",
    "WeChat Pay payment notices, by result: paid (first time), duplicate, rejected, error.",
    ("result",),
)
WECHAT_CALLS = Counter(
    "shop_wechat_api_calls_total",
    "Calls to WeChat's APIs, by API (mp: official account, pay: WeChat Pay) and result.",
    ("api", "result"),
)


def count_pay_notice(result: str) -> None:
    """One payment notice answered with ``result``."""
    PAY_NOTICES.labels(result=result).inc()


def count_wechat_call(api: str, result: str) -> None:
    """One call to WeChat's ``api`` ("mp" or "pay") that ended with ``result``."""
    WECHAT_CALLS.labels(api=api, result=result).inc()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request."""
    REQUEST_LATENCY.labels(route=route, method=method, status=str(status)).observe(seconds)


def count_job(connection: Redis, outcome: str, func_name: str) -> None:
    """A job of ``func_name`` ``failed`` (for good) or was ``retried``; seen by every process."""
    connection.hincrby(JOB_COUNTS_KEY, f"{outcome}:{func_name}", 1)


def job_counts(connection: Redis) -> dict[tuple[str, str], int]:
    """{(outcome, job function): count} from Redis."""
    counts = {}
    for field, value in connection.hgetall(JOB_COUNTS_KEY).items():
        outcome, _, func = field.decode().partition(":")
        counts[(outcome, func)] = int(value)
    return counts


def render(extra_collectors: Iterable = ()) -> bytes:
    """The Prometheus text of every process's metrics plus ``extra_collectors``' (read now)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    extra = CollectorRegistry()
    for collector in extra_collectors:
        extra.register(collector)
    return text + generate_latest(extra)
