"""The 推广海报 page and the product page's 生成海报 button in a real browser inside
"WeChat" (375x812): the spinner gives way to the poster (the image URL renders it when no
worker is running), the product tab switches poster, and a non-distributor is asked to
join. Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.accounts.models import User
from app.distribution.distributors import create_distributor
from app.extensions import db
from tests.support.browser import sign_in_on_stand_in


@pytest.mark.browser
def test_distributor_gets_posters_in_the_browser(app, make, page, live_server, sandbox, artifacts):
    product = make.product(title="北欧哑光陶瓷马克杯 380ml", price_fen=3900)
    base = live_server.url

    # Not a distributor yet: the product page's button asks to join.
    page.goto(f"{base}/product/{product.id}")
    page.get_by_role("button", name="生成海报").click()
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(f"{base}/product/{product.id}")
    page.get_by_role("button", name="生成海报").click()
    sheet = page.locator("[data-poster-sheet]")
    expect(sheet).to_contain_text("成为分销员后")
    expect(sheet.get_by_role("link", name="去加入分销")).to_have_attribute("href", "/distributor")

    db.session.rollback()
    user = db.session.scalar(db.select(User).order_by(User.id.desc()))
    create_distributor(user.id, None)
    db.session.commit()

    page.goto(f"{base}/distributor")
    page.get_by_role("link", name="推广海报").click()
    expect(page.locator("[data-poster-wait]")).to_be_visible()  # queued; no worker here
    poster = page.locator("[data-poster-img]")
    expect(poster).to_be_visible(timeout=15_000)
    assert poster.evaluate("img => img.naturalWidth") == 750
    expect(page.locator("[data-poster-hint]")).to_contain_text("长按图片")
    page.screenshot(path=str(artifacts / "posters-shop-page.png"), full_page=True)

    page.get_by_role("link", name="商品海报").click()
    expect(page.locator("#pp-product")).to_have_value(str(product.id))
    expect(page.locator("[data-poster-img]")).to_be_visible(timeout=15_000)
    page.screenshot(path=str(artifacts / "posters-product-page.png"), full_page=True)

    # The product page's button now shows the poster in a sheet.
    page.goto(f"{base}/product/{product.id}")
    page.get_by_role("button", name="生成海报").click()
    image = page.locator("[data-poster-sheet] [data-poster-img]")
    expect(image).to_be_visible(timeout=15_000)
    assert image.evaluate("img => img.naturalHeight") == 1334
    page.screenshot(path=str(artifacts / "posters-product-sheet.png"))
