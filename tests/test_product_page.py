"""The product page's sales count, shipping line, service promises and rich description;
the description sanitiser; the owner's product-page settings; images staged for a new
product before its first save (issue 17)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app.admin import staging
from app.catalog.models import Product, StagedImage
from app.catalog.rich_text import sanitize, to_html
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import PAID
from app.orders.services import ItemRequest, get_settings, place_order
from tests.support.admin import csrf_token, fresh_client, post, text
from tests.support.catalog import product_data

# --- the sanitiser ------------------------------------------------------------------------

PAYLOADS = [
    "<script>alert(1)</script><p>ok</p>",
    '<p>ok</p><SCRIPT src="/media/x.js"></SCRIPT>',
    '<img src="/media/pabc.jpg" onerror="alert(1)"><p>ok</p>',
    '<p onclick="alert(1)" onmouseover="x()">ok</p>',
    '<a href="javascript:alert(1)">ok</a>',
    '<img src="javascript:alert(1)"><p>ok</p>',
    '<p>ok</p><iframe src="https://evil.example/"></iframe>',
    '<p style="background:url(javascript:alert(1))">ok</p>',
    '<svg onload="alert(1)"><p>ok</p></svg>',
    '<img src="https://evil.example/track.gif"><p>ok</p>',
    '<img src="data:image/png;base64,AAAA"><p>ok</p>',
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_sanitiser_removes_scripts_handlers_and_foreign_urls(payload):
    cleaned = sanitize(payload).lower()
    assert "ok" in cleaned
    for bad in (
        "<script",
        "onerror",
        "onclick",
        "onload",
        "onmouseover",
        "javascript:",
        "<iframe",
        "style=",
        "evil.example",
        "data:",
        "<svg",
    ):
        assert bad not in cleaned, (payload, cleaned)
    assert "javascript:" not in str(to_html(payload)).lower()


def test_sanitiser_keeps_the_editor_html_and_own_images():
    html = (
        "<h3>材质</h3><p><b>纯棉</b>，<i>透气</i></p><ul><li>S</li><li>M</li></ul>"
        '<p><img src="/media/p0123456789abcdef0123456789abcdef.jpg" width="750" height="500"></p>'
    )
    assert sanitize(html) == html


def test_plain_text_descriptions_keep_their_lines_and_are_escaped():
    stored = sanitize("第一行 身高<170\n\n第二行 & 更多")
    shown = str(to_html(stored))
    assert shown == "<p>第一行 身高&lt;170</p><p>第二行 &amp; 更多</p>"
    # a legacy row saved before the sanitiser still cannot carry a script
    assert "<script" not in str(to_html("旧<script>alert(1)</script>描述"))


# --- the product page -----------------------------------------------------------------------


def paid_order(user_id, sku_id, quantity, refunded=0):
    """A placed order marked paid (as the pay notice would), with ``refunded`` units back."""
    from tests.support.factories import address

    order = place_order(user_id, [ItemRequest(sku_id, quantity)], address(user_id).id)
    order.status = PAID
    order.paid_at = utcnow()
    order.paid_fen = order.total_fen
    order.lines[0].refunded_quantity = refunded
    db.session.commit()
    return order


def page(client, product_id):
    response = client.get(f"/product/{product_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.postgresql  # sales SQL
def test_sold_count_is_paid_units_minus_refunded(client, make):
    product = make.product("陶瓷杯", price_fen=5000, stock=50)
    other = make.product("别的商品", stock=50)
    sku_id = product.skus[0].id
    assert "已售 0" in page(client, product.id)
    buyer = make.user()
    paid_order(buyer.id, sku_id, 3)
    paid_order(make.user().id, sku_id, 2, refunded=1)
    paid_order(make.user().id, other.skus[0].id, 7)
    assert "已售 4" in page(client, product.id)
    assert "已售 7" in page(client, other.id)


@pytest.mark.postgresql  # sales SQL
def test_unpaid_orders_do_not_count(client, make):
    from tests.support.factories import address

    product = make.product("未付款商品", stock=20)
    user = make.user()
    place_order(user.id, [ItemRequest(product.skus[0].id, 4)], address(user).id)
    db.session.commit()
    assert "已售 0" in page(client, product.id)


def test_shipping_line_follows_the_checkout_rule(client, make):
    settings = get_settings()
    settings.shipping_fee_fen, settings.free_shipping_over_fen = 800, 9900
    db.session.commit()
    cheap = make.product("便宜货", price_fen=1990)
    dear = make.product("贵货", price_fen=19900)
    html = page(client, cheap.id)
    assert "运费 ¥8.00，满 ¥99.00 包邮" in html
    assert re.search(r'class="ship-text free">包邮<', page(client, dear.id))
    settings = get_settings()
    settings.shipping_fee_fen = 0  # saving the settings drops the cached page
    db.session.commit()
    assert re.search(r'class="ship-text free">包邮<', page(client, cheap.id))


def test_promises_come_from_the_owner_setting(client, make, login_as):
    product = make.product("承诺商品")
    html = page(client, product.id)
    assert "正品保障" not in html and "data-promises" not in html
    owner_client = fresh_client(client.application)
    login_as(owner_client, make.staff("boss", role="owner"))
    response = post(
        owner_client,
        "/admin/settings/product-page",
        {"promises": "正品保障\n 48小时发货 \n\n正品保障\n7天无理由退货"},
        token_from="/admin/settings/product-page",
    )
    assert response.status_code == 302
    html = page(client, product.id)
    assert re.findall(r"<li>([^<]+)</li>", html.split("data-promises")[1].split("</ul>")[0]) == [
        "正品保障",
        "48小时发货",
        "7天无理由退货",
    ]


def test_promise_settings_refuse_bad_input_and_staff(client, make, login_as):
    owner_client = fresh_client(client.application)
    login_as(owner_client, make.staff("boss2", role="owner"))
    too_long = post(
        owner_client,
        "/admin/settings/product-page",
        {"promises": "一" * 13},
        token_from="/admin/settings/product-page",
    )
    assert too_long.status_code == 422 and "每条最多 12 个字" in text(too_long)
    too_many = post(
        owner_client,
        "/admin/settings/product-page",
        {"promises": "\n".join(f"承诺{i}" for i in range(7))},
        token_from="/admin/settings/product-page",
    )
    assert too_many.status_code == 422 and "最多 6 条" in text(too_many)
    clerk = fresh_client(client.application)
    login_as(clerk, make.staff("clerk9"))
    assert clerk.get("/admin/settings/product-page").status_code == 403


def test_rich_description_is_sanitised_on_save_and_shown(client, make, login_as):
    staff_client = fresh_client(client.application)
    login_as(staff_client, make.staff("editor"))
    html = (
        '<h3>详情</h3><p onclick="steal()">好杯子<script>alert(1)</script></p>'
        '<img src="/media/pabc.jpg" onerror="alert(1)"><a href="javascript:alert(2)">x</a>'
    )
    response = post(
        staff_client,
        "/admin/products/new",
        product_data("富文本杯", description=html),
        token_from="/admin/products/new",
    )
    assert response.status_code == 302, text(response)
    product = db.session.scalar(select(Product).where(Product.title == "富文本杯"))
    stored = product.description
    for bad in ("<script", "onclick", "onerror", "javascript:"):
        assert bad not in stored
    assert '<img src="/media/pabc.jpg">' in stored
    shown = page(client, product.id)
    assert '<div class="rich-desc" data-description><h3>详情</h3><p>好杯子</p>' in shown
    assert "steal()" not in shown and "alert(1)" not in shown


@pytest.mark.postgresql  # ids past PostgreSQL's integer
def test_huge_product_id_is_404_before_any_query(client):
    assert client.get(f"/product/{2**31}").status_code == 404
    assert client.get("/product/99999999999999999999").status_code == 404


# --- staged images of a new product --------------------------------------------------------


def image_bytes(color=(20, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 90), color).save(out, "PNG")
    return out.getvalue()


def multipart(client, path, fields):
    boundary, body = encode_multipart(MultiDict(fields))
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


@pytest.fixture
def staff_client(app, make, login_as):
    client = fresh_client(app)
    login_as(client, make.staff("stager"))
    return client


def form_token(client) -> tuple[str, str]:
    html = client.get("/admin/products/new").get_data(as_text=True)
    token = re.search(r'name="staging" value="([^"]+)"', html).group(1)
    return csrf_token(client, "/admin/products/new"), token


def test_images_staged_by_the_script_are_attached_on_first_save(app, staff_client):
    csrf, token = form_token(staff_client)
    answer = multipart(
        staff_client,
        "/admin/products/staged-images",
        [
            ("csrf_token", csrf),
            ("token", token),
            ("images", FileStorage(io.BytesIO(image_bytes()), filename="a.png")),
            ("images", FileStorage(io.BytesIO(image_bytes((200, 0, 0))), filename="b.png")),
        ],
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    images = answer.get_json()["images"]
    assert len(images) == 2 and images[0]["url"].startswith("/media/p")
    # remove the second one
    gone = multipart(
        staff_client,
        "/admin/products/staged-images/delete",
        [("csrf_token", csrf), ("token", token), ("id", str(images[1]["id"]))],
    )
    assert [i["id"] for i in gone.get_json()["images"]] == [images[0]["id"]]
    fields = [("csrf_token", csrf), ("staging", token), *product_data("先传图的商品").items()]
    saved = multipart(staff_client, "/admin/products/new", fields)
    assert saved.status_code == 302
    product = db.session.scalar(select(Product).where(Product.title == "先传图的商品"))
    assert [f"/media/{i.filename}" for i in product.images] == [images[0]["url"]]
    assert db.session.scalar(select(func.count()).select_from(StagedImage)) == 0
    assert (Path(app.config["UPLOAD_DIR"]) / product.images[0].filename).exists()


def test_files_posted_with_a_failing_form_are_kept_for_the_next_try(staff_client):
    csrf, token = form_token(staff_client)
    fields = [
        ("csrf_token", csrf),
        ("staging", token),
        ("images", FileStorage(io.BytesIO(image_bytes()), filename="c.png")),
        *product_data(
            "",
        ).items(),
    ]  # no title: refused
    refused = multipart(staff_client, "/admin/products/new", fields)
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert html.count("待保存图片") == 1
    again = [("csrf_token", csrf), ("staging", token), *product_data("第二次保存").items()]
    assert multipart(staff_client, "/admin/products/new", again).status_code == 302
    product = db.session.scalar(select(Product).where(Product.title == "第二次保存"))
    assert len(product.images) == 1


def test_staging_refuses_forged_tokens_bad_files_and_other_batches(staff_client):
    csrf, token = form_token(staff_client)
    forged = multipart(
        staff_client,
        "/admin/products/staged-images",
        [
            ("csrf_token", csrf),
            ("token", token[:-2] + "xx"),
            ("images", FileStorage(io.BytesIO(image_bytes()), filename="a.png")),
        ],
    )
    assert forged.status_code == 400
    assert forged.get_json()["error"]["code"] == "invalid_staging_token"
    not_image = multipart(
        staff_client,
        "/admin/products/staged-images",
        [
            ("csrf_token", csrf),
            ("token", token),
            ("images", FileStorage(io.BytesIO(b"<script>"), filename="a.png")),
        ],
    )
    assert not_image.status_code == 422
    ok = multipart(
        staff_client,
        "/admin/products/staged-images",
        [
            ("csrf_token", csrf),
            ("token", token),
            ("images", FileStorage(io.BytesIO(image_bytes()), filename="a.png")),
        ],
    )
    staged_id = ok.get_json()["images"][0]["id"]
    _csrf, other_token = form_token(staff_client)
    other = multipart(
        staff_client,
        "/admin/products/staged-images/delete",
        [("csrf_token", csrf), ("token", other_token), ("id", str(staged_id))],
    )
    assert other.status_code == 404
    huge = multipart(
        staff_client,
        "/admin/products/staged-images/delete",
        [("csrf_token", csrf), ("token", token), ("id", str(2**40))],
    )
    assert huge.status_code == 404


def test_staging_tokens_are_signed_and_expire(app):
    with app.test_request_context():
        token = staging.new_token()
        assert staging.batch_of(token) and len(staging.batch_of(token)) == 32
        assert staging.batch_of(token + "a") is None
        assert staging.batch_of("") is None


def test_description_images_are_checked_and_stored(staff_client):
    csrf = csrf_token(staff_client, "/admin/products/new")
    ok = multipart(
        staff_client,
        "/admin/products/description-images",
        [("csrf_token", csrf), ("image", FileStorage(io.BytesIO(image_bytes()), filename="d.png"))],
    )
    url = ok.get_json()["url"]
    assert url.startswith("/media/p") and sanitize(f'<img src="{url}">') == f'<img src="{url}">'
    bad = multipart(
        staff_client,
        "/admin/products/description-images",
        [("csrf_token", csrf), ("image", FileStorage(io.BytesIO(b"GIF89a"), filename="d.gif"))],
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_image"


def test_every_writer_of_a_description_is_sanitised(app_ctx):
    """The catalog service cleans what the Open API and the demo seed give it too."""
    from app.catalog.services import ProductInput, SkuInput, create_product

    product = create_product(
        ProductInput(
            title="接口商品",
            description='<p>好<img src="x" onerror="alert(1)"><script>alert(2)</script></p>'
            '<a href="javascript:alert(3)">点我</a>',
            skus=[SkuInput(specs={}, price_fen=100)],
        )
    )
    db.session.commit()
    assert product.description == "<p>好</p>点我"
