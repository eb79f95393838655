"""The promotion funnel in a real browser at 375 px with WeChat's user agent.

A friend opens a distributor's product link a few times on their phone (anonymous at
first, so the shop gives them a visitor cookie), signs in on the WeChat stand-in (the
visit moves to them and they are bound), then scans the distributor's QR code in WeChat
(the same person: still one visit) and pays an order. The distributor's 推广效果 page
then reads 1 → 1 → 1 with the sales and the level-1 commission, per day and per product;
the merchant sees the same in the admin. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.accounts.models import User
from app.extensions import db
from tests.support import wechat as wx
from tests.support.admin import login_staff
from tests.support.browser import sign_in_on_stand_in
from tests.support.commissions import configure, distributor, pay, place
from tests.support.servers import WECHAT_UA


def _session_cookie(app, login_as, person) -> str:
    client = app.test_client()
    login_as(client, person)
    return client.get_cookie("session").value


@pytest.mark.browser
def test_funnel_after_visits_a_scan_a_binding_and_a_paid_order(
    app, make, browser, page, desk, live_server, sandbox, artifacts, login_as
):
    configure(level1_bp=1000)
    seller = distributor(make, nickname="推广达人")
    cup = make.product(title="手工陶瓷茶杯", price_fen=3990, stock=5)
    base, code, cup_id = live_server.url, seller.code, cup.id
    share = f"{base}/product/{cup_id}?ref={code}"

    # The distributor's own phone: an empty funnel first.
    cookie = _session_cookie(app, login_as, seller.user)
    page.context.add_cookies([{"name": "session", "value": cookie, "url": base}])
    page.goto(f"{base}/distributor")
    page.get_by_role("link", name="推广效果").click()
    page.wait_for_url(f"{base}/distributor/funnel")
    expect(page.locator(".empty-title")).to_have_text("还没有推广数据")
    page.screenshot(path=str(artifacts / "funnel-empty.png"), full_page=True)

    # The friend's phone: scripted visits, anonymous, then signed in through WeChat.
    friend_context = browser.new_context(
        user_agent=WECHAT_UA,
        viewport={"width": 375, "height": 812},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    friend_context.set_default_timeout(10_000)
    friend = friend_context.new_page()
    try:
        friend.goto(share)
        friend.reload()
        friend.goto(f"{base}/?ref={code}")
        friend.goto(share)
        assert any(c["name"] == "fv" for c in friend_context.cookies())
        friend.get_by_role("button", name="加入购物车").click()
        sign_in_on_stand_in(friend, sandbox, "李雷")
        friend.wait_for_url(re.compile(rf".*/product/{cup_id}.*"))
        friend.goto(share)
    finally:
        friend_context.close()

    db.session.rollback()
    # The friend's account, made by the sign-in (snsapi_base: no nickname yet).
    fan = db.session.scalar(db.select(User).order_by(User.id.desc()))
    assert fan.id != seller.user_id
    # The same friend scans the distributor's QR code in WeChat: one visit still.
    wx.reply(wx.post(base, wx.scan(fan.openid, f"d:{code}")))
    # ... and pays an order (the payment notice's work and the commission job).
    pay(place(make, fan, product=db.session.get(type(cup), cup_id)))

    page.reload()
    expect(page.locator("[data-funnel-visits]")).to_have_text("1")
    expect(page.locator("[data-funnel-bindings]")).to_have_text("1")
    expect(page.locator("[data-funnel-orders]")).to_have_text("1")
    expect(page.locator("[data-funnel-sales]")).to_have_text("¥39.90")
    expect(page.locator("[data-funnel-commission]")).to_have_text("¥3.99")
    product_row = page.locator(f'[data-funnel-products] tr[data-product="{cup_id}"]')
    expect(product_row).to_contain_text("手工陶瓷茶杯")
    expect(product_row).to_contain_text("¥3.99")
    expect(page.locator(".report-chart > svg")).to_have_count(2)
    page.screenshot(path=str(artifacts / "funnel-centre-7.png"), full_page=True)
    # Nothing wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.get_by_role("link", name="近 30 天").click()
    page.wait_for_url(f"{base}/distributor/funnel?days=30")
    expect(page.locator("[data-funnel-days] tbody tr")).to_have_count(30)
    page.screenshot(path=str(artifacts / "funnel-centre-30.png"), full_page=True)
    page.goto(f"{base}/distributor")
    page.screenshot(path=str(artifacts / "funnel-centre-menu.png"), full_page=True)

    # The merchant: the same funnel for the whole shop and for this distributor.
    staff_client = app.test_client()
    login_staff(staff_client, make.staff())
    desk.context.add_cookies(
        [{"name": "session", "value": staff_client.get_cookie("session").value, "url": base}]
    )
    desk.goto(f"{base}/admin/distribution/funnel")
    expect(desk.locator("[data-funnel-who]")).to_have_text("全店")
    expect(desk.locator("[data-funnel-orders]")).to_have_text("1")
    expect(desk.locator("[data-funnel-ranking] tbody tr")).to_have_count(1)
    desk.screenshot(path=str(artifacts / "funnel-admin-shop.png"), full_page=True)
    desk.get_by_placeholder("分销员昵称 / 推广码 / 编号").fill("推广达人")
    desk.get_by_role("button", name="查找分销员").click()
    desk.locator("[data-funnel-matches]").get_by_role("link", name=re.compile("推广达人")).click()
    expect(desk.locator("[data-funnel-who]")).to_contain_text("推广达人")
    expect(desk.locator("[data-funnel-visits]")).to_have_text("1")
    expect(desk.locator("[data-funnel-commission]")).to_have_text("¥3.99")
    desk.screenshot(path=str(artifacts / "funnel-admin.png"), full_page=True)
    with desk.expect_download() as download:
        desk.get_by_role("link", name="导出 CSV").click()
    assert download.value.suggested_filename.startswith(f"funnel-d{seller.id}-")
