"""Coupons are once-only under concurrency (run on SQLite and PostgreSQL): 300 customers
claiming 100 coupons at once get exactly 100; one coupon used by two checkouts at once is
used once."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.coupons.models import CouponTemplate, CustomerCoupon
from app.coupons.services import CouponError, claim, discount_for
from app.extensions import db
from app.orders.models import Order
from app.orders.services import ItemRequest, OrderError, place_order
from tests.support.coupons import held, template
from tests.support.pay import address_for

pytestmark = pytest.mark.postgresql  # once-only under concurrency


def run_at_once(app, jobs, threads: int):
    """Run ``jobs`` (callables returning an outcome) on ``threads`` threads started together."""
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def work(chunk):
        barrier.wait()
        for job in chunk:
            with app.app_context():
                try:
                    job()
                    db.session.commit()
                    result = "ok"
                except (CouponError, OrderError) as exc:
                    db.session.rollback()
                    result = exc.code
                finally:
                    db.session.remove()
            with lock:
                outcomes.append(result)

    workers = [threading.Thread(target=work, args=(jobs[i::threads],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(180)
    assert not any(t.is_alive() for t in workers)
    return outcomes


def test_300_claims_for_100_coupons_issue_exactly_100(app, make):
    t = template(stock=100, per_customer=1)
    users = [make.user().id for _ in range(300)]
    jobs = [lambda user_id=user_id: claim(t.id, user_id) for user_id in users]
    outcomes = run_at_once(app, jobs, 20)
    assert len(outcomes) == 300
    assert outcomes.count("ok") == 100
    assert outcomes.count("coupon_sold_out") == 200
    db.session.expire_all()
    assert db.session.get(CouponTemplate, t.id).issued == 100
    assert db.session.scalar(select(func.count(CustomerCoupon.id))) == 100


def test_one_customer_claiming_at_once_gets_the_limit(app, make):
    t = template(stock=100, per_customer=2)
    user_id = make.user().id
    outcomes = run_at_once(app, [lambda: claim(t.id, user_id)] * 10, 10)
    assert outcomes.count("ok") == 2
    assert outcomes.count("coupon_limit") == 8
    db.session.expire_all()
    assert db.session.get(CouponTemplate, t.id).issued == 2


def test_two_checkouts_with_one_coupon_use_it_once(app, make):
    sku_id = make.product(price_fen=15000, stock=100).skus[0].id
    for _round in range(5):
        user = make.user()
        address_id = address_for(user).id
        coupon_id = held(user, template()).id
        user_id = user.id

        def checkout(user_id=user_id, address_id=address_id, coupon_id=coupon_id):
            place_order(
                user_id,
                [ItemRequest(sku_id, 1)],
                address_id,
                discount=discount_for(coupon_id, user_id),
            )

        outcomes = run_at_once(app, [checkout, checkout], 2)
        assert sorted(outcomes) == ["coupon_used", "ok"]
        db.session.expire_all()
        used_by = db.session.scalars(
            select(Order.coupon_fen).where(Order.customer_coupon_id == coupon_id)
        ).all()
        assert used_by == [2000]
