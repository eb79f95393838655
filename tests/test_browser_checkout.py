"""The whole H5 purchase in a real browser (chromium, WeChat's UA, 375x812).

product → pick a SKU → 加入购物车 (signs in through the stand-in's authorize page, which
adds that SKU) → 加入购物车 once more → cart →
checkout → add an address with the province/city/district picker → 提交订单 → pay on the
stand-in's cashier → back on the pay page, which polls until WeChat's signed notice has
marked the order paid → the order page shows 待发货. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.catalog.models import Sku
from app.orders.models import PAID, Order
from tests.support.pay import fresh


@pytest.mark.browser
def test_buy_a_product_and_pay_on_the_stand_in(app, make, page, live_server, sandbox, artifacts):
    product = make.product(
        title="手工陶瓷茶杯", price_fen=3990, stock=5, specs={"颜色": ["青瓷", "白瓷"]}
    )
    product_id = product.id
    white = next(s for s in product.skus if s.specs["颜色"] == "白瓷").id
    base = live_server.url

    page.goto(f"{base}/product/{product_id}")
    page.get_by_role("button", name="白瓷").click()
    page.get_by_role("button", name="加入购物车").click()

    # Not signed in yet: the stand-in's authorize page, then back to the product with the
    # chosen SKU already in the cart (kept across the sign-in by /cart/intent).
    page.wait_for_url(f"{sandbox.url}/connect/oauth2/authorize?**")
    page.locator("label.fan", has_text="李雷").click()
    page.locator("button[name=action][value=allow]").click()  # 确认登录 or 允许
    page.wait_for_url(f"{base}/product/{product_id}")
    expect(page.locator("#toast")).to_have_text("已加入购物车")

    page.get_by_role("button", name="白瓷").click()
    # The toast of the sign-in's add still reads 已加入购物车: wait for this add's answer,
    # or the cart link may be followed before the second unit is in.
    with page.expect_response(
        lambda r: r.url.endswith("/api/v1/cart/items") and r.request.method == "POST"
    ) as added:
        page.get_by_role("button", name="加入购物车").click()
    assert added.value.ok
    expect(page.locator("#toast")).to_have_text("已加入购物车")

    page.get_by_role("link", name="购物车").click()
    page.wait_for_url(f"{base}/cart")
    line = page.locator(f'[data-sku="{white}"]')
    expect(line.locator("[data-cart-qty]")).to_have_value("2")
    expect(page.locator(".ship-tip")).to_contain_text("满¥99包邮")
    expect(page.locator(".paybar-sum")).to_contain_text(
        "¥89.80"
    )  # 79.80 + 10.00 shipping (under ¥99)
    page.screenshot(path=str(artifacts / "checkout-cart.png"), full_page=True)

    page.get_by_role("link", name=re.compile("去结算")).click()
    page.wait_for_url(f"{base}/checkout")
    page.get_by_text("＋ 添加收货地址").click()
    page.wait_for_url(re.compile(r".*/addresses/new\?next="))

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
    page.screenshot(path=str(artifacts / "checkout-address.png"), full_page=True)
    page.get_by_role("button", name="保存").click()

    page.wait_for_url(re.compile(r".*/checkout\?address_id=\d+"))
    expect(page.locator(".addr-pick")).to_contain_text("广东省 深圳市 南山区 科技园南区 8 栋 1201")
    expect(page.locator("[data-total]")).to_have_text("¥89.80")
    page.locator("[data-remark]").fill("请用礼盒包装")
    page.screenshot(path=str(artifacts / "checkout-confirm.png"), full_page=True)
    page.get_by_role("button", name="提交订单").click()

    page.wait_for_url(re.compile(r".*/orders/\d+/pay$"))
    order_id = int(re.search(r"/orders/(\d+)/pay", page.url)[1])
    expect(page.locator(".pay-amount")).to_have_text("¥89.80")
    page.get_by_role("button", name="微信支付").click()

    # The stand-in's cashier (real WeChat would show its pay sheet over the page).
    page.wait_for_url(f"{sandbox.url}/sandbox/cashier?**")
    expect(page.locator("[data-amount-fen]")).to_have_attribute("data-amount-fen", "8980")
    page.get_by_role("button", name="支付").click()

    page.wait_for_url(re.compile(rf".*/orders/{order_id}/pay\?pay_result=ok"))
    expect(page.get_by_role("heading", name="支付成功")).to_be_visible(timeout=20_000)
    expect(page.locator("[data-done-status]")).to_have_text("待发货")

    page.get_by_role("link", name="查看订单").click()
    page.wait_for_url(f"{base}/orders/{order_id}")
    expect(page.locator("[data-status]")).to_have_text("待发货")
    expect(page.locator(".timeline li").first).to_contain_text("微信支付成功")
    page.screenshot(path=str(artifacts / "checkout-order-detail.png"), full_page=True)

    with app.app_context():
        order = fresh(Order, order_id)
        assert order.status == PAID and order.paid_fen == 8980
        assert order.remark == "请用礼盒包装" and order.district_code == "440305"
        assert fresh(Sku, white).stock == 3
