"""An ordering merchant in a real browser (chromium, WeChat's UA, 375x812): an L3 市代
signs in through the stand-in, opens its centre, places an order for a customer at its
level price (SKUs, the customer's name/phone, the province/city/district picker), pays on
the stand-in's cashier, staff ship it, and the merchant sees the tracking number in its
centre. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.accounts.models import User
from app.catalog.models import Sku
from app.cloud.models import MerchantOrder
from app.extensions import db
from app.orders.models import PAID, Order
from app.orders.shipping import ship_order
from tests.support.cloud import differences, levels, merchant
from tests.support.pay import fresh, wait_until


@pytest.mark.browser
def test_l3_merchant_orders_for_a_customer_pays_and_sees_tracking(
    app, make, page, live_server, sandbox, artifacts
):
    from app.cloud.merchants import create_merchant

    levels()
    top = merchant(make, 1, nickname="总代老王")
    middle = merchant(make, 2, top, nickname="省代老李")
    product = make.product(title="手工陶瓷茶杯", price_fen=10000, stock=5)
    sku_id = product.skus[0].id
    base = live_server.url

    # Sign in through the stand-in; not a merchant yet.
    page.goto(f"{base}/merchant")
    page.wait_for_url(f"{sandbox.url}/connect/oauth2/authorize?**")
    page.locator("label.fan", has_text="李雷").click()
    page.locator("button[name=action][value=allow]").click()  # 确认登录 or 允许
    page.wait_for_url(f"{base}/merchant")
    expect(page.get_by_text("你还不是订货商")).to_be_visible()

    # Staff make them an L3 under the L2.
    db.session.rollback()
    user = db.session.scalars(select(User).order_by(User.id.desc())).first()
    low = create_merchant(user.id, 3, middle.id, "staff:1")
    db.session.commit()
    low_id, low_distributor = low.id, low.distributor_id

    page.reload()
    expect(page.locator("[data-level]")).to_have_text("市代（3级）")
    expect(page.locator("[data-parent]")).to_contain_text("省代（2级）")
    page.screenshot(path=str(artifacts / "merchant-centre.png"), full_page=True)

    page.get_by_role("link", name="代客下单").first.click()
    page.wait_for_url(f"{base}/merchant/orders/new")
    # Step 1: pick like a cart; the quantity box appears on the chosen item only.
    row = page.locator(f'[data-sku="{sku_id}"]')
    expect(row).to_contain_text("¥80.00")
    expect(row).to_contain_text("库存 5")
    expect(page.locator("[data-qty]")).to_have_count(0)
    row.locator("[data-pick]").click()
    chosen = page.locator(f'[data-chosen-sku="{sku_id}"] [data-qty]')
    chosen.fill("2")
    chosen.dispatch_event("change")
    expect(page.locator("[data-picked-total]")).to_have_text("¥160.00")
    page.get_by_role("button", name="下一步：填写地址").click()
    # Step 2: the address.
    page.get_by_placeholder("姓名").fill("韩梅梅")
    page.get_by_placeholder("11 位手机号码").fill("13912345678")
    province = page.locator('[data-region="province"]')
    expect(province.locator("option", has_text="广东省")).to_have_count(1)
    province.select_option(label="广东省")
    city = page.locator('[data-region="city"]')
    expect(city.locator("option", has_text="深圳市")).to_have_count(1)
    city.select_option(label="深圳市")
    district = page.locator('[data-region="district"]')
    expect(district.locator("option", has_text="南山区")).to_have_count(1)
    district.select_option(label="南山区")
    page.get_by_placeholder("街道、楼牌号等").fill("科技园南区 8 栋 1201")
    page.screenshot(path=str(artifacts / "merchant-order-address.png"), full_page=True)
    page.get_by_role("button", name="下一步：确认订单").click()
    # Step 3: confirm, the address written the one way (省 市 区 详细).
    expect(page.locator("[data-confirm-address]")).to_have_text(
        "广东省 深圳市 南山区 科技园南区 8 栋 1201"
    )
    expect(page.locator("[data-merchant-total]")).to_have_text("¥160.00")
    page.screenshot(path=str(artifacts / "merchant-order-confirm.png"), full_page=True)
    page.get_by_role("button", name="提交并微信支付").click()

    page.wait_for_url(re.compile(r".*/orders/\d+/pay$"))
    order_id = int(re.search(r"/orders/(\d+)/pay", page.url)[1])
    expect(page.locator(".pay-amount")).to_have_text("¥160.00")  # free shipping over ¥99
    page.get_by_role("button", name="微信支付").click()
    page.wait_for_url(f"{sandbox.url}/sandbox/cashier?**")
    expect(page.locator("[data-amount-fen]")).to_have_attribute("data-amount-fen", "16000")
    page.get_by_role("button", name="支付").click()
    page.wait_for_url(re.compile(rf".*/orders/{order_id}/pay\?pay_result=ok"))
    expect(page.get_by_role("heading", name="支付成功")).to_be_visible(timeout=20_000)

    # The paid follow-up (the worker's job) and headquarters shipping it.
    from jobs.commissions import compute_order_commissions

    wait_until(lambda: fresh(Order, order_id).status == PAID)
    compute_order_commissions(order_id)
    # Two units: L2 earns (¥80 − ¥70) × 2, L1 (¥70 − ¥60) × 2; L3 nothing on its own order.
    assert differences(order_id) == {middle.distributor_id: 2000, top.distributor_id: 2000}
    assert low_distributor not in differences(order_id)
    order = fresh(Order, order_id)
    ship_order(order, "顺丰速运", "SF1234567890", "staff:1")
    db.session.commit()
    assert db.session.get(MerchantOrder, order_id).merchant_id == low_id
    assert fresh(Sku, sku_id).stock == 3

    page.goto(f"{base}/merchant/orders")
    card = page.locator(f'[data-order="{order.number}"]')
    expect(card.locator("[data-status]")).to_have_text("待收货")
    expect(card.locator("[data-tracking]")).to_have_text("顺丰速运 SF1234567890")
    expect(card).to_contain_text("韩梅梅")
    page.screenshot(path=str(artifacts / "merchant-orders-tracking.png"), full_page=True)
