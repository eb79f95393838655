"""The mini-program door (issue 18 part A): sign-in through jscode2session, bearer tokens
(rotation, revocation), paying with the mini-program's appid, one person across H5 and the
mini-program, binding by ``ref``, and the distributor's mini-program code.

Every WeChat call goes to the stand-in over real HTTP through the shop's own client code.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.accounts.customer_tokens import ACCESS_TTL
from app.accounts.models import CustomerToken, User
from app.accounts.services import sign_in_wechat_user
from app.core.time import utcnow
from app.distribution.binding import bind, current_binding
from app.distribution.distributors import create_distributor
from app.extensions import db
from app.orders.models import PAID, Order
from app.orders.services import ItemRequest, place_order
from app.wechat.sandbox.state import fan_openid, fan_unionid
from config import SANDBOX_APPID, SANDBOX_MINIAPP_APPID
from tests.support.orders import make_address, place
from tests.support.pay import fresh, sandbox_pay, wait_until
from tests.support.wxa import bearer, sandbox_calls, wx_login_code, wxa_sign_in

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_sign_in_gives_a_bearer_token_for_the_json_api(app_ctx, client, sandbox):
    tokens = wxa_sign_in(client, sandbox, "小程序甲")
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 7200
    assert tokens["refresh_expires_in"] == 30 * 86400
    me = client.get("/api/v1/me", headers=bearer(tokens))
    assert me.status_code == 200 and me.json["id"] == tokens["user_id"]
    user = db.session.get(User, tokens["user_id"])
    assert user.wxa_openid == fan_openid(SANDBOX_MINIAPP_APPID, "小程序甲")
    assert user.unionid == fan_unionid("小程序甲")
    # stored hashed: the secrets appear nowhere in the table
    row = db.session.scalar(select(CustomerToken).where(CustomerToken.user_id == user.id))
    assert tokens["access_token"] not in (row.access_hash, row.refresh_hash)
    # no token, a wrong one, or a merchant-looking one: not signed in
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer ca_nope"}).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer sk_x"}).status_code == 401


@pytest.mark.postgresql  # once-only
def test_a_code_works_once_and_bad_input_is_refused(client, sandbox):
    code = wx_login_code(sandbox, "小程序乙")["code"]
    assert client.post("/api/v1/auth/wxa-login", json={"code": code}).status_code == 200
    again = client.post("/api/v1/auth/wxa-login", json={"code": code})
    assert again.status_code == 400 and again.json["error"]["code"] == "invalid_code"
    assert client.post("/api/v1/auth/wxa-login", json={}).status_code == 422
    bad_ref = client.post("/api/v1/auth/wxa-login", json={"code": "x", "ref": "<script>"})
    assert bad_ref.status_code == 422
    assert client.post("/api/v1/auth/wxa-login", data="x").status_code == 415


@pytest.mark.postgresql  # once-only
def test_refresh_rotates_and_revoke_ends_the_pair(app_ctx, client, sandbox):
    first = wxa_sign_in(client, sandbox, "小程序丙")
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200 and second.json["user_id"] == first["user_id"]
    # the old pair no longer works: its refresh token was used, its access token retired
    reuse = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and reuse.json["error"]["code"] == "token_revoked"
    assert client.get("/api/v1/me", headers=bearer(first)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(second.json)).status_code == 200

    out = client.post("/api/v1/auth/revoke", json={"refresh_token": second.json["refresh_token"]})
    assert out.status_code == 200 and out.json["revoked"] is True
    assert client.get("/api/v1/me", headers=bearer(second.json)).status_code == 401
    gone = client.post("/api/v1/auth/refresh", json={"refresh_token": second.json["refresh_token"]})
    assert gone.status_code == 401


def test_an_expired_access_token_is_refused(app_ctx, client, sandbox):
    tokens = wxa_sign_in(client, sandbox, "小程序丁")
    row = db.session.scalar(select(CustomerToken).where(CustomerToken.user_id == tokens["user_id"]))
    row.access_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert timedelta(hours=2) == ACCESS_TTL
    assert client.get("/api/v1/me", headers=bearer(tokens)).status_code == 401
    renewed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert client.get("/api/v1/me", headers=bearer(renewed.json)).status_code == 200


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_place_and_pay_an_order_with_the_mini_program_appid(make, client, sandbox, live_server):
    tokens = wxa_sign_in(client, sandbox, "小程序买家")
    headers = bearer(tokens)  # no CSRF header: a bearer call needs none
    make_address(tokens["user_id"], is_default=True)
    sku = make.product(price_fen=2590, stock=5).skus[0]
    order = place(client, headers, sku.id)
    assert order.status_code in (200, 201), order.json
    order = order.json
    paying = client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers)
    assert paying.status_code == 200, paying.json
    assert paying.json["jsapi"]["appId"] == SANDBOX_MINIAPP_APPID
    tx = sandbox.server.app.extensions["wechat_sandbox_pay"].transactions[order["number"]]
    assert tx.appid == SANDBOX_MINIAPP_APPID
    assert tx.openid == fan_openid(SANDBOX_MINIAPP_APPID, "小程序买家")
    sandbox_pay(sandbox, order["number"])  # the notice comes to the same /pay/notify
    wait_until(lambda: fresh(Order, order["id"]).status == PAID)
    listed = client.get("/api/v1/orders", headers=headers)
    assert [o["id"] for o in listed.json["items"]] == [order["id"]]


def test_h5_customer_keeps_orders_and_binding_in_the_mini_program(make, client, sandbox):
    nickname = "两端同一人"
    h5 = sign_in_wechat_user(fan_openid(SANDBOX_APPID, nickname), fan_unionid(nickname))
    seller = create_distributor(make.user(nickname="推广员").id, None)
    bind(h5.id, seller, "link")
    address = make_address(h5.id, is_default=True)
    sku = make.product(stock=3).skus[0]
    order = place_order(h5.id, [ItemRequest(sku.id, 1)], address.id)
    db.session.commit()

    tokens = wxa_sign_in(client, sandbox, nickname)
    assert tokens["user_id"] == h5.id and tokens["bound_distributor"] is True
    listed = client.get("/api/v1/orders", headers=bearer(tokens)).json["items"]
    assert [o["id"] for o in listed] == [order.id]
    db.session.expire_all()
    user = db.session.get(User, h5.id)
    assert user.openid == fan_openid(SANDBOX_APPID, nickname)  # the H5 openid stays
    assert user.wxa_openid == fan_openid(SANDBOX_MINIAPP_APPID, nickname)
    assert current_binding(h5.id).distributor_id == seller.id
    assert (
        db.session.scalar(select(User.id).where(User.id != h5.id, User.unionid.is_not(None)))
        is None
    )


@pytest.mark.postgresql  # once-only
def test_mini_program_first_then_h5_is_one_person(app_ctx, client, sandbox):
    nickname = "先小程序"
    tokens = wxa_sign_in(client, sandbox, nickname)
    placeholder = db.session.get(User, tokens["user_id"])
    assert placeholder.openid.startswith("wxa:")
    h5 = sign_in_wechat_user(fan_openid(SANDBOX_APPID, nickname), fan_unionid(nickname))
    db.session.commit()
    assert h5.id == tokens["user_id"]
    assert h5.openid == fan_openid(SANDBOX_APPID, nickname)


def test_without_unionid_the_mini_program_openid_finds_the_customer(make, client, sandbox):
    sandbox.server.app.config["SANDBOX_UNIONID"] = False
    try:
        first = wxa_sign_in(client, sandbox, "无unionid")
        second = wxa_sign_in(client, sandbox, "无unionid")
    finally:
        sandbox.server.app.config["SANDBOX_UNIONID"] = True
    assert first["user_id"] == second["user_id"]
    with client.application.app_context():
        assert db.session.get(User, first["user_id"]).unionid is None


def test_ref_binds_like_a_link(make, client, sandbox):
    seller = create_distributor(make.user(nickname="码主").id, None)
    db.session.commit()
    tokens = wxa_sign_in(client, sandbox, "扫码的人", ref=seller.code)
    assert tokens["bound_distributor"] is True
    db.session.rollback()
    binding = current_binding(tokens["user_id"])
    assert binding.distributor_id == seller.id and binding.source == "link"
    # an unknown code is ignored, sign-in still works
    other = wxa_sign_in(client, sandbox, "乱码的人", ref="NOSUCHCODE")
    assert other["bound_distributor"] is False


def test_distributor_gets_a_cached_mini_program_code(make, client, sandbox):
    tokens = wxa_sign_in(client, sandbox, "有码分销员")
    distributor = create_distributor(tokens["user_id"], None)
    db.session.commit()
    before = sandbox_calls(sandbox, "/wxa/getwxacodeunlimit")
    res = client.get("/api/v1/distributor/wxacode", headers=bearer(tokens))
    assert res.status_code == 200 and res.mimetype == "image/png"
    assert res.data.startswith(PNG_MAGIC)
    again = client.get("/api/v1/distributor/wxacode", headers=bearer(tokens))
    assert again.data == res.data
    assert sandbox_calls(sandbox, "/wxa/getwxacodeunlimit") == before + 1  # cached
    not_modified = client.get(
        "/api/v1/distributor/wxacode",
        headers={**bearer(tokens), "If-None-Match": res.headers["ETag"]},
    )
    assert not_modified.status_code == 304
    assert distributor.code  # the scene


def test_a_customer_who_is_not_a_distributor_gets_no_code(client, sandbox):
    tokens = wxa_sign_in(client, sandbox, "普通顾客")
    res = client.get("/api/v1/distributor/wxacode", headers=bearer(tokens))
    assert res.status_code == 403
    assert client.get("/api/v1/distributor/wxacode").status_code == 401


def test_posters_carry_the_mini_program_code_when_configured(make, app):
    from app.posters.services import plan_poster

    with app.app_context():
        distributor = create_distributor(make.user(nickname="海报主").id, None)
        db.session.commit()
        with_code = plan_poster(distributor, "shop")
        assert with_code.content.wxacode is not None
        app.config["WECHAT_MINIAPP_APPID"] = None
        try:
            without = plan_poster(distributor, "shop")
        finally:
            app.config["WECHAT_MINIAPP_APPID"] = SANDBOX_MINIAPP_APPID
        assert without.content.wxacode is None and without.key != with_code.key


@pytest.mark.parametrize("path", ["/api/v1/auth/refresh", "/api/v1/auth/revoke"])
def test_refresh_and_revoke_refuse_garbage(client, path):
    res = client.post(path, json={"refresh_token": "cr_" + "x" * 40})
    assert res.status_code in (200, 401)
    if path.endswith("revoke"):
        assert res.json["revoked"] is False
    assert client.post(path, json={"refresh_token": ""}).status_code == 422


def test_the_centre_poster_page_shows_the_mini_program_code(make, app, login_as):
    with app.app_context():
        user = make.user(nickname="中心分销员")
        create_distributor(user.id, None)
        db.session.commit()
        client = app.test_client()
        login_as(client, user)
        page = client.get("/distributor/posters").get_data(as_text=True)
        assert 'src="/api/v1/distributor/wxacode"' in page
        code = client.get("/api/v1/distributor/wxacode")  # the H5 session cookie works too
        assert code.status_code == 200 and code.data.startswith(PNG_MAGIC)
