"""gunicorn settings for production (and the page benchmark, which uses the same file)."""

import multiprocessing
import os
import tempfile
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# One thread per worker by default: the app is CPU-bound Python, so two threads in one
# process share a core (the GIL) and each request takes about twice as long; processes
# give the parallelism (bench/README.md: a WeChat push's p99 service time 19 ms with one
# thread, 35 ms with two). Raise GUNICORN_THREADS if workers mostly wait on WeChat's APIs.
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
# The access log leaves out the query strings of /wechat, /pay/* and the OAuth callback
# (signatures and codes are credentials): see app/core/access_log.py.
logger_class = "app.core.access_log.RedactingLogger"
# Behind a TLS-terminating proxy: trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus multiprocess mode (app/core/metrics.py): every worker writes its counters to
# files in this folder and /metrics sums them, whichever worker answers the scrape. Set
# before the workers import the app; emptied when gunicorn starts (on_starting), so the
# counts of an earlier run never add up with this one's.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "shop-prometheus")
)


def on_starting(server):
    """Create the metrics folder, or empty it of an earlier run's files."""
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """A worker is gone: its live gauges stop counting (its counters stay in the sum)."""
    from prometheus_client import multiprocess  # only gunicorn's master needs it, here

    multiprocess.mark_process_dead(worker.pid)
