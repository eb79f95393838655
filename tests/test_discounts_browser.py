"""A customer sees a timed discount on the product page at 375 px: the list price crossed
out, the discount price, and a countdown that ticks (issue 18 part B)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app.core.time import utcnow
from app.extensions import db
from tests.support import factories
from tests.support.discounts import discount

pytestmark = pytest.mark.browser


@pytest.fixture
def discounted(app):
    """A product of two SKUs, one at a set discount price for the next 2 days 3 hours."""
    with app.app_context():
        product = factories.product(
            "限时特惠羊毛围巾", price_fen=19900, stock=8, specs={"颜色": ["驼色", "灰色"]}
        )
        camel, _grey = product.skus
        discount(
            product,
            prices={camel.id: 12900},
            name="双十二限时折扣",
            lasts=timedelta(days=2, hours=3),
        )
        db.session.commit()
        return product.id


def test_countdown_and_struck_price_at_375(discounted, page, live_server, artifacts):
    page.goto(f"{live_server.url}/product/{discounted}")
    bar = page.locator("[data-timed-discount]")
    expect(bar).to_be_visible()
    expect(bar.locator(".td-label")).to_have_text("限时特价")
    left = bar.locator("[data-td-left]")
    expect(left).to_have_text(re.compile(r"^2天 \d\d:\d\d:\d\d$"))
    first = left.inner_text()
    expect(left).not_to_have_text(first)  # it ticks
    price = page.locator("[data-price-value]")
    expect(price).to_have_text("129.00")
    expect(page.locator("[data-from]")).to_be_visible()  # 129 and 199
    page.locator('[data-spec="0"]').get_by_role("button", name="驼色").click()
    expect(price).to_have_text("129.00")
    expect(page.locator("[data-orig]")).to_be_visible()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts / "discount-product-375.png"))
    box = bar.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375


def test_staff_set_a_discount_at_1366(app, desk, live_server, artifacts):
    with app.app_context():
        factories.staff("discount-clerk", password="clerk-password")
        product = factories.product("羊绒大衣", price_fen=129900, stock=3)
        product_id = product.id
        db.session.commit()
    base = live_server.url
    desk.goto(f"{base}/admin/discounts")
    desk.fill("#username", "discount-clerk")
    desk.fill("#password", "clerk-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/discounts")
    expect(desk.locator(".empty")).to_contain_text("还没有限时折扣")
    desk.get_by_role("link", name="新建限时折扣").click()
    desk.select_option("select[name=product_id]", str(product_id))
    desk.get_by_role("button", name="下一步").click()
    desk.fill("input[name=zhe]", "7.5")
    ends = (utcnow() + timedelta(days=7, hours=8)).strftime("%Y-%m-%dT%H:%M")  # Beijing
    desk.fill("input[name=ends_at]", ends)
    desk.screenshot(path=str(artifacts / "admin-discount-form-1366.png"), full_page=True)
    desk.get_by_role("button", name="保存").click()
    desk.wait_for_url(f"{base}/admin/discounts")
    row = desk.locator("tr[data-discount]")
    expect(row).to_contain_text("羊绒大衣")
    expect(row).to_contain_text("限时 7.5 折")
    expect(row).to_contain_text("进行中")
    desk.screenshot(path=str(artifacts / "admin-discounts-1366.png"), full_page=True)
