"""Merchant reports: every figure equals a direct SQL sum over the seeded orders, refunds
and ledger; Beijing day, week and month boundaries; CSV exports; charts in a browser."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from app.distribution.distributors import create_distributor
from app.distribution.models import Binding, BindingEvent, OrderAttribution
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.models import Order, OrderLine, Refund
from app.reports import queries
from app.reports.periods import Range, parse_range
from tests.support.admin import fresh_client, login_staff

pytestmark = pytest.mark.postgresql  # report SQL

START, END = date(2025, 3, 1), date(2025, 3, 10)
RNG = Range(START, END, "day")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _order(user_id: int, product, paid_at: datetime | None, amount: int, qty: int = 1) -> Order:
    order = Order(
        number=f"T{paid_at:%m%d%H%M%S}{user_id}{amount}" if paid_at else f"U{user_id}{amount}",
        user_id=user_id,
        status="paid" if paid_at else "pending_payment",
        items_fen=amount,
        total_fen=amount,
        paid_fen=amount if paid_at else 0,
        receiver_name="张三",
        receiver_phone="13800000000",
        province="广东省",
        city="深圳市",
        district="南山区",
        district_code="440305",
        address_detail="科技园1号",
        pay_deadline=(paid_at or utc(2025, 3, 5)) + timedelta(minutes=30),
        created_at=(paid_at or utc(2025, 3, 5)) - timedelta(minutes=5),
        paid_at=paid_at,
    )
    order.lines.append(
        OrderLine(
            product_id=product.id,
            sku_id=product.skus[0].id,
            title=product.title,
            unit_price_fen=amount // qty,
            quantity=qty,
            amount_fen=amount,
        )
    )
    db.session.add(order)
    db.session.flush()
    return order


@pytest.fixture
def seeded(make):
    """Orders paid on different Beijing days (two straddling midnight), a refund, a
    distributor's attributed orders with a ledger of every kind and state, and customers
    from every source."""
    apple = make.product("苹果", price_fen=1000)
    pear = make.product("雪梨", price_fen=500)
    seller = make.user(nickname="小王")
    dist = create_distributor(seller.id, None)
    # Customers: link, qr, staff, natural; one at 23:59:59 Beijing (15:59:59 UTC).
    buyers = [make.user() for _ in range(5)]
    stamps = [
        utc(2025, 3, 1, 15, 59, 59),  # 3-01 23:59:59 Beijing
        utc(2025, 3, 1, 16, 0, 0),  # 3-02 00:00:00 Beijing
        utc(2025, 3, 3, 2),
        utc(2025, 3, 9, 20),  # 3-10 04:00 Beijing
        utc(2025, 2, 20),  # before the range
    ]
    for buyer, stamp in zip(buyers, stamps, strict=True):
        buyer.created_at = stamp
    for buyer, source in ((buyers[0], "link"), (buyers[1], "qr"), (buyers[2], "staff")):
        db.session.add(Binding(user_id=buyer.id, distributor_id=dist.id, source=source))
        db.session.add(
            BindingEvent(user_id=buyer.id, distributor_id=dist.id, action="bind", source=source)
        )
    # buyers[2] was first bound by link and later rebound by staff: the first event counts.
    first = db.session.scalars(
        db.select(BindingEvent).where(BindingEvent.user_id == buyers[2].id)
    ).one()
    first.source = "link"
    db.session.add(
        BindingEvent(user_id=buyers[2].id, distributor_id=dist.id, action="rebind", source="staff")
    )
    db.session.flush()

    o1 = _order(buyers[0].id, apple, utc(2025, 3, 1, 15, 59, 59), 3000, 3)  # 3-01 Beijing
    o2 = _order(buyers[1].id, apple, utc(2025, 3, 1, 16, 0, 0), 2000, 2)  # 3-02 Beijing
    o3 = _order(buyers[2].id, pear, utc(2025, 3, 4, 3), 1500, 3)  # 3-04
    o4 = _order(buyers[3].id, pear, utc(2025, 3, 10, 15, 30), 500)  # 3-10 23:30 Beijing
    _order(buyers[3].id, pear, utc(2025, 3, 10, 16, 0), 700)  # 3-11 Beijing: outside
    _order(buyers[4].id, pear, utc(2025, 2, 28, 15, 59), 900)  # 2-28 23:59: outside
    _order(buyers[4].id, apple, None, 1000)  # never paid
    for order in (o1, o2, o3):
        db.session.add(OrderAttribution(order_id=order.id, level=1, distributor_id=dist.id))
    # A refund of one apple of o1, completed on 3-05 Beijing.
    line = o1.lines[0]
    line.refunded_quantity, line.refunded_fen, o1.refunded_fen = 1, 1000, 1000
    db.session.add(
        Refund(
            order_id=o1.id,
            order_line_id=line.id,
            out_refund_no="R1",
            quantity=1,
            amount_fen=1000,
            reason="坏果",
            status="refunded",
            refunded_at=utc(2025, 3, 5, 1),
        )
    )
    db.session.add(
        Refund(
            order_id=o2.id,
            order_line_id=o2.lines[0].id,
            out_refund_no="R2",
            quantity=1,
            amount_fen=1000,
            reason="不想要",
            status="requested",  # not refunded: not counted
        )
    )

    def entry(kind, amount, state, when, **kw):
        row = LedgerEntry(
            distributor_id=dist.id, kind=kind, amount_fen=amount, state=state, created_at=when, **kw
        )
        db.session.add(row)
        db.session.flush()
        return row

    e1 = entry("level_1", 300, "settled", o1.paid_at, order_id=o1.id, order_line_id=line.id)
    entry("reversal", -100, "settled", utc(2025, 3, 5, 1), reverses_id=e1.id, order_id=o1.id)
    e2 = entry("level_1", 200, "pending", o2.paid_at, order_id=o2.id)
    entry("level_2", 80, "reversed", o2.paid_at, order_id=o2.id)
    entry("region_dividend", 150, "pending", o3.paid_at, order_id=o3.id)
    entry("price_difference", 90, "settled", o3.paid_at, order_id=o3.id)
    entry("task_reward", 500, "pending", utc(2025, 3, 6, 4))
    entry("level_1", 999, "settled", utc(2025, 2, 27))  # outside the range
    w = entry("withdrawal", -250, "withdrawn", utc(2025, 3, 8, 2))
    back = entry("withdrawal", -50, "settled", utc(2025, 3, 8, 3))
    entry("reversal", 50, "settled", utc(2025, 3, 8, 4), reverses_id=back.id)
    db.session.commit()
    return {"dist": dist, "orders": (o1, o2, o3, o4), "e2": e2, "withdrawal": w}


def sql(query: str, **params) -> int:
    """A direct SQL sum; the seeded rows inside the range are picked by id, not by date."""
    return int(db.session.execute(text(query), params).scalar() or 0)


def test_sales_equal_the_orders(seeded):
    ids = tuple(o.id for o in seeded["orders"])
    report = queries.sales(RNG)
    in_range = ",".join(str(i) for i in ids)
    assert report.totals["sales_fen"] == sql(
        f"SELECT sum(paid_fen) FROM orders WHERE id IN ({in_range})"
    )
    assert report.totals["orders"] == 4
    assert report.totals["refunds_fen"] == sql(
        "SELECT sum(amount_fen) FROM refunds WHERE status = 'refunded'"
    )
    assert report.totals["avg_fen"] == 7000 // 4
    assert report.totals["net_fen"] == 7000 - 1000
    by_day = {r["period"]: r for r in report.rows}
    assert len(report.rows) == 10  # every day of the range, empty ones as zeros
    # The Beijing midnight boundary: 15:59:59 UTC is 3-01, 16:00:00 UTC is 3-02.
    assert by_day["2025-03-01"]["sales_fen"] == 3000
    assert by_day["2025-03-02"]["sales_fen"] == 2000
    assert by_day["2025-03-10"]["sales_fen"] == 500  # 23:30 Beijing, still the 10th
    assert by_day["2025-03-05"]["refunds_fen"] == 1000
    assert by_day["2025-03-03"] == {
        "period": "2025-03-03",
        "orders": 0,
        "sales_fen": 0,
        "refunds_fen": 0,
        "avg_fen": 0,
        "net_fen": 0,
    }


def test_commission_equals_the_ledger(seeded):
    report = queries.commission(RNG)
    t = report.totals
    level = "('level_1', 'level_2', 'level_3')"
    base = (
        "SELECT sum(e.amount_fen) FROM ledger_entries e "
        "LEFT JOIN ledger_entries o ON o.id = e.reverses_id "
        "WHERE coalesce(o.kind, e.kind) IN {kinds} AND e.state IN {states} "
        "AND e.amount_fen != 999"  # the one entry outside the range
    )
    settled, pending = "('settled', 'withdrawn')", "('pending')"
    dividend = "('region_dividend', 'price_difference')"
    reward = "('task_reward', 'invite_reward')"
    assert t["commission_settled_fen"] == sql(base.format(kinds=level, states=settled))
    assert t["commission_settled_fen"] == 300 - 100
    assert t["commission_pending_fen"] == sql(base.format(kinds=level, states=pending)) == 200
    assert t["dividend_settled_fen"] == sql(base.format(kinds=dividend, states=settled)) == 90
    assert t["dividend_pending_fen"] == sql(base.format(kinds=dividend, states=pending)) == 150
    assert t["reward_pending_fen"] == sql(base.format(kinds=reward, states=pending)) == 500
    assert t["withdrawn_fen"] == -sql(
        "SELECT sum(amount_fen) FROM ledger_entries WHERE kind = 'withdrawal' "
        "AND state = 'withdrawn'"
    )
    by_day = {r["period"]: r for r in report.rows}
    assert by_day["2025-03-01"]["commission_settled_fen"] == 300
    assert by_day["2025-03-05"]["commission_settled_fen"] == -100  # the refund's reversal
    assert by_day["2025-03-08"]["withdrawn_fen"] == 250


def test_share_customers_and_top_lists(seeded):
    share = queries.distribution_share(RNG).totals
    assert share["dist_fen"] == sql(
        "SELECT sum(o.paid_fen) FROM orders o JOIN order_attributions a "
        "ON a.order_id = o.id AND a.level = 1"
    )
    assert share["natural_fen"] == 500 and share["natural_orders"] == 1
    assert share["share_pct"] == round(6500 * 100 / 7000, 1)

    customers = queries.new_customers(RNG)
    by_day = {r["period"]: r for r in customers.rows}
    assert by_day["2025-03-01"]["link"] == 1
    assert by_day["2025-03-02"]["qr"] == 1
    assert by_day["2025-03-03"]["link"] == 1  # first bound by link, later rebound by staff
    assert by_day["2025-03-10"]["natural"] == 1
    # The seller registered "now", outside the range; the buyer of 2-20 too.
    assert customers.totals["total"] == 4

    products = queries.top_products(RNG).rows
    assert [(p["title"], p["amount_fen"], p["quantity"]) for p in products] == [
        ("苹果", 3000 - 1000 + 2000, 3 - 1 + 2),
        ("雪梨", 2000, 4),
    ]
    top = queries.top_distributors(RNG).rows
    assert len(top) == 1
    assert top[0]["sales_fen"] == 6500 and top[0]["orders"] == 3
    assert top[0]["name"].startswith("小王")
    # Earnings net of the refund's reversal, not counting reversed lines or withdrawals.
    assert top[0]["earned_fen"] == 300 - 100 + 200 + 150 + 90 + 500


def test_weeks_and_months_start_on_beijing_monday_and_first(seeded):
    weeks = queries.sales(Range(START, END, "week"))
    assert [r["period"] for r in weeks.rows] == ["2025-02-24", "2025-03-03", "2025-03-10"]
    # 2-24 week holds only 3-01 and 3-02 (the range starts on 3-01).
    assert [r["sales_fen"] for r in weeks.rows] == [5000, 1500, 500]
    months = queries.sales(Range(date(2025, 2, 1), date(2025, 3, 31), "month"))
    assert [(r["period"], r["sales_fen"]) for r in months.rows] == [
        ("2025-02-01", 900),
        ("2025-03-01", 7000 + 700),
    ]


def test_parse_range_defaults_and_refusals():
    today = date(2025, 3, 31)
    rng, error = parse_range({}, today)
    assert error is None and rng == Range(date(2025, 3, 2), today, "day")
    for args, message in (
        ({"grain": "year"}, "粒度"),
        ({"from": "2025-13-01"}, "日期格式"),
        ({"from": "2025-03-10", "to": "2025-03-01"}, "早于"),
        ({"from": "2019-01-01", "to": "2025-03-01"}, "三年"),
    ):
        rng, error = parse_range(args, today)
        assert message in error and rng.grain == "day"


@pytest.fixture
def owner_client(app, make):
    client = fresh_client(app)
    owner = make.staff("boss", role="owner")
    login_staff(client, owner)
    return client


ARGS = "from=2025-03-01&to=2025-03-10&grain=day"


def test_reports_page_shows_every_report(seeded, owner_client):
    response = owner_client.get(f"/admin/reports?{ARGS}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for title in ("销售额与订单", "佣金与分红", "分销带来的销售占比", "新增客户来源", "热销商品"):
        assert title in page
    assert page.count("<svg") >= 7
    assert "¥70.00" in page  # sales total
    bad = owner_client.get("/admin/reports?from=nope")
    assert bad.status_code == 422 and "日期格式" in bad.get_data(as_text=True)


@pytest.mark.parametrize("key", list(queries.REPORTS))
def test_csv_exports(seeded, owner_client, key):
    response = owner_client.get(f"/admin/reports/export?report={key}&{ARGS}")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert f"report-{key}-20250301-20250310-day.csv" in response.headers["Content-Disposition"]
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body[1:])))
    report = queries.REPORTS[key](RNG)
    assert rows[0] == [c.label for c in report.columns]
    assert len(rows) == 1 + len(report.rows) + (1 if report.totals else 0)
    if key == "sales":
        assert rows[-1][:2] == ["合计", "70.00"]


def test_csv_cells_are_formula_safe(make, owner_client):
    product = make.product("=HYPERLINK(1)")
    buyer = make.user()
    _order(buyer.id, product, utc(2025, 3, 2), 100)
    db.session.commit()
    body = owner_client.get(f"/admin/reports/export?report=products&{ARGS}").get_data(as_text=True)
    assert "'=HYPERLINK(1)" in body


def test_unknown_export_is_404_and_bad_range_goes_back(owner_client):
    assert owner_client.get("/admin/reports/export?report=nope").status_code == 404
    response = owner_client.get("/admin/reports/export?report=sales&grain=year")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/reports")


def test_charts_render_in_the_browser(seeded, app, browser, live_server, artifacts):
    from tests.support import factories

    owner = factories.staff("viewer", role="owner")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login")
    page.fill("input[name=username]", owner.username)
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/admin/reports?{ARGS}")
    page.wait_for_selector("#report-sales svg")
    charts = page.locator(".report-chart svg")
    assert charts.count() >= 7
    box = charts.first.bounding_box()
    assert box and box["width"] > 600 and box["height"] > 150
    assert page.locator("#report-sales rect").count() >= 10
    page.screenshot(path=str(artifacts / "admin-reports.png"), full_page=False)
    page.locator("#report-products").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "admin-reports-products.png"), full_page=False)
    context.close()
