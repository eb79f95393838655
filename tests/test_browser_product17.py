"""Issue 17 pages in a real browser: the product page at 375 px (已售, shipping, the
owner's promises, a rich description with an image), the product editor at 1366 px
(images staged before the first save, the description editor) and the ordering
merchant's folded price list at 375 px. Screenshots go to test-artifacts/."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect
from sqlalchemy import select

from app.accounts.models import User
from app.admin.images import check_image, store_file
from app.catalog.models import Product, Sku
from app.catalog.page_settings import save_promises
from app.catalog.services import ProductInput, SkuInput, create_product
from app.cloud.merchants import create_merchant
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import PAID
from app.orders.services import ItemRequest, get_settings, place_order
from tests.support.browser import sign_in_on_stand_in
from tests.support.cloud import levels, three_level_chain
from tests.support.factories import address


def png(color=(26, 127, 90), size=(600, 400)) -> bytes:
    image = Image.new("RGB", size, (236, 242, 248))
    ImageDraw.Draw(image).rectangle((100, 80, 500, 320), fill=color)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.mark.browser
def test_product_page_shows_sales_shipping_promises_and_rich_description(
    app, page, live_server, make, artifacts
):
    settings = get_settings()
    settings.shipping_fee_fen, settings.free_shipping_over_fen = 800, 9900
    save_promises(["正品保障", "48小时发货"])
    db.session.commit()
    picture = store_file(check_image(png(), "d.png", 5 << 20), app.config["UPLOAD_DIR"])
    product = create_product(
        ProductInput(
            title="手工粗陶茶杯",
            subtitle="柴烧工艺，一杯一色",
            description=(
                "<h3>产品介绍</h3><p>景德镇手工拉坯，<b>每只花色不同</b>。</p>"
                f'<p><img src="/media/{picture.name}" width="600" height="400"></p>'
                "<ul><li>容量 200ml</li><li>可用洗碗机</li></ul>"
                '<p onclick="alert(1)">不含铅<script>alert(1)</script></p>'
            ),
            skus=[SkuInput(specs={}, price_fen=3900, original_price_fen=5900, stock=30)],
        )
    )
    db.session.commit()
    buyer = make.user()
    order = place_order(buyer.id, [ItemRequest(product.skus[0].id, 3)], address(buyer).id)
    order.status, order.paid_at, order.paid_fen = PAID, utcnow(), order.total_fen
    db.session.commit()

    page.goto(f"{live_server.url}/product/{product.id}")
    expect(page.locator("[data-sold]")).to_have_text("已售 3")
    expect(page.locator("[data-shipping]")).to_contain_text("运费 ¥8.00，满 ¥99.00 包邮")
    expect(page.locator("[data-promises] li")).to_have_text(["正品保障", "48小时发货"])
    description = page.locator("[data-description]")
    expect(description.locator("h3")).to_have_text("产品介绍")
    image = description.locator("img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") == 600  # the file really loads
    assert image.evaluate("img => img.getBoundingClientRect().width") <= 375
    assert "onclick" not in description.inner_html()
    page.screenshot(path=str(artifacts / "product17-page.png"), full_page=True)


@pytest.mark.browser
def test_editor_stages_images_before_the_first_save_and_writes_rich_text(
    desk, live_server, make, artifacts, tmp_path
):
    make.staff("editor17", password="editor-password")
    base = live_server.url
    desk.goto(f"{base}/admin/products/new")
    desk.fill("#username", "editor17")
    desk.fill("#password", "editor-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/products/new")

    first, second = tmp_path / "front.png", tmp_path / "back.png"
    first.write_bytes(png())
    second.write_bytes(png((200, 60, 40)))
    desk.set_input_files("[data-stage-input]", [str(first), str(second)])
    expect(desk.locator("[data-staged-list] li")).to_have_count(2)
    desk.locator("[data-staged-list] li").nth(1).get_by_role("button", name="移除").click()
    expect(desk.locator("[data-staged-list] li")).to_have_count(1)

    desk.fill("#title", "竹编收纳篮")
    desk.fill("[name=sku-0-price]", "45")
    desk.fill("[name=sku-0-stock]", "12")
    editor = desk.locator("[data-rich-editor]")
    editor.click()
    desk.keyboard.type("手工竹编，结实耐用")
    desk.get_by_role("button", name="标题").click()
    desk.keyboard.press("End")
    desk.keyboard.press("Enter")
    desk.keyboard.type("适合收纳零食和杂物")
    picture = tmp_path / "inside.png"
    picture.write_bytes(png((40, 90, 200)))
    desk.set_input_files("[data-rich-image]", str(picture))
    expect(editor.locator("img")).to_have_count(1)
    desk.screenshot(path=str(artifacts / "product17-editor-new.png"), full_page=True)
    desk.click(".savebar >> text=保存商品")
    desk.wait_for_url("**/admin/products/*/edit")
    expect(desk.locator("#images .gallery li")).to_have_count(1)
    desk.evaluate("window.scrollTo(0, 0)")
    desk.screenshot(path=str(artifacts / "product17-editor-saved.png"), full_page=True)

    db.session.expire_all()
    product = db.session.scalar(select(Product).where(Product.title == "竹编收纳篮"))
    assert len(product.images) == 1
    assert "<h3>手工竹编，结实耐用</h3>" in product.description
    assert "适合收纳零食和杂物" in product.description
    assert '<img src="/media/p' in product.description


@pytest.mark.browser
def test_merchant_price_list_is_folded_and_short_at_375(
    app, page, live_server, sandbox, make, artifacts
):
    levels()
    _top, middle, _low = three_level_chain(make)
    for i in range(25):
        row = Product(title=f"有机绿茶礼盒 {i + 1:02d} 号", spec_names=["规格"])
        for k, name in enumerate(("100g", "250g", "500g", "1kg")):
            row.skus.append(
                Sku(specs={"规格": name}, price_fen=5000 * (k + 1), stock=0 if k == 3 else 20)
            )
        db.session.add(row)
    db.session.commit()
    # Sign in as a stand-in fan, whom staff then make a level-2 merchant.
    page.goto(f"{live_server.url}/merchant")
    sign_in_on_stand_in(page, sandbox, "李雷")
    page.wait_for_url(f"{live_server.url}/merchant")
    db.session.rollback()
    user = db.session.scalars(select(User).order_by(User.id.desc())).first()
    create_merchant(user.id, 2, middle.parent_id, "staff:1")
    db.session.commit()
    page.goto(f"{live_server.url}/merchant/prices")
    rows = page.locator("details.m-prod")
    expect(rows).to_have_count(10)
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < 1600, height  # 100 SKUs on the shelf, one short page
    page.screenshot(path=str(artifacts / "product17-merchant-prices.png"), full_page=True)
    rows.first.locator("summary").click()
    expect(rows.first.locator(".m-skus li")).to_have_count(4)
    expect(rows.first.locator(".m-skus li.out")).to_contain_text("已售罄")
    page.get_by_placeholder("搜索商品名称或编码").fill("07 号")
    page.get_by_role("button", name="搜索").click()
    expect(rows).to_have_count(1)
    page.screenshot(path=str(artifacts / "product17-merchant-search.png"), full_page=True)
    page.goto(f"{live_server.url}/merchant/orders/new")
    page.locator("details.m-prod").first.locator("summary").click()
    page.locator("details.m-prod").first.locator("[data-pick]").first.click()
    expect(page.locator("[data-chosen-list] li")).to_have_count(1)
    page.screenshot(path=str(artifacts / "product17-merchant-pick.png"), full_page=True)
    # The address step marks the field in error, not only a message.
    page.get_by_role("button", name="下一步：填写地址").click()
    page.get_by_role("button", name="下一步：确认订单").click()
    expect(page.locator("[data-address-error]")).to_have_text("请填写客户姓名")
    expect(page.get_by_placeholder("姓名")).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(artifacts / "product17-merchant-address-error.png"))
