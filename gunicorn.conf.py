"""gunicorn settings for production (and the page benchmark, which uses the same file)."""

import multiprocessing
import os

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
