"""Customer surfaces of issue 17 over HTTP: cart ticks, 全选, 编辑 deletes, 失效 lines,
checkout of ticked lines only, the badge count, add-to-cart kept across the WeChat sign-in,
the WeChat profile on 我的, 联系客服, recent and hot searches."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import requests
from PIL import Image
from sqlalchemy import select

from app.accounts.models import User
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import CartItem
from app.shop.models import CustomerService, SearchTerm
from tests.support.admin import login_staff, post, text
from tests.support.oauth import local, pick_fan, start_login
from tests.support.orders import sign_in
from tests.support.servers import WECHAT_UA


def cart_of(client) -> dict:
    res = client.get("/api/v1/cart")
    assert res.status_code == 200, text(res)
    return res.get_json()


def lines_by_sku(cart: dict) -> dict[int, dict]:
    return {line["sku_id"]: line for line in cart["items"]}


# --- cart ---------------------------------------------------------------------------------


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_ticks_decide_totals_and_checkout(make, client, login_as):
    user = make.user()
    tea = make.product(title="龙井", price_fen=3000).skus[0]
    cup = make.product(title="茶杯", price_fen=1000).skus[0]
    headers = sign_in(client, login_as, user)
    for sku in (tea, cup):
        res = client.post("/api/v1/cart/items", json={"sku_id": sku.id}, headers=headers)
        assert res.status_code == 200
    assert cart_of(client)["items_fen"] == 4000 and cart_of(client)["all_selected"]

    res = client.put(
        "/api/v1/cart/selection", json={"sku_ids": [cup.id], "selected": False}, headers=headers
    )
    assert res.status_code == 200
    body = res.get_json()
    assert body["items_fen"] == 3000 and body["selected_count"] == 1
    assert not body["all_selected"] and body["count"] == 2  # the badge counts every unit
    assert not lines_by_sku(body)[cup.id]["selected"]

    page = text(client.get("/checkout"))
    assert "龙井" in page and "茶杯" not in page  # only the ticked line is bought
    cart_page = text(client.get("/cart"))
    assert "去结算(1)" in cart_page and 'class="tabbar"' in cart_page

    # 全选 off, then on
    res = client.put("/api/v1/cart/selection", json={"selected": False}, headers=headers)
    assert res.get_json()["items_fen"] == 0 and "请勾选要结算的商品" in text(client.get("/cart"))
    res = client.put("/api/v1/cart/selection", json={"selected": True}, headers=headers)
    assert res.get_json()["items_fen"] == 4000 and res.get_json()["all_selected"]

    # adding an unticked SKU again ticks it
    client.put(
        "/api/v1/cart/selection", json={"sku_ids": [tea.id], "selected": False}, headers=headers
    )
    client.post("/api/v1/cart/items", json={"sku_id": tea.id}, headers=headers)
    assert lines_by_sku(cart_of(client))[tea.id]["selected"]


def test_edit_mode_deletes_several_and_only_own_lines(make, client, login_as, app):
    me, other = make.user(), make.user()
    skus = [make.product(price_fen=500).skus[0] for _ in range(3)]
    db.session.add(CartItem(user_id=other.id, sku_id=skus[0].id, quantity=1))
    db.session.commit()
    headers = sign_in(client, login_as, me)
    for sku in skus:
        client.post("/api/v1/cart/items", json={"sku_id": sku.id}, headers=headers)
    res = client.post(
        "/api/v1/cart/remove", json={"sku_ids": [skus[0].id, skus[1].id]}, headers=headers
    )
    assert res.status_code == 200
    assert [line["sku_id"] for line in res.get_json()["items"]] == [skus[2].id]
    with app.app_context():  # the other customer's cart is untouched
        assert db.session.scalar(select(CartItem.sku_id).where(CartItem.user_id == other.id)) == (
            skus[0].id
        )


def test_bad_cart_bodies_are_refused(make, client, login_as):
    headers = sign_in(client, login_as, make.user())
    for path, method, body in (
        ("/api/v1/cart/remove", "post", {"sku_ids": []}),
        ("/api/v1/cart/remove", "post", {"sku_ids": [2**31]}),
        ("/api/v1/cart/remove", "post", {"sku_ids": "1"}),
        ("/api/v1/cart/selection", "put", {"selected": "yes"}),
        ("/api/v1/cart/selection", "put", {"sku_ids": [True], "selected": True}),
    ):
        res = getattr(client, method)(path, json=body, headers=headers)
        assert res.status_code in (400, 422), (path, body, text(res))
        assert res.get_json()["error"]["code"]
    anonymous = client.application.test_client()
    assert anonymous.put("/api/v1/cart/selection", json={"selected": True}).status_code in (
        400,
        401,
    )


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_invalid_lines_are_shown_apart_and_never_bought(make, client, login_as):
    user = make.user()
    good = make.product(title="在售好茶", price_fen=2000).skus[0]
    gone = make.product(title="下架旧茶", price_fen=900).skus[0]
    empty = make.product(title="售罄新茶", price_fen=900, stock=1).skus[0]
    headers = sign_in(client, login_as, user)
    for sku in (good, gone, empty):
        client.post("/api/v1/cart/items", json={"sku_id": sku.id}, headers=headers)
    gone.product.on_shelf = False
    empty.stock = 0
    db.session.commit()

    cart = cart_of(client)
    assert cart["items_fen"] == 2000 and cart["all_selected"]  # 失效 lines don't count
    assert lines_by_sku(cart)[gone.id]["invalid"] and lines_by_sku(cart)[empty.id]["invalid"]
    page = text(client.get("/cart"))
    section = page.split('aria-label="失效商品"', 1)[1]
    assert "失效商品 2 件" in section and "下架旧茶" in section and "售罄新茶" in section
    assert "在售好茶" not in section
    checkout = text(client.get("/checkout"))
    payload = re.search(r'id="checkout-data">(.*?)</script>', checkout, re.S)
    assert payload
    assert re.findall(r'"sku_id":\s*(\d+)', payload[1]) == [str(good.id)]


def test_badge_count_is_never_cached(make, client, login_as):
    anonymous = client.get("/cart/count")
    assert anonymous.get_json() == {"count": 0}
    assert anonymous.headers["Cache-Control"] == "no-store"
    user = make.user()
    sku = make.product().skus[0]
    headers = sign_in(client, login_as, user)
    client.post("/api/v1/cart/items", json={"sku_id": sku.id, "quantity": 3}, headers=headers)
    assert client.get("/cart/count").get_json() == {"count": 3}
    home = text(client.get("/"))
    # the cached tab page carries an empty badge; cart-badge.js fills it from /cart/count
    assert '购物车<i class="badge" data-cart-badge hidden></i>' in home and "cart-badge.js" in home


def _intent(client, sku_id, quantity=1, token=None):
    token = token or client.get("/cart/session?intent=1").get_json()["csrf_token"]
    return client.post(
        "/cart/intent",
        json={"sku_id": sku_id, "quantity": quantity},
        headers={"X-CSRFToken": token},
    )


def test_signed_out_add_to_cart_is_added_after_sign_in(app, make, client, sandbox):
    product = make.product(title="白瓷杯", specs={"颜色": ["青瓷", "白瓷"]}, stock=5)
    white = next(s for s in product.skus if s.specs["颜色"] == "白瓷")
    assert client.get("/cart/session").get_json() == {"signed_in": False}

    res = _intent(client, white.id, 2)
    assert res.status_code == 200, text(res)
    login_url = res.get_json()["login_url"]
    assert login_url == "/login?next=/cart/intent"

    _, authorize, _ = start_login(client, login_url.split("?", 1)[1])
    back = client.get(
        local(pick_fan(sandbox, authorize, "先逛后登")), headers={"User-Agent": WECHAT_UA}
    )
    assert back.headers["Location"] == "/cart/intent"
    done = client.get("/cart/intent")
    assert done.status_code == 302
    assert done.headers["Location"] == f"/product/{product.id}?added=1"
    cart = cart_of(client)
    assert [(line["sku_id"], line["quantity"]) for line in cart["items"]] == [(white.id, 2)]
    # replayed once only
    assert client.get("/cart/intent").headers["Location"] == "/cart"
    assert cart_of(client)["count"] == 2


def test_intent_refuses_bad_input_and_forged_requests(make, client):
    sku = make.product().skus[0]
    off = make.product(on_shelf=False).skus[0]
    token = client.get("/cart/session?intent=1").get_json()["csrf_token"]
    for sku_id, quantity in ((2**31, 1), (True, 1), ("1", 1), (sku.id, 0), (sku.id, 10**6)):
        res = _intent(client, sku_id, quantity, token)
        assert res.status_code == 400 and res.get_json()["error"]["code"] == "unavailable"
    assert _intent(client, off.id, 1, token).status_code == 409
    forged = client.post("/cart/intent", json={"sku_id": sku.id}, headers={"X-CSRFToken": "forged"})
    assert forged.status_code == 400
    with client.session_transaction() as session:
        assert "cart_intent" not in session


def test_intent_for_a_sku_gone_meanwhile_shows_why(make, client, login_as):
    sku = make.product(stock=1).skus[0]
    assert _intent(client, sku.id, 1).status_code == 200
    sku.stock = 0
    db.session.commit()
    login_as(client, make.user())
    res = client.get("/cart/intent")
    assert res.status_code == 409 and "库存不足" in text(res)
    assert client.get("/cart/count").get_json() == {"count": 0}


# --- 我的: WeChat profile -------------------------------------------------------------------


def _sign_in_round(client, sandbox, nickname, query="next=/my"):
    """One trip to the stand-in: returns (authorize scope, where the callback sends us)."""
    _, authorize, _ = start_login(client, query)
    back = client.get(
        local(pick_fan(sandbox, authorize, nickname)), headers={"User-Agent": WECHAT_UA}
    )
    return authorize["scope"], back.headers["Location"]


def test_first_sign_in_takes_the_wechat_nickname_and_avatar(app, client, sandbox):
    scope, location = _sign_in_round(client, sandbox, "王小花")
    assert scope == "snsapi_userinfo" and location == "/my"
    page = text(client.get("/my"))
    assert "王小花" in page and "微信用户" not in page
    with app.app_context():
        user = db.session.scalar(select(User).where(User.nickname == "王小花"))
        assert user.avatar_url.startswith("http") and user.profile_refreshed_at is not None
        assert f'src="{user.avatar_url}"' in page

    # the same browser later: silent (snsapi_base), the profile is fresh
    client.post("/logout", data={"csrf_token": _csrf(client)})
    scope, location = _sign_in_round(client, sandbox, "王小花")
    assert scope == "snsapi_base" and location == "/my"


def test_an_old_profile_is_asked_again(app, client, sandbox):
    _sign_in_round(client, sandbox, "老顾客")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.nickname == "老顾客"))
        user.profile_refreshed_at = utcnow() - timedelta(
            days=app.config["WECHAT_PROFILE_REFRESH_DAYS"] + 1
        )
        db.session.commit()
        user_id = user.id
    client.post("/logout", data={"csrf_token": _csrf(client)})
    scope, location = _sign_in_round(client, sandbox, "老顾客")
    assert scope == "snsapi_base"
    assert location == "/login?next=/my&scope=userinfo"  # once more, asking for the profile
    scope, location = _sign_in_round(client, sandbox, "老顾客", location.split("?", 1)[1])
    assert scope == "snsapi_userinfo" and location == "/my"
    with app.app_context():
        fresh = db.session.get(User, user_id)
        assert utcnow() - fresh.profile_refreshed_at < timedelta(minutes=5)


def test_stand_in_answers_userinfo_only_for_the_userinfo_scope(app, client, sandbox):
    _, authorize, _ = start_login(client, "next=/my&scope=userinfo")
    back = pick_fan(sandbox, authorize, "资料测试")
    code = re.search(r"code=([^&]+)", back)[1]
    state = sandbox.server.app.extensions["wechat_sandbox"]
    token = requests.get(
        f"{sandbox.url}/sns/oauth2/access_token",
        params={
            "appid": state.appid,
            "secret": app.config["WECHAT_SECRET"],
            "code": code,
            "grant_type": "authorization_code",
        },
        timeout=5,
    ).json()
    info = requests.get(
        f"{sandbox.url}/sns/userinfo",
        params={"access_token": token["access_token"], "openid": token["openid"], "lang": "zh_CN"},
        timeout=5,
    ).json()
    assert info["nickname"] == "资料测试" and info["headimgurl"].startswith("http")


def _csrf(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', text(client.get("/logout")))[1]


# --- 联系客服 ---------------------------------------------------------------------------------


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 120), (20, 120, 60)).save(buffer, "PNG")
    return buffer.getvalue()


def test_contact_shows_what_the_owner_set(make, client, login_as, app):
    customer = make.user(nickname="阿芳")
    login_as(client, customer)
    page = text(client.get("/my"))
    assert "即将上线" not in page and "商家暂未设置联系方式" in page

    owner_client = app.test_client()
    login_staff(owner_client, make.staff(role="owner"))
    res = post(
        owner_client,
        "/admin/settings/service",
        {
            "phone": "400-123-4567",
            "wechat_id": "shop_kefu01",
            "kefu_enabled": "1",
            "kefu_note": "工作日 9:00-18:00 回复",
            "qr_image": (io.BytesIO(_png()), "kefu.png"),
        },
        token_from="/admin/settings/service",
        content_type="multipart/form-data",
    )
    assert res.status_code == 302, text(res)
    page = text(client.get("/my"))
    assert 'href="tel:400-123-4567"' in page and 'data-copy="shop_kefu01"' in page
    assert "工作日 9:00-18:00 回复" in page
    with app.app_context():
        qr = db.session.get(CustomerService, 1).qr_image
    media = client.get(f"/media/{qr}")
    assert qr.endswith(".png") and media.status_code == 200
    media.close()


def test_contact_settings_refuse_bad_input_and_non_owners(make, app):
    owner_client = app.test_client()
    login_staff(owner_client, make.staff(role="owner"))
    res = post(
        owner_client,
        "/admin/settings/service",
        {"wechat_id": "1bad id"},
        token_from="/admin/settings/service",
    )
    assert res.status_code == 422 and "微信号需 6-20 位" in text(res)
    assert 'aria-invalid="true"' in text(res)
    res = post(
        owner_client,
        "/admin/settings/service",
        {"qr_image": (io.BytesIO(b"not an image"), "x.png")},
        token_from="/admin/settings/service",
        content_type="multipart/form-data",
    )
    assert res.status_code == 422
    with app.app_context():
        assert db.session.get(CustomerService, 1) is None
    staff_client = app.test_client()
    login_staff(staff_client, make.staff())
    assert staff_client.get("/admin/settings/service").status_code == 403


# --- search -------------------------------------------------------------------------------


@pytest.mark.postgresql  # search SQL
def test_recent_and_hot_searches(make, client, login_as, app):
    make.product(title="西湖龙井")
    make.product(title="安吉白茶")
    me, other = make.user(), make.user()
    min_count = app.config["SEARCH_HOT_MIN_COUNT"]
    login_as(client, me)
    for _ in range(min_count):
        client.get("/search?q=龙井")
    client.get("/search?q=白茶")
    client.get("/search?q=咖啡机")  # nothing found: never hot
    client.get("/search?q=龙井&page=2")  # paging is not another search

    with app.app_context():
        counts = dict(db.session.execute(select(SearchTerm.term, SearchTerm.count)).all())
    assert counts == {"龙井": min_count, "白茶": 1}

    page = text(client.get("/search"))
    recent = page.split('class="term-list recent"', 1)[1].split("</div>", 1)[0]
    assert re.findall(r">([^<]+)</a>", recent) == ["咖啡机", "白茶", "龙井"]
    hot = page.split('class="term-list hot"', 1)[1].split("</div>", 1)[0]
    assert re.findall(r">([^<]+)</a>", hot) == ["龙井"]

    others = app.test_client()
    login_as(others, other)
    page = text(others.get("/search"))
    assert "最近搜索" not in page and "热门搜索" in page  # recent ones are per customer

    token = re.search(r'name="csrf_token" value="([^"]+)"', text(client.get("/search")))[1]
    res = client.post("/search/recent/clear", data={"csrf_token": token})
    assert res.status_code == 302 and "最近搜索" not in text(client.get("/search"))


def test_no_result_page_suggests_products(make, client):
    make.product(title="推荐好物", featured=True)
    page = text(client.get("/search?q=不存在的东西"))
    assert "没有找到“不存在的东西”相关的商品" in page
    assert "为你推荐" in page and "推荐好物" in page
    assert "最近搜索" not in text(client.get("/search"))  # nobody signed in
