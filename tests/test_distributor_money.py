"""The distributor's money as they see it: the centre home's figures (收益 today / this
month / in all, balances, the next settlement, promoted orders, customers, team), the
withdraw page's pending dates, the ledger's status filters with product and SKU, the
masked order, and the same through /api/v1/distributor/... . Every figure is checked
against plain sums over the ledger written out in the test, on real paid, completed,
refunded and settled orders.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core.time import shop_day_start, shop_today, to_shop_time, utcnow
from app.distribution.models import OrderAttribution
from app.distribution.summary import centre_summary, money_figures, part_sentence
from app.distribution.team import order_sales_fen
from app.distribution.withdrawals import request_withdrawal
from app.extensions import db
from app.ledger.history import history_through, ledger_figures
from app.ledger.models import LedgerEntry, LedgerSettledHistory
from app.ledger.settlement import settle_due
from app.orders.models import Order
from tests.support import factories
from tests.support.api import error_of
from tests.support.commissions import configure, customer_of, finish, pay, place
from tests.support.distribution import make_distributor, signed_in
from tests.support.money import Shop, build_shop, ledger_sum

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


@pytest.fixture
def shop(make) -> Shop:
    return build_shop(make)


def test_figures_equal_the_ledger(shop):
    s = shop.seller.id
    summary = centre_summary(s)
    money = summary.money
    assert money.pending_fen == ledger_sum(s, LedgerEntry.state == "pending") == 3500
    assert money.available_fen == ledger_sum(s, LedgerEntry.state.in_(("settled", "withdrawn")))
    assert money.available_fen == 3000 - 1000  # the settled commission less the withdrawal
    # 收益: earnings and what refunds took back, never lapsed entries nor withdrawals.
    earned = ledger_sum(s, LedgerEntry.state != "reversed", LedgerEntry.kind != "withdrawal")
    assert money.total_fen == earned == 1000 + 2000 + 3000 + 1000 - 500
    assert money.today_fen == money.month_fen == money.total_fen  # all written today
    # The same money split the other way: pending + available + withdrawn + held.
    assert money.total_fen == money.pending_fen + money.available_fen + money.withdrawn_fen + 1000
    recount = db.session.scalar(
        select(func.count())
        .select_from(OrderAttribution)
        .join(Order, Order.id == OrderAttribution.order_id)
        .where(
            OrderAttribution.distributor_id == s,
            OrderAttribution.level == 1,
            order_sales_fen() > 0,
        )
    )
    assert summary.orders_count == recount == 4  # the order refunded in full is out
    assert summary.customers_count == 5
    assert (summary.team_count, centre_summary(shop.parent.id).team_count) == (0, 1)


def test_pending_parts_have_the_settlement_dates(shop):
    summary = centre_summary(shop.seller.id)
    completed = to_shop_time(shop.completed_now.completed_at).date()
    dated, undated = summary.pending_parts
    assert (dated.settle_on, dated.amount_fen, dated.count) == (completed + timedelta(7), 2000, 1)
    # Paid, not received: the 1000 commission, and 1000 less the 500 a refund took back.
    assert (undated.settle_on, undated.amount_fen, undated.count) == (None, 1500, 3)
    day = completed + timedelta(7)
    assert part_sentence(dated, summary.today, 7) == (
        f"¥20.00 将于 {day.month}月{day.day}日 起可提现，共 1 笔"
    )
    assert (
        part_sentence(undated, summary.today, 7)
        == "¥15.00 待确认收货，确认收货后 7 天可提现，共 3 笔"
    )
    assert summary.next_part == dated


def test_today_and_month_are_shop_days(make):
    seller = make_distributor(make, "时区")
    today = shop_today()
    start = shop_day_start(today)  # 16:00 UTC the day before
    factories.ledger_entry(seller.id, 100, created_at=start + timedelta(minutes=1))
    factories.ledger_entry(seller.id, 20, created_at=start - timedelta(minutes=1))
    factories.ledger_entry(seller.id, 3, kind="level_1", state="reversed", created_at=start)
    money = money_figures(seller.id)
    yesterday_in_month = (today - timedelta(days=1)).month == today.month
    assert money.today_fen == 100
    assert money.month_fen == (120 if yesterday_in_month else 100)
    assert money.total_fen == 120


# --- pages --------------------------------------------------------------------------------


def test_centre_home_shows_the_figures_and_links(app, shop, login_as):
    client = signed_in(app, login_as, shop.seller.user)
    body = client.get("/distributor").get_data(as_text=True)
    assert "data-total>¥65.00<" in body and "data-today>¥65.00<" in body
    assert "data-month>¥65.00<" in body
    assert "data-orders>4<" in body and "data-customers>5<" in body and "data-team>0<" in body
    db.session.rollback()  # the page committed the settled history it summed
    assert db.session.get(LedgerSettledHistory, shop.seller.id) is not None
    summary = centre_summary(shop.seller.id)
    assert part_sentence(summary.next_part, summary.today, 7) in body
    for link in (
        "/distributor/commissions?status=pending",
        "/distributor/withdraw#pending",
        "/distributor/customers",
        "/distributor/team",
    ):
        assert f'href="{link}"' in body


def test_withdraw_page_shows_pending_with_dates_and_the_fee(app, shop, login_as):
    client = signed_in(app, login_as, shop.seller.user)
    body = client.get("/distributor/withdraw").get_data(as_text=True)
    day = to_shop_time(shop.completed_now.completed_at).date() + timedelta(7)
    assert f'data-pending-part="{day.isoformat()}"' in body
    assert f"{day.month}月{day.day}日 起可提现" in body
    assert 'data-pending-part="unreceived"' in body and "确认收货后 7 天可提现" in body
    assert "data-fee-preview" in body


def test_commissions_filter_by_status_with_product_and_order_link(app, shop, login_as):
    client = signed_in(app, login_as, shop.seller.user)
    every = client.get("/distributor/commissions").get_data(as_text=True)
    assert "data-product>手工陶瓷茶杯" in every
    assert f'href="/distributor/orders/{shop.completed_now.number}"' in every
    states = {
        status: client.get(f"/distributor/commissions?status={status}").get_data(as_text=True)
        for status in ("pending", "settled", "withdrawn", "reversed")
    }
    assert 'data-state="pending"' in states["pending"]
    assert 'data-state="settled"' not in states["pending"]
    assert 'data-state="settled"' in states["settled"]
    assert states["settled"].count("data-entry=") == 1  # the commission, not the withdrawal
    assert "没有已提现的记录" in states["withdrawn"]
    assert 'data-state="reversed"' in states["reversed"]
    bad = client.get("/distributor/commissions?status=nope")
    assert bad.status_code == 400 and "没有这个筛选条件" in bad.get_data(as_text=True)


def test_order_detail_is_masked_and_only_for_its_earners(app, make, shop, login_as):
    number = shop.completed_now.number
    seller = signed_in(app, login_as, shop.seller.user)
    body = seller.get(f"/distributor/orders/{number}").get_data(as_text=True)
    assert "手工陶瓷茶杯" in body and "¥200.00" in body  # the line, what was paid
    assert "13800000000" not in body and "科技园" not in body  # no phone, no address
    assert "买**" in body or "顾**" in body  # the buyer, masked
    assert 'data-earning="level_1" data-mine' in body and 'data-earning="level_2"' in body
    parent = signed_in(app, login_as, shop.parent.user)
    assert parent.get(f"/distributor/orders/{number}").status_code == 200
    stranger = signed_in(app, login_as, make_distributor(make, "外人").user)
    assert stranger.get(f"/distributor/orders/{number}").status_code == 404
    assert seller.get("/distributor/orders/NOPE").status_code == 404
    assert seller.get("/distributor/orders/" + "9" * 80).status_code == 404


# --- API ----------------------------------------------------------------------------------


def test_api_summary_equals_the_service(app, shop, login_as):
    client = signed_in(app, login_as, shop.seller.user)
    data = client.get("/api/v1/distributor/summary").get_json()
    summary = centre_summary(shop.seller.id)
    assert data["total_fen"] == summary.money.total_fen == 6500
    assert data["pending_fen"] == 3500 and data["available_fen"] == 2000
    assert (data["orders_count"], data["customers_count"], data["team_count"]) == (4, 5, 0)
    day = to_shop_time(shop.completed_now.completed_at).date() + timedelta(7)
    assert data["next_settlement"]["settle_on"] == day.isoformat()
    assert data["next_settlement"]["amount_fen"] == 2000
    assert [p["settle_on"] for p in data["pending_parts"]] == [day.isoformat(), None]
    assert data["pending_parts"][1]["text"] == "确认收货后 7 天可提现"
    assert data["links"]["pending"] == "/distributor/commissions?status=pending"


def test_api_ledger_status_filter_and_product(app, shop, login_as):
    client = signed_in(app, login_as, shop.seller.user)
    pending = client.get("/api/v1/distributor/ledger?status=pending").get_json()["items"]
    assert pending and {i["state"] for i in pending} == {"pending"}
    assert sum(i["amount_fen"] for i in pending) == 3500
    settled = client.get("/api/v1/distributor/ledger?status=settled").get_json()["items"]
    assert [i["kind"] for i in settled] == ["level_1"]
    assert settled[0]["product_title"] == "手工陶瓷茶杯"
    bad = client.get("/api/v1/distributor/ledger?status=nope")
    assert bad.status_code == 422, bad.get_data(as_text=True)


def test_api_masked_order(app, make, shop, login_as):
    number = shop.partly_refunded.number
    client = signed_in(app, login_as, shop.seller.user)
    data = client.get(f"/api/v1/distributor/orders/{number}").get_json()
    assert data["number"] == number and data["paid_fen"] == 10000
    assert data["lines"][0]["refunded_quantity"] == 1
    mine = [e for e in data["earnings"] if e["mine"]]
    assert [(e["level"], e["amount_fen"], e["taken_back_fen"]) for e in mine] == [(1, 1000, -500)]
    assert data["my_total_fen"] == 500
    assert mine[0]["reason_not_available"] == "待确认收货"
    theirs = [e for e in data["earnings"] if not e["mine"]]
    assert theirs[0]["level"] == 2 and theirs[0]["earner"].endswith("**")
    text = str(data)
    assert "13800000000" not in text and "receiver" not in text and "address" not in text
    stranger = signed_in(app, login_as, make_distributor(make, "外人").user)
    error_of(stranger.get(f"/api/v1/distributor/orders/{number}"), 404, "order_not_found")


def test_api_endpoints_in_the_openapi_document(client, app_ctx):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "/api/v1/distributor/summary" in paths
    assert "/api/v1/distributor/orders/{number}" in paths
    ledger = paths["/api/v1/distributor/ledger"]["get"]
    assert any(p["name"] == "status" for p in ledger["parameters"])


def test_a_withdrawal_is_not_income(make):
    configure(levels=1, level1_bp=1000, settlement_hold_days=7)
    seller = make_distributor(make, "提现")
    finish(pay(place(make, customer_of(make, seller, "顾客"), price_fen=50000)), days_ago=30)
    settle_due()
    db.session.commit()
    before = money_figures(seller.id)
    request_withdrawal(seller, 2000)
    db.session.commit()
    after = money_figures(seller.id)
    assert after.total_fen == before.total_fen == 5000
    assert after.available_fen == before.available_fen - 2000


def test_kept_settled_history_plus_live_entries_equal_the_ledger(make):
    seller = make_distributor(make, "老客")
    now = utcnow()
    long_ago = now - timedelta(days=90)
    factories.ledger_entry(seller.id, 7000, created_at=long_ago, settled_at=long_ago)
    factories.ledger_entry(
        seller.id,
        -2000,
        kind="withdrawal",
        state="withdrawn",
        created_at=long_ago,
        settled_at=long_ago,
    )
    factories.ledger_entry(seller.id, 300, kind="level_1", state="pending")

    def plain() -> tuple[int, int, int]:
        return (
            ledger_sum(seller.id, LedgerEntry.state.in_(("settled", "withdrawn"))),
            ledger_sum(seller.id, LedgerEntry.state == "pending"),
            ledger_sum(
                seller.id, LedgerEntry.state != "reversed", LedgerEntry.kind != "withdrawal"
            ),
        )

    first = ledger_figures(seller.id, now)
    db.session.commit()
    kept = db.session.get(LedgerSettledHistory, seller.id)
    assert kept.through_at == history_through(now) and kept.through_at > long_ago
    assert (kept.available_fen, kept.income_fen) == (5000, 7000)
    through = kept.through_at
    assert (first.available_fen, first.pending_fen, first.total_fen) == plain() == (5000, 300, 7300)
    assert first.withdrawn_fen == 2000
    # Later money is read live next to the kept sums.
    factories.ledger_entry(seller.id, 150)
    factories.ledger_entry(seller.id, -50, kind="withdrawal")
    again = ledger_figures(seller.id, now)
    assert (again.available_fen, again.pending_fen, again.total_fen) == plain() == (5100, 300, 7450)
    # A month on, the kept sums move forward and still add up.
    later = ledger_figures(seller.id, now + timedelta(days=40))
    db.session.commit()
    assert db.session.get(LedgerSettledHistory, seller.id).through_at > through
    assert (later.available_fen, later.pending_fen, later.total_fen) == plain()
