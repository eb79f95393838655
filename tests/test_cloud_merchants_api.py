"""Ordering merchants over HTTP: the merchant centre pages, ``/api/v1/merchant/...``, the
Open API for levels, prices and merchants, and who may see what."""

from __future__ import annotations

import pytest

from app.catalog.models import Sku
from app.cloud.models import MerchantOrder, OrderingMerchant
from app.core.models import StatusChange
from app.extensions import db
from app.orders.models import Order
from app.orders.shipping import ship_order
from tests.support.api import error_of
from tests.support.cloud import (
    differences,
    levels,
    merchant,
    merchant_order,
    three_level_chain,
)
from tests.support.commissions import customer_of, pay, place
from tests.support.openapi import bearer_caller
from tests.support.orders import sign_in
from tests.support.pay import fresh

CUSTOMER = {
    "name": "李四",
    "phone": "13900000000",
    "district_code": "440305",
    "detail": "科技园2号",
}


@pytest.fixture
def token(runner, app_ctx) -> str:
    result = runner.invoke(args=["create-api-token", "erp"])
    assert result.exit_code == 0, result.output
    return result.output.strip()


@pytest.fixture
def api(client, token):
    return bearer_caller(client, token)


# --- customer side --------------------------------------------------------------------------


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_place_order_at_level_price_over_the_api_then_see_it_shipped(app, make, client, login_as):
    levels()
    top, middle, low = three_level_chain(make)
    sku_id = make.product("保温杯", price_fen=10000, stock=5).skus[0].id
    headers = sign_in(client, login_as, low.distributor.user)

    me = client.get("/api/v1/merchant/me").get_json()
    assert (me["level"], me["level_name"], me["parent_level"]) == (3, "市代", 2)
    prices = client.get("/api/v1/merchant/prices").get_json()
    row = next(i for i in prices["items"] if i["sku_id"] == sku_id)
    assert (row["retail_fen"], row["price_fen"], row["stock"]) == (10000, 8000, 5)

    body = {"items": [{"sku_id": sku_id, "quantity": 2}], **CUSTOMER, "remark": "尽快发货"}
    res = client.post("/api/v1/merchant/orders", json=body, headers=headers)
    assert res.status_code == 201, res.get_data(as_text=True)
    order = res.get_json()
    assert order["items_fen"] == 16000 and order["receiver"]["district"] == "南山区"
    assert fresh(Sku, sku_id).stock == 3
    assert db.session.get(MerchantOrder, order["id"]).merchant_id == low.id
    # Pay through the shop's own pay endpoint (it is the merchant's order).
    assert client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers).status_code == 200

    paid = pay(fresh(Order, order["id"]))
    assert differences(paid.id) == {middle.distributor_id: 2000, top.distributor_id: 2000}
    ship_order(paid, "顺丰", "SF0001", "staff:1")
    db.session.commit()
    listed = client.get("/api/v1/merchant/orders").get_json()["items"]
    assert [(o["own"], o["customer"], o["tracking_number"]) for o in listed] == [
        (True, "李四", "SF0001")
    ]
    page = client.get("/merchant/orders").get_data(as_text=True)
    assert "SF0001" in page and "李四" in page


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"phone": "12"}, 400, "invalid_phone"),
        ({"district_code": "999999"}, 400, "invalid_district"),
        ({"items": [{"sku_id": 999999, "quantity": 1}]}, 409, "unavailable"),
        ({"items": [{"sku_id": 1, "quantity": 0}]}, 422, "validation_error"),
        ({"extra": 1}, 422, "validation_error"),
    ],
)
def test_merchant_order_validation(app, make, client, login_as, change, status, code):
    levels()
    shop = merchant(make, 5)
    sku_id = make.product(price_fen=10000).skus[0].id
    headers = sign_in(client, login_as, shop.distributor.user)
    body = {"items": [{"sku_id": sku_id, "quantity": 1}], **CUSTOMER, **change}
    error_of(client.post("/api/v1/merchant/orders", json=body, headers=headers), status, code)


def test_non_merchants_and_anonymous_are_refused(app, make, client, login_as):
    assert client.get("/api/v1/merchant/me").status_code == 401
    headers = sign_in(client, login_as, make.user())
    error_of(client.get("/api/v1/merchant/me"), 403, "not_merchant")
    error_of(client.get("/api/v1/merchant/orders"), 403, "not_merchant")
    body = {"items": [{"sku_id": 1, "quantity": 1}], **CUSTOMER}
    error_of(
        client.post("/api/v1/merchant/orders", json=body, headers=headers), 403, "not_merchant"
    )
    assert "你还不是订货商" in client.get("/merchant").get_data(as_text=True)
    assert client.get("/merchant/orders").status_code == 404


