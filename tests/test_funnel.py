"""The promotion funnel (推广效果): visits counted in Redis once per visitor per day,
bindings, paid orders, sales and commission from the database, the rollup into
``distributor_funnel_days`` and what survives a Redis flush."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from flask_login import login_user
from sqlalchemy import func, select

from app.core.redis import get_redis
from app.core.time import shop_today
from app.distribution.funnel import COOKIE, VisitBuffer, count, day_visits, visitors_key
from app.distribution.funnel_days import distributor_ranking, funnel_report, rollup_day
from app.distribution.funnel_models import FunnelClosedDay, FunnelDay
from app.extensions import db
from jobs.funnel import run_funnel_rollup, schedule_funnel_rollup
from tests.support import wechat as wx
from tests.support.commissions import configure, distributor, pay, place, refund
from tests.support.funnel import roll_up_then_flush, tomorrow, totals, visit

pytestmark = pytest.mark.postgresql  # aggregate SQL, idempotent roll-up


def test_a_visitor_counts_once_a_day_and_per_product_page(app, make, client, login_as):
    configure(level1_bp=1000)
    seller = distributor(make, nickname="推广达人")
    cup = make.product(title="青瓷茶杯", price_fen=5000)
    customer = make.user(nickname="李雷")
    login_as(client, customer)

    for _ in range(3):
        visit(client, f"/product/{cup.id}", seller.code)
    visit(client, "/", seller.code)
    visit(client, "/", seller.code.lower())  # the code is case-insensitive, as binding

    visits = day_visits(shop_today(), [seller.code])
    assert visits == {seller.code: {0: 1, cup.id: 1}}
    assert totals(seller)["visits"] == 1
    report = funnel_report(seller, 7)
    assert [(p.product_id, p.title, p.visits) for p in report.products] == [(cup.id, "青瓷茶杯", 1)]
    # The keys expire on their own, a few days later.
    ttl = get_redis().ttl(visitors_key(shop_today(), seller.code))
    assert 2 * 86400 < ttl <= 3 * 86400


def test_anonymous_visitors_get_a_cookie_even_on_the_cached_product_page(app, make):
    seller = distributor(make)
    cup = make.product(title="青瓷茶杯")
    first, second = app.test_client(), app.test_client()

    cookie = visit(first, f"/product/{cup.id}", seller.code)
    assert cookie and len(cookie) >= 12
    # The page is served from the fragment cache now; the cookie is still the visitor's own.
    assert visit(first, f"/product/{cup.id}", seller.code) is None  # already has one
    other = visit(second, f"/product/{cup.id}", seller.code)
    assert other and other != cookie
    with app.app_context():
        assert day_visits(shop_today(), [seller.code]) == {seller.code: {0: 2, cup.id: 2}}


def test_signing_in_moves_the_anonymous_visit_to_the_customer(app, make):
    seller = distributor(make)
    customer = make.user(nickname="韩梅梅")
    browser = app.test_client()
    cookie = visit(browser, "/", seller.code)

    # The OAuth callback signs in with ``login_user``; the visit moves to the customer.
    with app.test_request_context("/", headers={"Cookie": f"{COOKIE}={cookie}"}):
        login_user(customer)
    members = get_redis().smembers(visitors_key(shop_today(), seller.code))
    assert members == {f"u{customer.id}".encode()}


def test_staff_and_unknown_codes_are_not_counted(app, make, client, login_as):
    seller = distributor(make)
    login_as(client, make.staff())
    client.get(f"/?ref={seller.code}")
    assert day_visits(shop_today(), [seller.code]) == {}

    visit(app.test_client(), "/", "NOSUCHCODE")
    rollup_day(shop_today())
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(FunnelDay)) == 0


def test_bindings_orders_sales_and_commission(app, make, client, login_as):
    configure(level1_bp=1000)
    seller = distributor(make, nickname="推广达人")
    cup = make.product(title="青瓷茶杯", price_fen=5000, stock=100)
    pot = make.product(title="紫砂壶", price_fen=20000, stock=100)
    customer = make.user(nickname="李雷")
    login_as(client, customer)
    visit(client, f"/product/{cup.id}", seller.code)  # binds (first visit)

    pay(place(make, customer, product=cup, quantity=2))
    pay(place(make, customer, product=pot))
    place(make, customer, product=pot)  # never paid: not in the funnel
    # Someone else's own purchase is not an order the seller's links brought.
    other = make.user(nickname="路人")
    pay(place(make, other, product=pot))

    got = totals(seller)
    assert got == {
        "visits": 1,
        "bindings": 1,
        "orders": 2,
        "sales_fen": 30000,
        "commission_fen": 3000,
    }
    report = funnel_report(seller, 30)
    rows = {
        p.product_id: (p.visits, p.orders, p.sales_fen, p.commission_fen) for p in report.products
    }
    assert rows == {pot.id: (0, 1, 20000, 2000), cup.id: (1, 1, 10000, 1000)}
    assert [p.product_id for p in report.products] == [pot.id, cup.id]  # sales first
    assert len(report.days) == 30 and report.days[-1].day == shop_today()
    # The whole shop is every distributor together.
    assert totals(None)["orders"] == 2


def test_a_refund_does_not_change_the_day_it_was_paid(app, make, client, login_as):
    configure(level1_bp=1000)
    seller = distributor(make)
    customer = make.user()
    login_as(client, customer)
    visit(client, "/", seller.code)
    order = pay(place(make, customer, price_fen=10000))
    refund(order, 1)
    assert totals(seller)["sales_fen"] == 10000
    assert totals(seller)["commission_fen"] == 1000


def test_rollup_is_idempotent_and_closed_days_survive_a_redis_flush(app, make, client, login_as):
    configure(level1_bp=1000)
    seller = distributor(make)
    cup = make.product(price_fen=8000)
    customer = make.user()
    login_as(client, customer)
    visit(client, f"/product/{cup.id}", seller.code)
    pay(place(make, customer, product=cup))
    today = shop_today()
    before = totals(seller)

    # Today, rolled up and flushed: today's visits come back from the table.
    roll_up_then_flush()
    assert totals(seller) == before
    roll_up_then_flush()  # again, with Redis empty: the stored visits do not go down
    row = db.session.get(FunnelDay, (today, seller.id, cup.id))
    assert (row.visits, row.orders, row.sales_fen, row.commission_fen) == (1, 1, 8000, 800)

    # Tomorrow: the rollup closes today; it is then read from the table alone.
    later = tomorrow()
    roll_up_then_flush(later)
    assert db.session.get(FunnelClosedDay, today) is not None
    report = funnel_report(seller, 7, later)
    day = next(d for d in report.days if d.day == today)
    assert (day.visits, day.bindings, day.orders, day.sales_fen, day.commission_fen) == (
        1,
        1,
        1,
        8000,
        800,
    )
    assert report.days[-1].day == today + timedelta(days=1)
    assert report.totals.as_dict() == before
    # The whole shop's ranking reads the closed day from the table too.
    assert [(did, f.as_dict()) for did, f in distributor_ranking(7, later)] == [(seller.id, before)]


def test_a_qr_scan_is_a_visit_of_the_same_customer(app, make, live_server, client, login_as):
    seller = distributor(make)
    customer = make.user(nickname="扫码的人")
    login_as(client, customer)
    visit(client, "/", seller.code)
    scene = f"d:{seller.code}"
    wx.reply(wx.post(live_server.url, wx.scan(customer.openid, scene)))
    assert totals(seller)["visits"] == 1  # the same person, once a day

    stranger = "o_new_scanner"
    push = wx.subscribe(stranger, scene)
    wx.reply(wx.post(live_server.url, push))
    wx.post(live_server.url, push)  # WeChat's retry of the same push
    assert totals(seller)["visits"] == 2
    assert totals(seller)["bindings"] == 2  # the link visitor and the new follower


def test_the_periodic_job_rolls_up_three_days_and_schedules_itself_once(app, make, client):
    seller = distributor(make)
    visit(client, "/", seller.code)
    written = run_funnel_rollup()
    today = shop_today()
    assert list(written) == [(today - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    assert written[today.isoformat()] == 1
    # The two closed days are marked; today is not.
    closed = set(db.session.scalars(select(FunnelClosedDay.day)))
    assert closed == {today - timedelta(days=1), today - timedelta(days=2)}
    # The next slot was claimed by the run itself: a second claim of it finds it taken.
    assert schedule_funnel_rollup() is None


def test_redis_away_loses_visits_never_the_page(app, make, client):
    """A buffer whose Redis does not answer drops what it held; adding never raises."""
    seller = distributor(make)
    closed_port = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2)
    buffer = VisitBuffer(closed_port, closed_port.register_script("return 1"), 60)
    buffer.add(("u1", seller.code, "20261207", 0, ""))
    assert buffer.flush() == 0
    assert buffer.flush() == 0  # nothing left to send again
    assert count(seller.code, "u1") is True  # the app's own Redis answers
