"""Browser tests: the distributor centre's 专属优惠券 at 375 px (the distributor's link, its
QR code and 复制链接; a friend opens the link, claims and is bound), and the admin coupon
pages at 1366 px. Screenshots go to test-artifacts/ (coupons-distributor-*.png,
admin-coupons-*.png)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.accounts.models import User
from app.distribution.binding import current_binding
from app.distribution.distributors import create_distributor
from app.extensions import db
from tests.support import commissions as c
from tests.support import factories
from tests.support.browser import sign_in_on_stand_in, wait_until
from tests.support.coupons import template
from tests.support.servers import WECHAT_UA

pytestmark = pytest.mark.browser


def newest_user_id() -> int:
    db.session.rollback()
    return db.session.scalar(select(User.id).order_by(User.id.desc()).limit(1))


def test_distributor_shares_an_exclusive_coupon_at_375(
    app, make, browser, page, live_server, sandbox, artifacts
):
    c.configure()
    t = template(name="新客专属满减", distributor_only=True, stock=50)
    template(name="人人可领券")
    base = live_server.url

    page.goto(f"{base}/distributor")
    sign_in_on_stand_in(page, sandbox, "李雷")
    page.wait_for_url(f"{base}/distributor")
    seller = create_distributor(newest_user_id(), None)
    db.session.commit()
    code = seller.code

    page.goto(f"{base}/distributor")
    page.get_by_role("link", name="专属优惠券").click()
    page.wait_for_url(f"{base}/distributor/coupons")
    card = page.locator(f"[data-exclusive='{t.id}']")
    expect(card).to_contain_text("新客专属满减")
    expect(card).to_contain_text("满 ¥100.00 减 ¥20.00")
    expect(card.locator("[data-left]")).to_have_text("剩 50 张")
    expect(page.locator("[data-exclusive]")).to_have_count(1)  # not the public coupon
    link_text = card.locator("[data-coupon-url]")
    expect(link_text).to_have_text(re.compile(rf"/coupons/{t.id}\?d={code}$"))
    qr = card.locator("[data-qr] svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 100 and box["height"] >= 100
    whole = card.bounding_box()
    assert whole is not None and whole["x"] >= 0 and whole["x"] + whole["width"] <= 375
    # The WeChat share card is the coupon's link as it is: no ?ref= added (the claim binds).
    wait_until(page, "window.__shareData && window.__shareData.link")
    card_link = page.evaluate("window.__shareData.link")
    assert card_link.endswith(f"/coupons/{t.id}?d={code}") and "ref=" not in card_link
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    card.get_by_role("button", name="复制链接").click()
    expect(page.locator("#toast")).to_have_text("已复制")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.endswith(f"/coupons/{t.id}?d={code}")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts / "coupons-distributor-375.png"), full_page=True)

    # A friend on another phone opens the link, claims, and is bound to the distributor.
    friend_context = browser.new_context(
        user_agent=WECHAT_UA,
        viewport={"width": 375, "height": 812},
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    try:
        friend = friend_context.new_page()
        friend.goto(f"{base}/coupons/mine")
        sign_in_on_stand_in(friend, sandbox, "韩梅梅")
        friend.wait_for_url(f"{base}/coupons/mine")
        friend_id = newest_user_id()
        friend.goto(copied.replace(copied[: copied.index("/coupons/")], base))
        expect(friend.locator(".coupon-for")).to_contain_text("送你一张优惠券")
        friend.get_by_role("button", name="立即领取").click()
        expect(friend.locator(f"[data-coupon-card='{t.id}']")).to_contain_text("已领取")
        friend.screenshot(path=str(artifacts / "coupons-distributor-claimed-375.png"))
    finally:
        friend_context.close()
    db.session.rollback()
    assert current_binding(friend_id).distributor_id == seller.id

    page.reload()
    expect(card.locator("[data-left]")).to_have_text("剩 49 张")


def test_admin_coupon_pages_at_1366(app, desk, live_server, artifacts):
    with app.app_context():
        factories.staff("coupon-clerk", password="clerk-password")
        factories.user(nickname="王小明")
        factories.product("青瓷茶具套装", price_fen=15800)
        t = template(name="店庆满100减20", stock=200)
        template(
            name="分销员专属8折", kind="percent_off", off_fen=0, off_bp=2000, distributor_only=True
        )
        coupon_id = t.id
    base = live_server.url
    desk.goto(f"{base}/admin/coupons")
    desk.fill("#username", "coupon-clerk")
    desk.fill("#password", "clerk-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/coupons")
    expect(desk.get_by_text("店庆满100减20")).to_be_visible()
    desk.screenshot(path=str(artifacts / "admin-coupons-list-1366.png"), full_page=True)
    width = desk.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366

    desk.goto(f"{base}/admin/coupons/new")
    expect(desk.locator("input[name=name]")).to_be_visible()
    desk.screenshot(path=str(artifacts / "admin-coupons-new-1366.png"), full_page=True)
    assert desk.evaluate("document.documentElement.scrollWidth") <= 1366

    desk.goto(f"{base}/admin/coupons/{coupon_id}/issue")
    expect(desk.get_by_text("店庆满100减20").first).to_be_visible()
    desk.fill("input[name=q]", "王小明")
    desk.get_by_role("button", name="搜索").first.click()
    expect(desk.locator("[data-issue-people]")).to_contain_text("王小明")
    desk.screenshot(path=str(artifacts / "admin-coupons-issue-1366.png"), full_page=True)
    assert desk.evaluate("document.documentElement.scrollWidth") <= 1366
