"""The product page of a limited, sold-out product in "WeChat" (Debian chromium, 375x812):
限购 and 已达限购 for the signed-in customer, and the note that unpaid orders hold the stock."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.orders.services import get_settings
from tests.support.pay import address_for

pytestmark = pytest.mark.browser


def test_limited_product_sold_out_to_unpaid_orders(
    app, make, page, live_server, login_as, artifacts
):
    product = make.product(title="限量手作茶饼", stock=2, price_fen=6800)
    product.purchase_limit = 2
    db.session.commit()
    fan = make.user(nickname="小红")
    address_id = address_for(fan).id
    # Sign in the way the session would after OAuth: copy a signed session cookie.
    client = app.test_client()
    login_as(client, fan)
    cookie = client.get_cookie("session")
    page.context.add_cookies([{"name": "session", "value": cookie.value, "url": live_server.url}])

    url = f"{live_server.url}/product/{product.id}"
    page.goto(url)
    limit = page.locator("[data-limit]")
    expect(limit).to_have_text("限购 2 件")
    expect(page.locator("[data-stock]")).to_have_text("库存 2 件")
    page.locator("[data-plus]").click()
    expect(page.locator("[data-qty]")).to_have_value("2")
    expect(page.locator("[data-plus]")).to_be_disabled()  # the limit and the stock: 2

    # The fan orders both and leaves them unpaid: sold out, held by an unpaid order.
    token = client.get("/cart/session").get_json()["csrf_token"]
    placed = client.post(
        "/api/v1/orders",
        json={"items": [{"sku_id": product.skus[0].id, "quantity": 2}], "address_id": address_id},
        headers={"X-CSRFToken": token},
    )
    assert placed.status_code == 201
    page.reload()
    expect(page.locator("[data-held-note]")).to_have_text("已被抢光，仍有未付款订单，可稍后再试")
    expect(page.locator("[data-stock]")).to_have_text("已被抢光")
    expect(limit).to_have_text("限购 2 件 · 已达限购")
    expect(page.locator(".actionbar .soldout")).to_have_text("已被抢光")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts / "shop-product-held.png"), full_page=True)

    # Checkout of something else, opened while the fan still had room under the cap
    # (2 here); an order placed meanwhile (another tab) fills it: the refusal stays on the
    # page with the link to the unpaid orders.
    get_settings().max_unpaid_orders = 2
    db.session.commit()
    other = make.product(title="手工香皂", stock=5)
    page.goto(f"{live_server.url}/checkout?sku_id={other.skus[0].id}&quantity=1")
    expect(page.locator("[data-unpaid-notice]")).to_have_count(0)
    again = client.post(
        "/api/v1/orders",
        json={"items": [{"sku_id": other.skus[0].id, "quantity": 1}], "address_id": address_id},
        headers={"X-CSRFToken": token},
    )
    assert again.status_code == 201
    page.locator("[data-place]").click()
    notice = page.locator("[data-unpaid-notice]")
    expect(notice).to_contain_text("您已有 2 笔待付款订单，请先完成付款或取消后再下单")
    expect(page.locator("[data-place]")).to_be_disabled()
    page.screenshot(path=str(artifacts / "checkout-unpaid-cap.png"))
    notice.get_by_role("link", name="查看待付款订单 ›").click()
    page.wait_for_url(f"{live_server.url}/orders?status=pending_payment")
    expect(page.locator("body")).to_contain_text("限量手作茶饼")
