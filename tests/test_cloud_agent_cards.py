"""The agent centre's money pages name amounts for what they are and show one card per
order: 分红明细 puts a 2-line order's two dividends (and a refund's reversal) on one card,
as 佣金明细 does; 区域订单 shows 商品金额 (what dividends are reckoned on) apart from 实付
(goods and shipping as paid)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app import regions
from app.accounts.models import User
from app.cloud import agents as svc
from app.extensions import db
from app.orders.models import Order
from app.orders.services import ItemRequest, place_order
from tests.support.browser import sign_in_on_stand_in
from tests.support.cloud import NANSHAN, assigned, rates
from tests.support.commissions import pay, refund


def two_line_order(make, user=None) -> Order:
    """A paid order to 南山区 of two products, ¥39.90 and ¥30.00: goods ¥69.90, shipping
    ¥10.00 (under the free-shipping line), ¥79.90 paid."""
    user = user or make.user(nickname="周杰")
    where = regions.resolve(NANSHAN)
    address = make.address(
        user,
        province=where.province.name,
        city=where.city.name,
        district=where.district.name,
        district_code=NANSHAN,
        detail="科技园南区 8 栋 1203",
    )
    tea = make.product("高山乌龙茶", price_fen=3990, stock=100)
    cup = make.product("白瓷茶杯", price_fen=3000, stock=100)
    order = place_order(
        user.id, [ItemRequest(tea.skus[0].id, 1), ItemRequest(cup.skus[0].id, 1)], address.id
    )
    db.session.commit()
    assert (order.items_fen, order.shipping_fen, order.total_fen) == (6990, 1000, 7990)
    return pay(order)


def _agent_client(app, login_as, agent):
    client = app.test_client()
    login_as(client, db.session.get(User, agent.user_id))
    return client


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_a_two_line_order_is_one_card_of_dividends(app, make, login_as):
    rates(province=100, city=200, district=300)
    agent = assigned(make, "district", NANSHAN, "南山代理")
    order = two_line_order(make)
    page = _agent_client(app, login_as, agent).get("/agent/dividends").get_data(as_text=True)
    assert page.count(f"订单 {order.number}") == 1
    card = re.search(
        rf'<li class="block d-entry" data-order="{order.number}">(.*?)</li>', page, re.S
    )
    assert card, page
    lines = re.findall(r'data-entry="\d+"', card.group(1))
    assert len(lines) == 2
    text = _text(card.group(1))
    assert "高山乌龙茶" in text and "白瓷茶杯" in text
    assert "+¥1.19" in text and "+¥0.90" in text  # 3% of ¥39.90 and of ¥30.00, floored


def test_a_refund_reversal_joins_its_order_card(app, make, login_as):
    rates(province=100, city=200, district=300)
    agent = assigned(make, "district", NANSHAN, "南山代理")
    order = two_line_order(make)
    refund(order, 1, line_index=1)  # the cup comes back
    page = _agent_client(app, login_as, agent).get("/agent/dividends").get_data(as_text=True)
    assert page.count(f"订单 {order.number}") == 1
    card = re.search(rf'data-order="{order.number}">(.*?)</li>', page, re.S).group(1)
    assert len(re.findall(r'data-entry="\d+"', card)) >= 2
    assert "白瓷茶杯" in _text(card)


def test_region_orders_label_goods_and_paid_amounts(app, make, login_as):
    rates(province=100, city=200, district=300)
    agent = assigned(make, "district", NANSHAN, "南山代理")
    order = two_line_order(make)
    client = _agent_client(app, login_as, agent)
    row = re.search(
        rf'data-order="{order.number}">(.*?)</div>\s*</div>',
        client.get("/agent/orders").get_data(as_text=True),
        re.S,
    )
    text = _text(row.group(1))
    assert "商品金额 ¥69.90" in text and "实付 ¥79.90" in text, text
    assert "实付 ¥69.90" not in text and "已退" not in text
    assert "分红 ¥2.09" in text

    refund(order, 1, line_index=1)
    page = _text(client.get("/agent/orders").get_data(as_text=True))
    assert "商品金额 ¥69.90 · 实付 ¥79.90 · 已退 ¥30.00" in page, page
    (item,) = client.get("/api/v1/agent/orders").get_json()["items"]
    assert (item["items_fen"], item["paid_fen"], item["refunded_fen"]) == (6990, 7990, 3000)
    assert item["amount_fen"] == 3990  # goods less refunds: what dividends are reckoned on


@pytest.mark.browser
def test_agent_money_pages_at_375(app, make, page, live_server, sandbox, artifacts):
    rates(province=100, city=200, district=300)
    base = live_server.url
    page.goto(f"{base}/agent")
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(f"{base}/agent/apply")
    db.session.rollback()
    me = db.session.scalar(select(User).order_by(User.id.desc()))  # who just signed in
    svc.assign_region(me.id, "district", NANSHAN, "staff:1")
    db.session.commit()
    order = two_line_order(make)
    single = two_line_order(make, make.user(nickname="林俊"))
    refund(single, 1, line_index=0)

    page.goto(f"{base}/agent/dividends")
    cards = page.locator("li.d-entry[data-order]")
    expect(cards).to_have_count(2)
    card = page.locator(f"li.d-entry[data-order='{order.number}']")
    expect(card.locator("[data-entry]")).to_have_count(2)
    expect(card.locator("[data-line-title]")).to_have_text(["高山乌龙茶", "白瓷茶杯"])
    refunded = page.locator(f"li.d-entry[data-order='{single.number}']")
    expect(refunded.locator("[data-entry]")).to_have_count(3)  # two lines, one reversal
    assert page.get_by_text(f"订单 {order.number}").count() == 1
    page.screenshot(path=str(artifacts / "agent-dividends-by-order.png"), full_page=True)

    page.goto(f"{base}/agent/orders")
    row = page.locator(f"[data-order='{order.number}']")
    expect(row.locator("[data-amounts]")).to_have_text("商品金额 ¥69.90 · 实付 ¥79.90")
    expect(page.locator(f"[data-order='{single.number}'] [data-refunded]")).to_have_text("¥39.90")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, width
    page.screenshot(path=str(artifacts / "agent-orders-amounts.png"), full_page=True)
