"""Coupons in a real browser at 375 px: claim two coupons in the centre, then checkout
picks the better one by default; the placed order carries it. Screenshots go to
test-artifacts/ (coupons-*.png)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.orders.models import Order
from tests.support.browser import sign_in_on_stand_in
from tests.support.coupons import template
from tests.support.orders import make_address
from tests.support.pay import fresh


@pytest.mark.browser
def test_claim_then_checkout_with_the_best_coupon(app, make, page, live_server, sandbox, artifacts):
    product = make.product(title="青瓷茶具套装", price_fen=15800, stock=5)
    sku_id, product_id = product.skus[0].id, product.id
    template(name="满100减10", off_fen=1000)
    template(name="满150减30", threshold_fen=15000, off_fen=3000)
    base = live_server.url

    page.set_viewport_size({"width": 375, "height": 812})
    page.goto(f"{base}/coupons/mine")
    sign_in_on_stand_in(page, sandbox, "李雷")
    page.wait_for_url(f"{base}/coupons/mine")
    expect(page.locator(".empty-title")).to_have_text("还没有优惠券")

    page.goto(f"{base}/product/{product_id}")
    page.locator("[data-coupon-link]").click()
    page.wait_for_url(f"{base}/coupons?product_id={product_id}")
    for name in ("满100减10", "满150减30"):
        card = page.locator(".coupon", has_text=name)
        card.get_by_role("button", name="立即领取").click()
        expect(card.get_by_role("button")).to_have_text("已领取")
    page.screenshot(path=str(artifacts / "coupons-centre.png"), full_page=True)

    # The customer the stand-in's sign-in created (the only one in this test).
    user_id = db.session.scalar(select(User.id).order_by(User.id.desc()).limit(1))
    make_address(user_id)
    page.goto(f"{base}/checkout?sku_id={sku_id}&quantity=1")
    select_box = page.locator("[data-coupon-select]")
    expect(select_box.locator("option:checked")).to_have_text(re.compile("满150减30"))
    expect(page.locator("[data-coupon-off]")).to_have_text("-¥30.00")
    expect(page.locator("[data-total]")).to_have_text("¥128.00")  # 158 - 30, free shipping
    page.screenshot(path=str(artifacts / "coupons-checkout.png"), full_page=True)

    select_box.select_option(label="不使用优惠券")
    page.wait_for_url(re.compile(r".*coupon=0"))
    expect(page.locator("[data-total]")).to_have_text("¥158.00")
    page.locator("[data-coupon-select]").select_option(index=0)  # best first
    expect(page.locator("[data-total]")).to_have_text("¥128.00")

    page.get_by_role("button", name="提交订单").click()
    page.wait_for_url(re.compile(r".*/orders/\d+/pay"))
    order_id = int(re.search(r"/orders/(\d+)/pay", page.url).group(1))
    order = fresh(Order, order_id)
    assert (order.coupon_fen, order.total_fen) == (3000, 12800)
    page.goto(f"{base}/coupons/mine")
    expect(page.locator(".coupon.off", has_text="满150减30")).to_contain_text("已使用")
    page.screenshot(path=str(artifacts / "coupons-mine.png"), full_page=True)
