"""A customer browses the demo shop in "WeChat" (Debian chromium, WeChat UA, 375x812)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_shop(app):
    """The demo shop, seeded and committed as ``flask seed-demo`` does."""
    from app.extensions import db
    from demo.seed import seed_demo

    with app.app_context():
        seed_demo()
        db.session.commit()


def test_browse_home_pick_sku(demo_shop, page, live_server, artifacts):
    page.goto(live_server.url + "/")
    expect(page.locator("h2", has_text="精选推荐")).to_be_visible()
    expect(page.locator(".grid .card")).to_have_count(14)  # the off-shelf cardigan is hidden
    expect(page.locator(".grid", has_text="羊毛混纺针织开衫")).to_have_count(0)
    # Every cover image is loaded and not broken.
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts / "shop-home.png"))

    page.locator(".grid a", has_text="法式碎花雪纺连衣裙").click()
    expect(page).to_have_url(re.compile(r"/product/\d+$"))
    price = page.locator("[data-price-value]")
    stock = page.locator("[data-stock]")
    expect(price).to_have_text("159.00")
    expect(page.locator("[data-from]")).to_be_visible()  # 159 and 169: "¥159.00起"
    expect(page.locator("[data-orig]")).to_have_text("¥299.00")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts / "shop-product.png"))

    colour = page.locator('[data-spec="0"]')
    size = page.locator('[data-spec="1"]')
    colour.get_by_role("button", name="樱花粉").click()
    # 樱花粉 / XL has no stock: it cannot be picked.
    expect(size.get_by_role("button", name="XL")).to_be_disabled()
    expect(size.get_by_role("button", name="M")).to_be_enabled()
    size.get_by_role("button", name="M").click()
    expect(price).to_have_text("159.00")
    expect(page.locator("[data-from]")).to_be_hidden()
    expect(stock).to_have_text("库存 25 件")
    expect(page.locator("[data-picked]")).to_have_text("已选：樱花粉 / M")
    # With XL picked first, the sold-out colour is the one disabled.
    size.get_by_role("button", name="M").click()  # un-pick
    colour.get_by_role("button", name="樱花粉").click()  # un-pick
    size.get_by_role("button", name="XL").click()
    expect(colour.get_by_role("button", name="樱花粉")).to_be_disabled()
    colour.get_by_role("button", name="奶油白").click()
    expect(price).to_have_text("169.00")
    expect(stock).to_have_text("库存 8 件")

    # The stepper stops at the stock.
    plus = page.locator("[data-plus]")
    for _ in range(10):
        if plus.is_disabled():
            break
        plus.click()
    expect(page.locator("[data-qty]")).to_have_value("8")
    expect(plus).to_be_disabled()
    page.screenshot(path=str(artifacts / "shop-product-picked.png"))

    # Buying needs a signed-in customer: an anonymous visitor goes to WeChat sign-in first.
    page.get_by_role("button", name="立即购买").click()
    page.wait_for_url(re.compile(r".*/connect/oauth2/authorize\?.*"))


def test_other_pages_look_right(demo_shop, page, live_server, artifacts):
    page.goto(live_server.url + "/categories")
    expect(page.locator(".cat-list li")).to_have_count(4)
    page.screenshot(path=str(artifacts / "shop-categories.png"))
    page.locator(".cat-list a", has_text="食品").click()
    expect(page.locator(".grid .card")).to_have_count(4)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts / "shop-category.png"))
    page.goto(live_server.url + "/search?q=不存在的商品")
    expect(page.locator(".empty-title")).to_contain_text("没有找到")
    page.screenshot(path=str(artifacts / "shop-search-empty.png"))
    page.goto(live_server.url + "/product/999999")
    expect(page.locator("h1")).to_have_text("页面不存在")
    page.screenshot(path=str(artifacts / "shop-404.png"))


def test_my_page_signed_in(app, make, page, live_server, login_as, artifacts):
    fan = make.user(nickname="小红")
    # Sign in the way the session would after OAuth: copy a signed session cookie.
    client = app.test_client()
    login_as(client, fan)
    cookie = client.get_cookie("session")
    page.context.add_cookies([{"name": "session", "value": cookie.value, "url": live_server.url}])
    page.goto(live_server.url + "/my")
    expect(page.locator(".my-head h1")).to_have_text("小红")
    page.screenshot(path=str(artifacts / "shop-my.png"))
    page.get_by_text("成为分销员").click()  # the distributor centre's join page
    page.wait_for_url(live_server.url + "/distributor")
    expect(page.locator(".bar h1")).to_have_text("成为分销员")