def test_a_merchant_never_sees_another_merchants_orders_or_earnings(app, make, client, login_as):
    levels()
    _top, middle, low = three_level_chain(make)
    other = merchant(make, 3, middle, nickname="另一个市代")
    sku_id = make.product(price_fen=10000, stock=50).skus[0].id
    own = merchant_order(low, sku_id)
    retail = pay(place(make, customer_of(make, low.distributor, nickname="王五"), price_fen=10000))
    pay(own)
    # The other L3 (same parent) sees none of it.
    sign_in(client, login_as, other.distributor.user)
    assert client.get("/api/v1/merchant/orders").get_json()["items"] == []
    for path in ("/merchant/orders", "/merchant/earnings"):
        text = client.get(path).get_data(as_text=True)
        assert own.number not in text and retail.number not in text
    # The low merchant sees both, the customer's name masked.
    sign_in(client, login_as, low.distributor.user)
    listed = {o["number"]: o for o in client.get("/api/v1/merchant/orders").get_json()["items"]}
    assert set(listed) == {own.number, retail.number}
    assert listed[retail.number]["customer"] == "王**" and not listed[retail.number]["own"]
    earnings = client.get("/merchant/earnings").get_data(as_text=True)
    assert retail.number in earnings and "零售价 ¥100.00 − 市代价 ¥80.00" in earnings
    # Its parent sees its own gap for both orders in its earnings, not the orders list.
    sign_in(client, login_as, middle.distributor.user)
    assert client.get("/api/v1/merchant/orders").get_json()["items"] == []
    assert "市代价 ¥80.00 − 省代价 ¥70.00" in client.get("/merchant/earnings").get_data(
        as_text=True
    )


def test_centre_pages_render(app, make, client, login_as):
    levels()
    _top, middle, _low = three_level_chain(make)
    make.product("保温杯", price_fen=10000, stock=7)
    sign_in(client, login_as, middle.distributor.user)
    home = client.get("/merchant").get_data(as_text=True)
    assert "省代（2级）" in home and "上级：总代（1级）" in home
    prices = client.get("/merchant/prices").get_data(as_text=True)
    assert "¥70.00" in prices and "库存 7" in prices
    team = client.get("/merchant/team").get_data(as_text=True)
    assert "市代（3级）" in team
    new = client.get("/merchant/orders/new").get_data(as_text=True)
    assert "data-merchant-submit" in new and "¥70.00" in new


# --- Open API -------------------------------------------------------------------------------


LEVELS = [
    {"level": 1, "name": "总代", "discount_bp": 4000},
    {"level": 2, "name": "省代", "discount_bp": 3000},
    {"level": 3, "name": "市代", "discount_bp": 2000},
]


def test_open_api_levels_and_prices(app, make, api):
    sku_id = make.product("保温杯", price_fen=10000).skus[0].id
    res = api("put", "/merchant-levels", json={"levels": LEVELS, "precedence": "both"})
    assert res.status_code == 200, res.get_data(as_text=True)
    body = res.get_json()
    assert body["precedence"] == "both"
    row = next(p for p in body["prices"] if p["sku_id"] == sku_id)
    assert row["prices"] == {"1": 6000, "2": 7000, "3": 8000}
    # A set price that breaks the order is refused, naming the SKU; nothing changes.
    bad = {"levels": LEVELS, "prices": [{"level": 2, "sku_id": sku_id, "price_fen": 5000}]}
    error = error_of(api("put", "/merchant-levels", json=bad), 422, "price_order")
    assert "保温杯" in error["message"]
    ok = {"levels": LEVELS, "prices": [{"level": 2, "sku_id": sku_id, "price_fen": 6500}]}
    row = next(p for p in api("put", "/merchant-levels", json=ok).get_json()["prices"])
    assert row["prices"]["2"] == 6500 and row["set_levels"] == [2]
    assert api("get", "/merchant-levels").get_json()["levels"][0]["name"] == "总代"
    error_of(api("put", "/merchant-levels", json={"levels": []}), 422, "validation_error")
    error_of(
        api("put", "/merchant-levels", json={"levels": LEVELS, "precedence": "x"}),
        422,
        "validation_error",
    )
    assert api("get", "/merchant-levels", headers={"Authorization": ""}).status_code == 401


def test_open_api_merchants_create_approve_patch(app, make, api):
    api("put", "/merchant-levels", json={"levels": LEVELS})
    top_user, low_user = make.user(nickname="总代"), make.user(nickname="市代")
    res = api("post", "/merchants", json={"user_id": top_user.id, "level": 1})
    assert res.status_code == 201, res.get_data(as_text=True)
    top = res.get_json()
    res = api(
        "post",
        "/merchants",
        json={"user_id": low_user.id, "level": 3, "parent_id": top["id"], "status": "pending"},
    )
    low = res.get_json()
    assert low["status"] == "pending"
    error_of(
        api("post", "/merchants", json={"user_id": low_user.id, "level": 3}),
        409,
        "already_merchant",
    )
    error_of(api("post", "/merchants", json={"user_id": 999999, "level": 3}), 404, "not_found")
    assert api("post", f"/merchants/{low['id']}/approve").get_json()["status"] == "active"
    error_of(api("post", f"/merchants/{low['id']}/approve"), 409, "invalid_transition")
    # Parent must be higher; moving the top under its child is refused.
    error_of(
        api("patch", f"/merchants/{top['id']}", json={"parent_id": low["id"]}),
        422,
        "parent_level",
    )
    res = api("patch", f"/merchants/{low['id']}", json={"level": 2, "parent_id": None})
    assert (res.get_json()["level"], res.get_json()["parent_id"]) == (2, None)
    audited = db.session.query(StatusChange).filter_by(subject="merchant", subject_id=low["id"])
    assert {c.to_status for c in audited} >= {"pending", "active", "level:2", "parent:-"}
    listed = api("get", "/merchants?status=active&level=2").get_json()
    assert [m["id"] for m in listed["items"]] == [low["id"]]
    error_of(api("patch", "/merchants/999999", json={"level": 2}), 404, "not_found")
    assert db.session.get(OrderingMerchant, low["id"]) is not None
