"""Customer surfaces of issue 17 in a real browser (chromium, WeChat's UA, 375x812).

Cart: 加入购物车 while signed out keeps the SKU across the WeChat sign-in (no empty picker
afterwards); the tab bar's 购物车 badge; ticks, 全选 and checkout of ticked lines only;
编辑 mode deleting; 失效 lines apart. 我的: the WeChat nickname (snsapi_userinfo on the
browser's first sign-in) and 联系客服. Search: recent and hot terms, suggestions when
nothing matched. Address form: the field in error is marked. Screenshots in test-artifacts/.
"""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from app.catalog.models import Product
from app.extensions import db
from app.shop.models import CustomerService
from tests.support.browser import sign_in_on_stand_in


@pytest.mark.browser
def test_cart_tab_ticks_edit_and_signed_out_add(app, make, page, live_server, sandbox, artifacts):
    tea = make.product(title="明前龙井", price_fen=6800, stock=5, specs={"规格": ["50g", "100g"]})
    cup = make.product(title="青瓷茶杯", price_fen=2500, stock=5)
    gone = make.product(title="旧款茶盘", price_fen=9900, stock=5)
    tea_id, cup_id, gone_id = tea.id, cup.id, gone.id
    big = next(s for s in tea.skus if s.specs["规格"] == "100g").id
    cup_sku, gone_sku = cup.skus[0].id, gone.skus[0].id
    base = live_server.url

    # Signed out: choose 100g, 加入购物车, sign in on the stand-in (first time: 允许).
    page.goto(f"{base}/product/{tea_id}")
    page.get_by_role("button", name="100g").click()
    page.get_by_role("button", name="加入购物车").click()
    page.wait_for_url(f"{sandbox.url}/connect/oauth2/authorize?**")
    expect(page.get_by_role("button", name="允许")).to_be_visible()  # snsapi_userinfo
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(f"{base}/product/{tea_id}")
    expect(page.locator("#toast")).to_have_text("已加入购物车")
    expect(page.locator("[data-cart-badge]").first).to_have_text("1")

    for product_id in (cup_id, gone_id):
        page.goto(f"{base}/product/{product_id}")
        page.get_by_role("button", name="加入购物车").click()
        expect(page.locator("#toast")).to_have_text("已加入购物车")
    with app.app_context():
        db.session.get(Product, gone_id).on_shelf = False
        db.session.commit()

    # The home page is cached for everybody; the badge is filled by cart-badge.js.
    page.goto(f"{base}/")
    tab = page.locator(".tabbar a", has_text="购物车")
    expect(tab.locator("[data-cart-badge]")).to_have_text("3")
    page.screenshot(path=str(artifacts / "customer-home-badge.png"))
    tab.click()
    page.wait_for_url(f"{base}/cart")
    expect(page.locator(".tabbar a.on")).to_have_text("购物车3")
    invalid = page.locator("section.cart-invalid")
    expect(invalid).to_contain_text("失效商品 1 件")
    expect(invalid).to_contain_text("旧款茶盘")
    expect(page.locator("[data-checkout]")).to_have_text("去结算(2)")
    expect(page.locator(".paybar-sum .price")).to_have_text("¥103.00")  # 68 + 25 + 10 shipping

    # Untick the cup: the total and 去结算 follow, the tick is kept after a reload.
    page.locator(f'[data-sku="{cup_sku}"] .tick').click()
    expect(page.locator("[data-checkout]")).to_have_text("去结算(1)")
    expect(page.locator(".paybar-sum .price")).to_have_text("¥78.00")
    expect(page.locator("[data-cart-all]")).not_to_be_checked()
    page.screenshot(path=str(artifacts / "customer-cart.png"), full_page=True)
    page.locator("[data-checkout]").click()
    page.wait_for_url(f"{base}/checkout")
    expect(page.locator("main")).to_contain_text("明前龙井")
    expect(page.locator("main")).not_to_contain_text("青瓷茶杯")
    page.go_back()
    page.wait_for_url(f"{base}/cart")

    # 全选 ticks every line that is not 失效.
    page.locator(".tick.all").click()
    expect(page.locator("[data-checkout]")).to_have_text("去结算(2)")
    expect(page.locator("[data-cart-all]")).to_be_checked()

    # 编辑: tick the cup and the 失效 line, 删除 both.
    page.get_by_role("button", name="编辑").click()
    expect(page.locator("[data-cart-delete]")).to_be_visible()
    expect(page.locator("[data-checkout]")).to_be_hidden()
    page.locator(f'[data-sku="{cup_sku}"] .tick').click()
    page.locator(f'[data-sku="{gone_sku}"] .tick').click()
    page.screenshot(path=str(artifacts / "customer-cart-edit.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("[data-cart-delete]").click()
    expect(page.locator(".cart-line")).to_have_count(1)
    expect(page.locator(f'[data-sku="{big}"]')).to_be_visible()
    expect(page.locator("section.cart-invalid")).to_have_count(0)
    expect(page.locator(".tabbar [data-cart-badge]")).to_have_text("1")


@pytest.mark.browser
def test_my_search_and_address_errors(app, make, page, live_server, sandbox, artifacts):
    make.product(title="安吉白茶", price_fen=4500, featured=True)
    with app.app_context():
        db.session.add(
            CustomerService(
                id=1,
                phone="400-123-4567",
                wechat_id="shop_kefu01",
                qr_image="",
                kefu_enabled=True,
                kefu_note="工作日 9:00-18:00 回复",
            )
        )
        db.session.commit()
    base = live_server.url

    page.goto(f"{base}/login?next=/my")
    sign_in_on_stand_in(page, sandbox, "李雷")
    page.wait_for_url(f"{base}/my")
    expect(page.locator(".my-head h1")).to_have_text("李雷")
    expect(page.locator(".my-head img.avatar")).to_be_visible()
    page.get_by_role("link", name="联系客服").click()
    sheet = page.get_by_role("dialog", name="联系客服")
    expect(sheet).to_be_visible()
    expect(sheet.get_by_role("link", name="拨打")).to_have_attribute("href", "tel:400-123-4567")
    expect(sheet).to_contain_text("shop_kefu01")
    expect(sheet).to_contain_text("工作日 9:00-18:00 回复")
    page.screenshot(path=str(artifacts / "customer-my-contact.png"))
    sheet.get_by_role("button", name="关闭").click()
    expect(sheet).to_be_hidden()

    # Search: found, then not found (suggestions), then the search page lists both.
    page.goto(f"{base}/search")
    box = page.get_by_role("searchbox", name="搜索商品")
    box.fill("白茶")
    box.press("Enter")
    page.wait_for_url(re.compile(r".*/search\?q=.*"))
    expect(page.locator(".grid .card")).to_have_count(1)
    page.goto(f"{base}/search?q=咖啡机")
    expect(page.locator(".empty-title")).to_have_text("没有找到“咖啡机”相关的商品")
    expect(page.locator(".suggestions")).to_contain_text("安吉白茶")
    page.screenshot(path=str(artifacts / "customer-search-none.png"), full_page=True)
    page.goto(f"{base}/search")
    expect(page.locator(".term-list.recent a")).to_have_text(["咖啡机", "白茶"])
    page.screenshot(path=str(artifacts / "customer-search.png"))
    page.get_by_role("button", name="清除").click()
    page.wait_for_url(f"{base}/search")
    expect(page.locator(".term-list.recent")).to_have_count(0)

    # Address form: the field in error is marked, not only toasted.
    page.goto(f"{base}/addresses/new")
    page.get_by_placeholder("姓名").fill("李雷")
    page.get_by_placeholder("11 位手机号码").fill("12345")
    page.get_by_role("button", name="保存").click()
    phone = page.get_by_placeholder("11 位手机号码")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_be_focused()
    expect(page.locator(".field-error")).to_have_text("请填写 11 位手机号码")
    expect(page.get_by_placeholder("姓名")).not_to_have_attribute("aria-invalid", "true")
    page.screenshot(path=str(artifacts / "customer-address-error.png"), full_page=True)
    phone.fill("13912345678")
    expect(page.locator(".field-error")).to_have_count(0)
    page.get_by_role("button", name="保存").click()
    region = page.locator(".region")
    expect(region).to_have_class(re.compile(r"\binvalid\b"))
    expect(page.locator(".field-error")).to_have_text("请选择省市区")


@pytest.mark.browser
def test_owner_sets_the_contact_in_the_admin(app, make, desk, live_server, artifacts, tmp_path):
    make.staff("boss", password="boss-password", role="owner")
    qr = tmp_path / "kefu.png"
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), (30, 140, 80)).save(buffer, "PNG")
    qr.write_bytes(buffer.getvalue())
    base = live_server.url

    desk.goto(f"{base}/admin/settings/service")
    desk.fill("#username", "boss")
    desk.fill("#password", "boss-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/settings/service")
    expect(desk.locator("nav a.active")).to_have_text("客服设置")

    desk.fill("[name=wechat_id]", "1 bad")
    desk.get_by_role("button", name="保存设置").click()
    expect(desk.locator(".alert-error")).to_contain_text("微信号需 6-20 位")
    expect(desk.locator("[name=wechat_id]")).to_have_attribute("aria-invalid", "true")

    desk.fill("[name=phone]", "400-123-4567")
    desk.fill("[name=wechat_id]", "shop_kefu01")
    desk.set_input_files("[name=qr_image]", str(qr))
    desk.check("[name=kefu_enabled]")
    desk.fill("[name=kefu_note]", "工作日 9:00-18:00 回复")
    desk.get_by_role("button", name="保存设置").click()
    expect(desk.locator(".alert-success")).to_have_text("客服设置已保存")
    expect(desk.get_by_alt_text("当前客服二维码")).to_be_visible()
    desk.screenshot(path=str(artifacts / "admin-settings-service.png"), full_page=True)
    with app.app_context():
        saved = db.session.get(CustomerService, 1)
        assert (saved.phone, saved.wechat_id, saved.kefu_enabled) == (
            "400-123-4567",
            "shop_kefu01",
            True,
        )
