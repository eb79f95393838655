"""The agent centre in a real browser (375 px, WeChat's user agent) and the admin region
table (1366 px): a fan signs in, applies for 南山区 with the province/city/district picker,
staff approve it, an order shipped there is paid, and the centre shows the dividend.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.cloud import agents as svc
from app.cloud.models import RegionAgent
from app.extensions import db
from tests.support.browser import sign_in_on_stand_in
from tests.support.cloud import FUTIAN, GUANGDONG, NANSHAN, SHENZHEN, assigned, order_to, rates
from tests.support.commissions import finish, pay


@pytest.mark.browser
def test_apply_with_the_picker_then_see_orders_and_dividends(
    app, make, browser, page, live_server, sandbox, artifacts
):
    rates(province=100, city=200, district=300)
    assigned(make, "city", SHENZHEN, "深圳市代理")
    base = live_server.url

    page.goto(f"{base}/agent")
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(f"{base}/agent/apply")
    page.get_by_text("区县代理").click()
    page.locator("[data-pick=province]").select_option(GUANGDONG)
    expect(page.locator("[data-pick=city]")).to_be_visible()
    page.locator("[data-pick=city]").select_option(SHENZHEN)
    expect(page.locator("[data-pick=district]")).to_be_visible()
    page.locator("[data-pick=district]").select_option(NANSHAN)
    expect(page.locator("[data-chosen]")).to_have_text("已选择：广东省 深圳市 南山区")
    page.screenshot(path=str(artifacts / "agent-apply.png"), full_page=True)
    # The city level is taken: choosing it shows the city's code, and the server refuses.
    page.get_by_text("市级代理").click()
    page.get_by_role("button", name="提交申请").click()
    expect(page.locator(".d-note.err")).to_have_text(svc.TAKEN_MESSAGE)
    assert "深圳市代理" not in page.content()  # who holds it stays hidden

    page.get_by_text("区县代理").click()
    page.locator("[data-pick=province]").select_option(GUANGDONG)
    page.locator("[data-pick=city]").select_option(SHENZHEN)
    page.locator("[data-pick=district]").select_option(NANSHAN)
    page.get_by_role("button", name="提交申请").click()
    page.wait_for_url(re.compile(r".*/agent\?done=applied"))
    expect(page.locator("[data-region='440305']")).to_have_attribute("data-status", "pending")

    # Staff approve; a customer's order shipped to 南山区 is paid; another goes to 福田区.
    db.session.rollback()
    agent = db.session.scalar(select(RegionAgent).where(RegionAgent.region_code == NANSHAN))
    svc.approve(agent, "staff:1")
    db.session.commit()
    shipped = pay(order_to(make, NANSHAN, price_fen=12800, user=make.user(nickname="周杰")))
    finish(shipped)
    pay(order_to(make, NANSHAN, price_fen=5990, quantity=2, user=make.user(nickname="林俊")))
    pay(order_to(make, FUTIAN, price_fen=9900, user=make.user(nickname="陈奕")))

    page.goto(f"{base}/agent")
    expect(page.locator("[data-region='440305']")).to_have_attribute("data-status", "active")
    expect(page.locator("[data-pending]")).to_have_text("¥7.43")  # 384 + 359 fen
    expect(page.locator("[data-sales]")).to_have_text("¥247.80")
    page.screenshot(path=str(artifacts / "agent-centre.png"), full_page=True)

    page.get_by_role("link", name=re.compile("区域订单")).click()
    page.wait_for_url(f"{base}/agent/orders")
    expect(page.locator("[data-order]")).to_have_count(2)
    expect(page.locator("[data-order]", has_text="周**")).to_contain_text("SF1234567890")
    assert "陈" not in page.content()  # 福田区 is not mine
    page.screenshot(path=str(artifacts / "agent-orders.png"), full_page=True)

    page.goto(f"{base}/agent/dividends")
    expect(page.locator("[data-entry]")).to_have_count(2)
    expect(page.locator("[data-reason]").first).to_be_visible()
    page.screenshot(path=str(artifacts / "agent-dividends.png"), full_page=True)


@pytest.mark.browser
def test_admin_region_table(app, make, browser, live_server, artifacts):
    rates()
    assigned(make, "province", GUANGDONG, "粤省代理")
    assigned(make, "city", SHENZHEN, "深圳市代理")
    assigned(make, "district", NANSHAN, "南山区代理")
    svc.apply_for_region(make.user(nickname="申请人").id, "district", FUTIAN)
    db.session.commit()
    pay(order_to(make, NANSHAN, price_fen=12800))
    pay(order_to(make, FUTIAN, price_fen=9900))
    pay(order_to(make, "110105", price_fen=45600))  # 北京 朝阳区: sales, no agent
    make.staff("boss", password="boss-password", role="owner")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    desk = context.new_page()
    try:
        desk.goto(f"{live_server.url}/admin/agents")
        desk.fill("#username", "boss")
        desk.fill("#password", "boss-password")
        desk.get_by_role("button", name="登录").click()
        desk.wait_for_url(f"{live_server.url}/admin/agents")
        table = desk.locator("[data-agents-table]")
        expect(table.locator("tr[data-region]")).to_have_count(7)
        expect(table.locator("tr[data-region='440300']")).to_contain_text("¥227.00")
        expect(table.locator("tr[data-region='440304']")).to_contain_text("审核中")
        desk.screenshot(path=str(artifacts / "admin-agents.png"), full_page=True)
    finally:
        context.close()
