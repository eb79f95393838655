"""Posters through the app: the image route, the 推广海报 page and its job, the API, the
cache (identical bytes, ETag/304, a new poster on a price or template change, the size
bound), avatars that fail to download, the QR codes (the official account's parametric
code, the share-link fallback, the product link), and the admin templates."""

from __future__ import annotations

import io
import logging
import socket
import threading
from pathlib import Path

import pytest
from PIL import Image
from rq.job import Job
from sqlalchemy import select

from app.catalog.models import ProductImage, Sku
from app.core.redis import get_redis
from app.distribution.centre import product_share_url, share_url
from app.distribution.distributors import create_distributor
from app.extensions import db
from app.posters import avatars, cache, services
from app.posters.render import MAX_BYTES
from app.wechat.models import DistributorQrcode
from jobs.posters import poster_job_id, render_poster
from tests.support.poster import decode_qr, open_jpeg
from tests.support.servers import free_port

RED = (200, 30, 40)


def _png(colour=RED, size=(300, 300)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def seller(make):
    """An active distributor (and its customer account)."""
    user = make.user(nickname="小美的好物")
    distributor = create_distributor(user.id, None)
    db.session.commit()
    return distributor


@pytest.fixture
def product(make, app):
    """An on-shelf product with a picture file under UPLOAD_DIR."""
    row = make.product("法式碎花雪纺连衣裙 收腰显瘦夏季新款", price_fen=15900)
    Path(app.config["UPLOAD_DIR"], "poster-test.png").write_bytes(_png((120, 170, 220)))
    db.session.add(ProductImage(product_id=row.id, filename="poster-test.png", sort=0))
    db.session.commit()
    return row


@pytest.fixture
def signed_in(client, login_as, seller):
    login_as(client, seller.user)
    return client


# --- the image route and the QR codes ----------------------------------------------------


def test_shop_poster_carries_the_distributors_parametric_qr_code(app, signed_in, seller):
    response = signed_in.get("/distributor/posters/shop.jpg")
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert len(response.data) < MAX_BYTES
    assert open_jpeg(response.data).size == (750, 1334)
    code = db.session.scalar(
        select(DistributorQrcode).where(DistributorQrcode.distributor_id == seller.id)
    )
    assert code is not None and code.scene == f"d:{seller.code}"
    assert decode_qr(response.data) == code.url  # scanning follows the account and binds


def test_shop_poster_falls_back_to_the_share_link_when_wechat_fails(
    app, signed_in, seller, monkeypatch, caplog
):
    monkeypatch.setitem(app.config, "WECHAT_API_BASE", f"http://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING, logger="app.posters.services"):
        response = signed_in.get("/distributor/posters/shop.jpg")
    assert response.status_code == 200
    assert decode_qr(response.data) == share_url(app.config["PUBLIC_BASE_URL"], seller.code)
    assert "official account QR unavailable" in caplog.text


def test_product_poster_qr_is_the_product_link_with_ref(app, signed_in, seller, product):
    response = signed_in.get(f"/distributor/posters/product.jpg?product_id={product.id}")
    assert response.status_code == 200
    expected = product_share_url(app.config["PUBLIC_BASE_URL"], seller.code, product.id)
    assert decode_qr(response.data) == expected


def test_bad_requests_are_chinese_4xx(signed_in, product):
    assert signed_in.get("/distributor/posters/other.jpg").status_code == 404
    assert signed_in.get("/distributor/posters/product.jpg").status_code == 404
    assert signed_in.get("/distributor/posters/product.jpg?product_id=abc").status_code == 404
    missing = signed_in.get("/distributor/posters/product.jpg?product_id=999999")
    assert missing.status_code == 404
    assert "商品不存在" in missing.get_data(as_text=True)
    product.on_shelf = False
    db.session.commit()
    url = f"/distributor/posters/product.jpg?product_id={product.id}"
    assert signed_in.get(url).status_code == 404


# --- caching -----------------------------------------------------------------------------


def test_second_request_is_the_same_bytes_with_a_strong_etag_and_304(signed_in, product):
    url = f"/distributor/posters/product.jpg?product_id={product.id}"
    first = signed_in.get(url)
    second = signed_in.get(url)
    assert first.data == second.data
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "private, no-cache"
    not_modified = signed_in.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b""
    # The versioned URL the pages use may be kept for a day.
    versioned = signed_in.get(f"{url}&v={etag.strip(chr(34))}")
    assert "immutable" in versioned.headers["Cache-Control"]
    # the poster and the mini-program code on it (app/posters/wxacode.py), once each
    assert cache.stats()["count"] == 2


def test_a_price_change_makes_a_new_poster(signed_in, product):
    url = f"/distributor/posters/product.jpg?product_id={product.id}"
    before = signed_in.get(url)
    sku = db.session.scalar(select(Sku).where(Sku.product_id == product.id))
    sku.price_fen = 9900
    db.session.commit()
    after = signed_in.get(url)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.data != before.data
    assert signed_in.get(url, headers={"If-None-Match": before.headers["ETag"]}).status_code == 200


def test_a_template_change_makes_a_new_poster(signed_in):
    before = signed_in.get("/distributor/posters/shop.jpg")
    template, _ = services.save_template(
        None,
        services.TemplateInput("shop", "蓝色", "minimal", "#1E5AA8", "#FFFFFF", "新店开业"),
    )
    services.activate_template(template)
    db.session.commit()
    after = signed_in.get("/distributor/posters/shop.jpg")
    assert after.headers["ETag"] != before.headers["ETag"]
    pixel = open_jpeg(after.data).getpixel((20, 700))
    assert abs(pixel[2] - 0xA8) < 12 and pixel[0] < 60  # the new background colour
    template.slogan = "改了宣传语"
    services.save_template(
        template,
        services.TemplateInput("shop", "蓝色", "minimal", "#1E5AA8", "#FFFFFF", "改了宣传语"),
    )
    db.session.commit()
    assert signed_in.get("/distributor/posters/shop.jpg").headers["ETag"] != after.headers["ETag"]


def test_the_cache_evicts_least_recently_used_beyond_its_bound(app, monkeypatch, app_ctx):
    monkeypatch.setitem(app.config, "POSTER_CACHE_MAX_BYTES", 250)
    for n in range(5):
        cache.put(f"k{n}", bytes(100))
        if n == 1:
            assert cache.get("k0") is not None  # k0 used again: k1 is now the oldest
    stats = cache.stats()
    assert stats["bytes"] <= 250 and stats["count"] == 2
    assert cache.get("k4") is not None and cache.get("k3") is not None
    assert cache.get("k1") is None and cache.get("k0") is None
    assert not get_redis().exists(cache.PREFIX + "k1")


# --- avatars -----------------------------------------------------------------------------


@pytest.fixture
def silent_server():
    """A TCP server that accepts and never answers (an avatar host that hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/avatar.jpg"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def _shop_poster_with_avatar(client, seller, url: str) -> bytes:
    seller.user.avatar_url = url
    db.session.commit()
    response = client.get("/distributor/posters/shop.jpg")
    assert response.status_code == 200
    return response.data


def test_avatar_failures_degrade_to_the_placeholder(
    app, signed_in, seller, live_server, sandbox, silent_server, monkeypatch
):
    monkeypatch.setattr(avatars, "TIMEOUT", (0.5, 0.5))
    placeholder = _shop_poster_with_avatar(signed_in, seller, "")
    Path(app.config["UPLOAD_DIR"], "not-an-image.png").write_bytes(b"<html>hello</html>")
    failing = {
        "404": f"{live_server.url}/media/no-such-avatar.png",
        "not an image (SVG)": f"{sandbox.url}/_sandbox/avatar/o_test_x.svg",
        "html named .png": f"{live_server.url}/media/not-an-image.png",
        "timeout": silent_server,
        "refused": f"http://127.0.0.1:{free_port()}/a.jpg",
        "not http": "file:///etc/passwd",
    }
    for why, url in failing.items():
        poster = _shop_poster_with_avatar(signed_in, seller, url)
        assert poster == placeholder, why  # same pixels as no avatar at all


def test_a_real_avatar_is_drawn(app, signed_in, seller, live_server):
    Path(app.config["UPLOAD_DIR"], "avatar-ok.png").write_bytes(_png(RED))
    url = f"{live_server.url}/media/avatar-ok.png"
    poster = open_jpeg(_shop_poster_with_avatar(signed_in, seller, url))
    r, g, b = poster.getpixel((375, 300))  # the classic shop layout's avatar centre
    assert abs(r - RED[0]) < 20 and g < 60 and b < 70
    assert get_redis().exists(avatars._key(url))  # kept for the next poster


def test_an_oversized_avatar_is_refused(app, live_server, app_ctx, monkeypatch):
    monkeypatch.setattr(avatars, "MAX_BYTES", 1000)
    Path(app.config["UPLOAD_DIR"], "big-avatar.png").write_bytes(_png(size=(600, 600)) * 3)
    assert avatars.fetch_avatar(f"{live_server.url}/media/big-avatar.png") is None


# --- the 推广海报 page and its job --------------------------------------------------------


def test_page_queues_the_render_job_then_shows_the_poster(app, signed_in, seller):
    page = signed_in.get("/distributor/posters")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "推广海报" in html and "data-poster-wait" in html and "海报生成中" in html
    plan = services.plan_poster(seller, "shop")
    job = Job.fetch(poster_job_id(plan.key), connection=get_redis())
    assert job.func_name == "jobs.posters.render_poster"
    status = signed_in.get("/distributor/posters/status?kind=shop").get_json()
    assert status["ready"] is False
    assert render_poster(*job.args) == plan.key  # what the worker runs
    status = signed_in.get("/distributor/posters/status?kind=shop").get_json()
    assert status["ready"] is True and status["url"].endswith(f"v={plan.key}")
    html = signed_in.get("/distributor/posters").get_data(as_text=True)
    assert "data-poster-wait" not in html and f"v={plan.key}" in html
    assert "长按" in html


def test_page_product_tab_lists_products_and_in_wechat_says_how_to_save(
    signed_in, product, login_as
):
    from tests.support.servers import WECHAT_UA

    response = signed_in.get(
        f"/distributor/posters?kind=product&product_id={product.id}",
        headers={"User-Agent": WECHAT_UA},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert product.title in html and "保存图片" in html
    assert f"product_id={product.id}" in html


def test_centre_links_to_the_poster_page(signed_in):
    assert "/distributor/posters" in signed_in.get("/distributor").get_data(as_text=True)


def test_non_distributors_are_sent_to_join_and_disabled_ones_refused(
    client, login_as, make, seller
):
    stranger = make.user()
    login_as(client, stranger)
    response = client.get("/distributor/posters")
    assert response.status_code == 302 and response.headers["Location"].endswith("/distributor")
    assert client.get("/distributor/posters/shop.jpg").status_code == 302
    seller.status = "disabled"
    db.session.commit()
    login_as(client, seller.user)
    refused = client.get("/distributor/posters/shop.jpg")
    assert refused.status_code == 403
    assert "停用" in refused.get_data(as_text=True)


def test_each_distributor_gets_only_their_own_poster(app, client, login_as, make, product):
    first = create_distributor(make.user(nickname="甲").id, None)
    second = create_distributor(make.user(nickname="乙").id, None)
    db.session.commit()
    url = f"/distributor/posters/product.jpg?product_id={product.id}"
    base = app.config["PUBLIC_BASE_URL"]
    for distributor in (first, second):
        login_as(client, distributor.user)
        data = client.get(url).data
        assert decode_qr(data) == product_share_url(base, distributor.code, product.id)


def test_product_page_has_the_poster_button(client, product):
    html = client.get(f"/product/{product.id}").get_data(as_text=True)
    assert f'data-poster-product="{product.id}"' in html and "生成海报" in html
    assert "js/posters.js" in html


# --- the API -----------------------------------------------------------------------------


def test_api_gives_the_image_url_of_my_poster(app, signed_in, seller, product):
    response = signed_in.get(f"/api/v1/distributor/posters?kind=product&product_id={product.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["kind"] == "product" and body["product_id"] == product.id
    assert body["ready"] is False and body["qr_fallback"] is False
    assert body["url"] == app.config["PUBLIC_BASE_URL"] + body["path"]
    image = signed_in.get(body["path"])
    assert image.status_code == 200 and image.headers["ETag"] == f'"{body["etag"]}"'
    assert "immutable" in image.headers["Cache-Control"]
    again = signed_in.get(f"/api/v1/distributor/posters?kind=product&product_id={product.id}")
    assert again.get_json()["ready"] is True
    shop = signed_in.get("/api/v1/distributor/posters?kind=shop").get_json()
    assert shop["product_id"] is None and "/distributor/posters/shop.jpg" in shop["path"]


def test_api_refusals(client, login_as, make, seller, product):
    url = "/api/v1/distributor/posters"
    assert client.get(f"{url}?kind=shop").status_code == 401
    login_as(client, make.user())
    refused = client.get(f"{url}?kind=shop")
    assert refused.status_code == 404
    assert refused.get_json()["error"]["code"] == "not_distributor"
    login_as(client, seller.user)
    assert client.get(f"{url}?kind=poster").status_code == 422
    assert client.get(url).status_code == 422
    missing = client.get(f"{url}?kind=product")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (422, "product_required")
    unknown = client.get(f"{url}?kind=product&product_id=99999")
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (
        404,
        "product_not_found",
    )
    seller.status = "disabled"
    db.session.commit()
    disabled = client.get(f"{url}?kind=shop")
    assert (disabled.status_code, disabled.get_json()["error"]["code"]) == (
        403,
        "distributor_disabled",
    )


# --- the official account's hook -----------------------------------------------------------


def test_poster_for_fan(app_ctx, seller, make):
    data = services.poster_for_fan(seller.user.openid)
    db.session.commit()
    assert data is not None and open_jpeg(data).size == (750, 1334)
    assert services.poster_for_fan(make.user().openid) is None
    assert services.poster_for_fan("o_nobody") is None
