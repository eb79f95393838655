"""The admin in a real browser on a laptop screen: sign in, create a product with SKUs."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from app.catalog.models import Product
from app.extensions import db


def sample_png(path) -> None:
    image = Image.new("RGB", (600, 600), (236, 242, 248))
    draw = ImageDraw.Draw(image)
    draw.rectangle((150, 150, 450, 450), fill=(26, 127, 90))
    draw.ellipse((240, 240, 360, 360), fill=(250, 250, 250))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    path.write_bytes(buf.getvalue())


@pytest.mark.browser
def test_staff_signs_in_and_creates_a_product_with_two_spec_values(
    desk, live_server, make, artifacts, tmp_path
):
    make.staff("clerk", password="clerk-password", role="owner")
    make.category("女装")
    base = live_server.url

    desk.goto(f"{base}/admin/products/new")
    assert "/admin/login" in desk.url  # sent to sign in first, and back afterwards
    desk.screenshot(path=str(artifacts / "admin-login.png"))
    desk.fill("#username", "clerk")
    desk.fill("#password", "clerk-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/products/new")

    desk.fill("#title", "纯棉圆领T恤")
    desk.fill("#subtitle", "亲肤透气，四季可穿")
    desk.select_option("#category_id", label="女装")
    desk.fill("[name=spec_name_0]", "颜色")
    desk.fill("[name=spec_values_0]", "白色，黑色")
    rows = desk.locator("[data-sku-rows] tr")
    rows.nth(1).wait_for()  # the script built one row per value
    assert rows.count() == 2
    assert rows.nth(0).locator(".spec-cell").inner_text().strip() == "白色"
    desk.fill("[name=sku-0-price]", "59.90")
    desk.fill("[name=sku-0-stock]", "20")
    desk.fill("[name=sku-1-price]", "69")
    desk.fill("[name=sku-1-original]", "99")
    desk.fill("[name=sku-1-stock]", "3")
    desk.click(".savebar >> text=保存商品")
    desk.wait_for_url("**/admin/products/*/edit")
    assert "商品已保存" in desk.content()

    image = tmp_path / "tee.png"
    sample_png(image)
    desk.set_input_files("input[name=images]", str(image))
    assert "tee.png" in desk.inner_text("[data-file-names]")
    desk.click("text=上传图片")
    desk.wait_for_selector(".gallery img")
    assert "已上传 1 张图片" in desk.content()

    db.session.expire_all()
    product = db.session.scalar(select(Product).where(Product.title == "纯棉圆领T恤"))
    assert product.spec_names == ["颜色"]
    prices = {s.specs["颜色"]: (s.price_fen, s.original_price_fen, s.stock) for s in product.skus}
    assert prices == {"白色": (5990, 0, 20), "黑色": (6900, 9900, 3)}
    assert len(product.images) == 1

    desk.evaluate("window.scrollTo(0, 0)")  # the upload returned to #images
    desk.screenshot(path=str(artifacts / "admin-product-edit.png"), full_page=True)
    desk.goto(f"{base}/admin/products")
    desk.screenshot(path=str(artifacts / "admin-products.png"), full_page=True)
    for name in ("", "stock", "categories", "staff"):
        desk.goto(f"{base}/admin/{name}")
        desk.screenshot(path=str(artifacts / f"admin-{name or 'dashboard'}.png"), full_page=True)
