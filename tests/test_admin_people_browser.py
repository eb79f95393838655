"""Issue 17 in a real browser at 1366 px: pick people by name (manual binding, the
simulator's chain, 指定代理's region), and the screens staff read (customers, an order's
attribution, the audit log, reports with the sidebar staying put, forms, message log)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core.audit import record
from app.distribution.models import Binding
from app.extensions import db
from app.wechat.models import OutboundMessage
from tests.support.browser import wait_until
from tests.support.commissions import chain, configure, customer_of, pay, place, refund
from tests.support.factories import address

pytestmark = pytest.mark.browser


def _sign_in(browser, live_server, owner):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login")
    page.fill("input[name=username]", owner.username)
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/**")
    return context, page


def _pick(page, aria: str, typed: str, expected: str) -> None:
    """Type into the picker labelled ``aria`` and choose the hit labelled ``expected``."""
    box = page.locator(f"[data-picker] input[type=search][aria-label='{aria}']")
    box.fill(typed)
    hit = page.locator(".picker-item", has_text=expected)
    hit.first.wait_for(state="visible")
    hit.first.click()
    assert box.input_value() == expected


def test_pickers_and_admin_screens(app, browser, live_server, make, artifacts):
    configure(levels=2)
    seller, parent = chain(make, 2)
    seller.user.nickname = "演示·小美"
    parent.user.nickname = "演示·大刘"
    db.session.commit()
    buyer = customer_of(make, seller, nickname="常客老王")
    order = pay(place(make, buyer, price_fen=12800))
    pay(place(make, buyer, price_fen=3000))
    refund(order, 1)
    address(buyer, phone="13687654321", is_default=True)
    loose = make.user(nickname="待绑定的新客")
    sku = make.product("有机红茶 250g", price_fen=8800, stock=50).skus[0]
    owner = make.staff("boss", role="owner")
    record(
        f"staff:{owner.id}",
        "distribution_settings.update",
        "distribution_settings",
        1,
        {"level1_bp": 1000, "self_purchase": False},
        {"level1_bp": 1200, "self_purchase": True},
    )
    db.session.add(OutboundMessage(dedupe_key="b:1", kind="order_paid", openid=buyer.openid))
    db.session.commit()
    context, page = _sign_in(browser, live_server, owner)

    # 手动绑定: both people picked by name; the form posts their ids.
    page.goto(f"{live_server.url}/admin/distribution/bindings")
    _pick(page, "客户", "待绑定", "待绑定的新客（顾客）")
    _pick(page, "分销员", "小美", "演示·小美（分销员）")
    page.screenshot(path=str(artifacts / "admin17-binding-picker.png"))
    page.click("#rebind button[type=submit]")
    page.wait_for_selector(".alert-success")
    db.session.expire_all()
    bound = db.session.scalar(select(Binding).where(Binding.user_id == loose.id))
    assert bound is not None and bound.distributor_id == seller.id

    # The simulator: a chain of two picked by name, the result names them.
    page.goto(f"{live_server.url}/admin/distribution/simulator")
    page.select_option("select[name=sku_id]", str(sku.id))
    page.check("input[name=who][value=chain]")
    _pick(page, "一级分销员", "大刘", "演示·大刘（分销员）")
    _pick(page, "二级分销员", "小美", "演示·小美（分销员）")
    page.select_option("[data-region-picker] select[data-pick=province]", "440000")
    page.select_option("[data-region-picker] select[data-pick=city]", "440300")
    page.select_option("[data-region-picker] select[data-pick=district]", "440305")
    page.click("button:has-text('计算佣金')")
    page.wait_for_selector(".sim-table")
    rows = page.locator(".sim-table tbody tr").all_inner_texts()
    assert "演示·大刘（分销员）" in rows[0] and "演示·小美（分销员）" in rows[1]
    # After the submit the pickers show whom they hold, the region picker its district.
    assert page.locator("input[aria-label=一级分销员]").input_value() == "演示·大刘（分销员）"
    assert page.locator("[data-region-name]").inner_text() == "广东省 深圳市 南山区"
    page.screenshot(path=str(artifacts / "admin17-simulator.png"), full_page=True)

    # 指定代理: the region picker fills the code; 添加订货商 and 邀请奖励 forms.
    page.goto(f"{live_server.url}/admin/agents")
    page.select_option("[data-region-picker] select[data-pick=province]", "440000")
    page.select_option("[data-region-picker] select[data-pick=city]", "440300")
    assert page.locator("input[name=region_code]").input_value() == "440300"
    page.locator("[data-assign]").screenshot(path=str(artifacts / "admin17-agent-assign.png"))
    page.goto(f"{live_server.url}/admin/cloud/merchants")
    page.locator("#merchant-create").screenshot(path=str(artifacts / "admin17-merchant-form.png"))
    page.goto(f"{live_server.url}/admin/incentives/tasks")
    form = page.locator("#incentive-settings")
    form.screenshot(path=str(artifacts / "admin17-incentive-form.png"))

    # Customers, one customer, the order's attribution and earnings.
    page.goto(f"{live_server.url}/admin/customers")
    page.fill("input[name=q]", "87654321")
    page.click(".filters button[type=submit]")
    assert page.locator(".customers-table tbody tr").count() == 1
    page.screenshot(path=str(artifacts / "admin17-customers.png"))
    page.click("a:has-text('常客老王')")
    page.wait_for_selector("#refunds")
    assert "已退款" in page.locator("#refunds").inner_text()
    page.screenshot(path=str(artifacts / "admin17-customer.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/orders/{order.id}")
    chain_text = page.locator("#attribution").inner_text()
    assert "一级：演示·小美" in chain_text and "二级：演示·大刘" in chain_text
    assert "已失效" in chain_text  # the full refund took the commission back
    page.locator("#attribution").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "admin17-order.png"))

    # The audit log and the message log read names.
    page.goto(f"{live_server.url}/admin/audit")
    audit = page.locator(".audit-table").inner_text()
    assert "boss（店主）" in audit and "一级比例" in audit and "12%" in audit
    page.screenshot(path=str(artifacts / "admin17-audit.png"))
    page.goto(f"{live_server.url}/admin/wechat/messages")
    who = page.locator("td a.has-tip", has_text="常客老王（顾客）")
    assert who.get_attribute("title") == f"openid：{buyer.openid}"
    page.screenshot(path=str(artifacts / "admin17-messages.png"))

    # Reports: figures first; the sidebar stays in view as the page scrolls.
    page.goto(f"{live_server.url}/admin/reports")
    page.screenshot(path=str(artifacts / "admin17-reports.png"))
    page.mouse.wheel(0, 2500)
    wait_until(page, "window.scrollY > 500")
    box = page.locator(".sidebar").bounding_box()
    assert box is not None and 0 <= box["y"] <= 60
    page.screenshot(path=str(artifacts / "admin17-reports-scrolled.png"))
    context.close()
