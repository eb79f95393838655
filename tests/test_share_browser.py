"""分享赚 and the 推广商品库 in a real browser inside "WeChat" (375x812, WeChat's user agent).

A customer sees no commission on the product page, the home page's cards or search; a
distributor signed in on the same cached pages sees 分享赚 (a range across SKUs, the
self-purchase note), opens the share sheet (link with their ref, copy, poster), and
sorts the 推广商品库. Screenshots go to test-artifacts/ and were looked at.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.accounts.models import User
from app.catalog.models import Product
from app.distribution.distributors import create_distributor
from app.extensions import db
from tests.support.browser import sign_in_on_stand_in, wait_until
from tests.support.commissions import configure, customer_of, pay, place
from tests.support.share import rule


def shelf(make) -> dict[str, int]:
    """Three products: a dress at ¥12.00 / ¥39.00 (10%: ¥1.20–¥3.90), a cup with its own
    25% rule and a teapot that pays no commission."""
    dress = make.product(title="真丝连衣裙", specs={"尺码": ["S", "L"]})
    dress.skus[0].price_fen, dress.skus[1].price_fen = 1200, 3900
    db.session.commit()
    cup = make.product(title="青瓷茶杯", price_fen=2000)
    rule(cup, "percent", 2500)
    pot = make.product(title="紫砂茶壶", price_fen=50000)
    rule(pot, "none", 0)
    return {"dress": dress.id, "cup": cup.id, "pot": pot.id}


def newest_user() -> User:
    db.session.rollback()
    return db.session.scalar(db.select(User).order_by(User.id.desc()))


@pytest.mark.browser
def test_customer_sees_no_commission(app, make, page, live_server, sandbox, artifacts):
    configure(levels=2, level1_bp=1000)
    ids = shelf(make)
    base = live_server.url
    page.goto(f"{base}/my")
    sign_in_on_stand_in(page, sandbox, "李雷")
    page.wait_for_url(f"{base}/my")

    page.goto(f"{base}/product/{ids['dress']}")
    wait_until(page, "() => window.__shareData !== undefined")
    page.wait_for_load_state("networkidle")
    expect(page.locator("[data-share-earn-product]")).to_be_hidden()
    expect(page.locator("body")).not_to_contain_text("分享赚")
    page.screenshot(path=str(artifacts / "share-product-customer.png"), full_page=True)

    page.goto(f"{base}/")
    page.wait_for_load_state("networkidle")
    expect(page.locator("[data-share-earn]").first).to_be_hidden()
    expect(page.locator("body")).not_to_contain_text("分享赚")
    page.screenshot(path=str(artifacts / "share-home-customer.png"), full_page=True)

    page.goto(f"{base}/search?q=茶")
    page.wait_for_load_state("networkidle")
    expect(page.locator("body")).not_to_contain_text("分享赚")


@pytest.mark.browser
def test_distributor_sees_share_earnings_and_sorts_the_library(
    app, make, page, live_server, sandbox, artifacts
):
    configure(levels=2, level1_bp=1000, self_purchase=True)
    ids = shelf(make)
    base = live_server.url
    page.goto(f"{base}/my")
    sign_in_on_stand_in(page, sandbox, "张小凡")
    page.wait_for_url(f"{base}/my")
    seller = create_distributor(newest_user().id, None)
    db.session.commit()
    code = seller.code
    buyer = customer_of(make, seller, "买家")
    pay(place(make, buyer, product=db.session.get(Product, ids["pot"]), quantity=2))

    # The product page: 分享赚 as a range across SKUs, with the self-purchase note.
    page.goto(f"{base}/product/{ids['dress']}")
    row = page.locator("[data-share-earn-product]")
    expect(row).to_be_visible()
    expect(row.locator(".se-amount")).to_have_text("¥1.20–¥3.90")
    expect(row).to_contain_text("分享赚")
    expect(row).to_contain_text("自购同样返佣")
    wait_until(page, "() => window.__shareData && window.__shareData.ref", timeout=10)
    assert page.evaluate("window.__shareData.link").endswith(
        f"/product/{ids['dress']}?ref={code}"
    )  # the share card keeps the ref
    page.screenshot(path=str(artifacts / "share-product-distributor.png"), full_page=True)
    page.locator('[data-value="L"]').click()  # one SKU chosen: its own figure
    expect(row.locator(".se-amount")).to_have_text("¥3.90")
    page.locator('[data-value="L"]').click()  # chosen no more: the range again
    expect(row.locator(".se-amount")).to_have_text("¥1.20–¥3.90")

    row.get_by_role("button", name="分享").click()
    sheet = page.locator("[data-share-sheet]")
    expect(sheet).to_be_visible()
    expect(sheet.locator("[data-se-link]")).to_have_text(
        f"{base}/product/{ids['dress']}?ref={code}"
    )
    expect(sheet.locator("[data-se-hint]")).to_contain_text("发送给朋友")
    expect(sheet).to_contain_text("预计赚 ¥1.20–¥3.90")
    page.screenshot(path=str(artifacts / "share-sheet.png"))
    sheet.get_by_role("button", name="复制链接").click()
    expect(page.locator("#toast")).to_be_visible()
    sheet.get_by_role("button", name="取消").click()
    expect(sheet).to_have_count(0)

    # Cards on the home page and in search.
    page.goto(f"{base}/")
    expect(page.locator(f'[data-share-earn="{ids["cup"]}"]').first).to_have_text("分享赚 ¥5.00")
    expect(page.locator(f'[data-share-earn="{ids["dress"]}"]').first).to_have_text(
        "分享赚 ¥1.20–¥3.90"
    )
    expect(page.locator(f'[data-share-earn="{ids["pot"]}"]').first).to_be_hidden()
    page.screenshot(path=str(artifacts / "share-home-distributor.png"), full_page=True)
    page.goto(f"{base}/search?q=茶")
    expect(page.locator(f'[data-share-earn="{ids["cup"]}"]')).to_have_text("分享赚 ¥5.00")
    page.screenshot(path=str(artifacts / "share-search-distributor.png"), full_page=True)

    # The centre links to the 推广商品库; its sorts reorder the list.
    page.goto(f"{base}/distributor")
    expect(page.locator("body")).not_to_contain_text("商品链接格式")
    page.screenshot(path=str(artifacts / "share-centre.png"), full_page=True)
    page.locator("[data-library-link]").click()
    page.wait_for_url(f"{base}/distributor/products")

    def order() -> list[int]:
        return [
            int(x)
            for x in page.locator("[data-library] [data-product]").evaluate_all(
                "items => items.map(li => li.getAttribute('data-product'))"
            )
        ]

    assert order() == [ids["cup"], ids["dress"], ids["pot"]]  # ¥5.00, ¥3.90, none
    expect(page.locator(f'[data-product="{ids["cup"]}"] [data-earn]')).to_contain_text(
        "预计佣金 ¥5.00"
    )
    page.screenshot(path=str(artifacts / "share-library-commission.png"), full_page=True)
    page.get_by_role("link", name="比例最高").click()
    page.wait_for_url("**/distributor/products?sort=rate")
    assert order() == [ids["cup"], ids["dress"], ids["pot"]]  # 25%, 10%, 0
    page.get_by_role("link", name="最新上架").click()
    page.wait_for_url("**/distributor/products?sort=newest")
    assert order() == [ids["pot"], ids["cup"], ids["dress"]]
    page.get_by_role("link", name="销量最高").click()
    page.wait_for_url("**/distributor/products?sort=sales")
    assert order() == [ids["pot"], ids["cup"], ids["dress"]]  # 2 sold, then newest first
    page.screenshot(path=str(artifacts / "share-library-sales.png"), full_page=True)
    page.get_by_placeholder("搜索要推广的商品").fill("连衣裙")
    page.get_by_role("button", name="搜索").click()
    page.wait_for_url("**/distributor/products?sort=sales&q=*")
    assert order() == [ids["dress"]]

    # 分享 on an item, then 生成海报 from the sheet.
    page.locator(f'[data-product="{ids["dress"]}"]').get_by_role("button", name="分享").click()
    expect(sheet.locator("[data-se-link]")).to_have_text(
        f"{base}/product/{ids['dress']}?ref={code}"
    )
    expect(sheet.get_by_role("link", name="打开商品页")).to_have_attribute(
        "href", f"{base}/product/{ids['dress']}?ref={code}"
    )
    page.screenshot(path=str(artifacts / "share-library-sheet.png"))
    sheet.get_by_role("button", name="生成海报").click()
    expect(page.locator("[data-poster-sheet] [data-poster-img]")).to_be_visible(timeout=15_000)
    expect(sheet).to_have_count(0)
    page.screenshot(path=str(artifacts / "share-library-poster.png"))


@pytest.mark.browser
def test_cards_loaded_by_more_get_their_figure(app, make, page, live_server, sandbox, artifacts):
    configure(levels=2, level1_bp=1000)
    first = make.product(title="最早上架的杯子", price_fen=2990)
    for i in range(20):
        make.product(title=f"新品{i}", price_fen=1000)
    base = live_server.url
    page.goto(f"{base}/my")
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(f"{base}/my")
    create_distributor(newest_user().id, None)
    db.session.commit()

    page.goto(f"{base}/")
    expect(page.locator("[data-share-earn]").first).to_have_text("分享赚 ¥1.00")
    expect(page.locator(f'[data-share-earn="{first.id}"]')).to_have_count(0)  # page 2
    page.get_by_role("link", name="加载更多").click()
    expect(page.locator(f'[data-share-earn="{first.id}"]')).to_have_text("分享赚 ¥2.99")
