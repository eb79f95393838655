"""Customer JSON API of issue 4: regions, addresses, cart, orders, pay, cancel, receipt, refunds.

Every request goes through the real door (Flask's test client with a signed-in session
and the CSRF header the H5 pages send); payments go to the WeChat stand-in over real
HTTP; the stock race runs against the live server with 200 real HTTP clients.
"""

from __future__ import annotations

import copy
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from app.extensions import db
from app.orders.models import PAID, SHIPPED, Address, CartItem, Order, PaymentTransaction, Refund
from app.orders.services import mark_paid
from app.orders.states import move_order
from tests.support.orders import make_address, place, sign_in, stock_of
from tests.support.pay import fresh, sandbox_pay, wait_until

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

ADDRESS = {"name": "张三", "phone": "13800138000", "district_code": "440305", "detail": "科技园1号"}


@pytest.fixture
def buyer(make, client, login_as):
    """(user, csrf headers) of a signed-in customer with one address."""
    user = make.user()
    make_address(user.id, is_default=True)
    return user, sign_in(client, login_as, user)


# --- regions ----------------------------------------------------------------------------------


def test_regions_walk_province_city_district(client):
    provinces = client.get("/api/v1/regions")
    assert provinces.status_code == 200
    assert provinces.json["level"] == "province"
    assert {"code": "440000", "name": "广东省"} in provinces.json["items"]
    assert "public" in provinces.headers["Cache-Control"]

    cities = client.get("/api/v1/regions?parent=440000").json
    assert cities["level"] == "city" and {"code": "440300", "name": "深圳市"} in cities["items"]
    districts = client.get("/api/v1/regions?parent=440300").json
    assert districts["level"] == "district"
    assert {"code": "440305", "name": "南山区"} in districts["items"]
    # municipalities: one city standing for the whole of 北京
    assert client.get("/api/v1/regions?parent=110000").json["items"] == [
        {"code": "110100", "name": "北京市"}
    ]
    # a city without districts is its own single district
    assert client.get("/api/v1/regions?parent=441900").json["items"] == [
        {"code": "441900", "name": "东莞市"}
    ]


@pytest.mark.parametrize(("parent", "status"), [("999999", 404), ("440305", 404), ("44", 422)])
def test_regions_refuse_unknown_parents(client, parent, status):
    res = client.get(f"/api/v1/regions?parent={parent}")
    assert res.status_code == status
    assert res.json["error"]["code"] in ("not_found", "validation_error")


# --- addresses --------------------------------------------------------------------------------


def test_address_create_list_patch_delete(make, client, login_as):
    headers = sign_in(client, login_as, make.user())
    first = client.post("/api/v1/addresses", json=ADDRESS, headers=headers)
    assert first.status_code == 201
    body = first.json
    assert (body["province"], body["city"], body["district"]) == ("广东省", "深圳市", "南山区")
    assert body["is_default"] is True  # the first address is the default

    second = client.post(
        "/api/v1/addresses",
        json={**ADDRESS, "district_code": "110105", "detail": "三里屯路1号"},
        headers=headers,
    ).json
    assert second["city"] == "北京市" and second["is_default"] is False

    res = client.patch(
        f"/api/v1/addresses/{second['id']}",
        json={"is_default": True, "name": "李四"},
        headers=headers,
    )
    assert res.status_code == 200 and res.json["name"] == "李四" and res.json["is_default"]
    listed = client.get("/api/v1/addresses").json["items"]
    assert [a["id"] for a in listed] == [second["id"], body["id"]]
    assert [a["is_default"] for a in listed] == [True, False]

    assert client.delete(f"/api/v1/addresses/{body['id']}", headers=headers).status_code == 204
    assert [a["id"] for a in client.get("/api/v1/addresses").json["items"]] == [second["id"]]


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"phone": "12345"}, 400, "invalid_phone"),
        ({"district_code": "440300"}, 400, "invalid_district"),  # a city, not a district
        ({"district_code": "44030"}, 422, "validation_error"),
        ({"name": ""}, 422, "validation_error"),
        ({"detail": 5}, 422, "validation_error"),
        ({"is_default": "yes"}, 422, "validation_error"),
        ({"province": "火星"}, 422, "validation_error"),  # names come from the code only
    ],
)
def test_address_validation(make, client, login_as, change, status, code):
    headers = sign_in(client, login_as, make.user())
    res = client.post("/api/v1/addresses", json={**ADDRESS, **change}, headers=headers)
    assert res.status_code == status, res.json
    assert res.json["error"]["code"] == code
    assert db.session.scalar(select(func.count(Address.id))) == 0


# --- cart -------------------------------------------------------------------------------------


def test_cart_add_merge_change_remove(make, client, login_as):
    headers = sign_in(client, login_as, make.user())
    sku = make.product(price_fen=2000, stock=5).skus[0]
    res = client.post("/api/v1/cart/items", json={"sku_id": sku.id, "quantity": 2}, headers=headers)
    assert res.status_code == 200
    assert res.json["count"] == 2 and res.json["items_fen"] == 4000
    assert res.json["shipping_fen"] == 1000 and res.json["total_fen"] == 5000
    assert res.json["free_shipping_over_fen"] == 9900

    merged = client.post("/api/v1/cart/items", json={"sku_id": sku.id}, headers=headers).json
    assert merged["items"][0]["quantity"] == 3

    too_many = client.post(
        "/api/v1/cart/items", json={"sku_id": sku.id, "quantity": 3}, headers=headers
    )
    assert too_many.status_code == 409 and too_many.json["error"]["code"] == "sold_out"
    assert client.get("/api/v1/cart").json["items"][0]["quantity"] == 3  # rolled back

    five = client.patch(f"/api/v1/cart/items/{sku.id}", json={"quantity": 5}, headers=headers)
    assert five.json["items_fen"] == 10000 and five.json["shipping_fen"] == 0  # 满¥99包邮

    gone = client.delete(f"/api/v1/cart/items/{sku.id}", headers=headers).json
    assert gone["items"] == [] and gone["total_fen"] == 0
    missing = client.patch(f"/api/v1/cart/items/{sku.id}", json={"quantity": 1}, headers=headers)
    assert missing.status_code == 404


def test_cart_shows_unavailable_lines_without_counting_them(make, client, login_as):
    user = make.user()
    headers = sign_in(client, login_as, user)
    good = make.product(price_fen=1000, stock=5).skus[0]
    off = make.product(price_fen=500, stock=5)
    for sku_id in (good.id, off.skus[0].id):
        client.post("/api/v1/cart/items", json={"sku_id": sku_id}, headers=headers)
    off.on_shelf = False
    db.session.commit()
    cart = client.get("/api/v1/cart").json
    problems = {item["sku_id"]: (item["available"], item["problem"]) for item in cart["items"]}
    assert problems == {good.id: (True, ""), off.skus[0].id: (False, "已下架")}
    assert cart["items_fen"] == 1000


@pytest.mark.parametrize(
    "body",
    [
        {"quantity": 1},
        {"sku_id": "1", "quantity": 1},
        {"sku_id": 1, "quantity": 0},
        {"sku_id": 1, "quantity": 1000},
        {"sku_id": 1, "quantity": 1.5},
        {"sku_id": 2**31, "quantity": 1},
        {"sku_id": 1, "quantity": 1, "price_fen": 1},
    ],
)
def test_cart_validation(make, client, login_as, body):
    headers = sign_in(client, login_as, make.user())
    res = client.post("/api/v1/cart/items", json=body, headers=headers)
    assert res.status_code == 422 and res.json["error"]["code"] == "validation_error"


# --- orders -----------------------------------------------------------------------------------


def test_place_order_reads_prices_on_the_server(make, client, buyer):
    _user, headers = buyer
    sku = make.product(price_fen=3300, stock=10).skus[0]
    client.post("/api/v1/cart/items", json={"sku_id": sku.id, "quantity": 3}, headers=headers)
    res = place(client, headers, sku.id, 3, remark="  请尽快发货 ")
    assert res.status_code == 201, res.json
    order = res.json
    assert order["status"] == "pending_payment" and order["status_text"] == "待付款"
    assert order["number"].isdigit() and len(order["number"]) >= 20
    assert (order["total_fen"], order["shipping_fen"], order["items_fen"]) == (9900, 0, 9900)
    assert order["remark"] == "请尽快发货"
    assert order["receiver"]["district_code"] == "440305"
    [line] = order["lines"]
    assert (line["sku_id"], line["unit_price_fen"], line["quantity"]) == (sku.id, 3300, 3)
    assert order["history"][0]["to_status"] == "pending_payment"
    assert res.headers["Location"].endswith(f"/api/v1/orders/{order['id']}")
    assert stock_of(sku.id) == 7
    assert db.session.scalar(select(func.count(CartItem.id))) == 0  # bought lines leave the cart


def test_sold_out_is_409_and_nothing_is_half_written(make, client, buyer):
    _user, headers = buyer
    plenty = make.product(stock=10).skus[0]
    scarce = make.product(title="限量茶具", stock=1).skus[0]
    body = {
        "items": [{"sku_id": plenty.id, "quantity": 2}, {"sku_id": scarce.id, "quantity": 2}],
        "address_id": db.session.scalar(select(Address.id)),
    }
    res = client.post("/api/v1/orders", json=body, headers=headers)
    assert res.status_code == 409
    assert res.json["error"]["code"] == "sold_out" and "售罄" in res.json["error"]["message"]
    assert (stock_of(plenty.id), stock_of(scarce.id)) == (10, 1)
    assert db.session.scalar(select(func.count(Order.id))) == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "validation_error"),
        ({"items": [], "address_id": 1}, 422, "validation_error"),
        ({"items": [{"sku_id": 1, "quantity": 0}], "address_id": 1}, 422, "validation_error"),
        ({"items": [{"sku_id": 1, "quantity": "2"}], "address_id": 1}, 422, "validation_error"),
        ({"items": [{"sku_id": 1}], "address_id": 1}, 422, "validation_error"),
        ({"items": [{"sku_id": 1, "quantity": 1}]}, 422, "validation_error"),
        (
            {"items": [{"sku_id": 1, "quantity": 1, "price_fen": 1}], "address_id": 1},
            422,
            "validation_error",
        ),
        (
            {"items": [{"sku_id": 1, "quantity": 1}], "address_id": 1, "remark": "长" * 201},
            422,
            "validation_error",
        ),
        ({"items": [{"sku_id": 99999, "quantity": 1}], "address_id": "own"}, 409, "unavailable"),
        (
            {"items": [{"sku_id": "own", "quantity": 1}], "address_id": 99999},
            400,
            "invalid_address",
        ),
    ],
)
def test_order_validation(make, client, buyer, body, status, code):
    _user, headers = buyer
    body = copy.deepcopy(body)
    sku = make.product(stock=5).skus[0]
    own = db.session.scalar(select(Address.id))
    for item in body.get("items", []):
        if item.get("sku_id") == "own":
            item["sku_id"] = sku.id
    if body.get("address_id") == "own":
        body["address_id"] = own
    res = client.post("/api/v1/orders", json=body, headers=headers)
    assert res.status_code == status, res.json
    assert res.json["error"]["code"] == code
    assert stock_of(sku.id) == 5


def test_bodies_must_be_json_objects(make, client, buyer):
    _user, headers = buyer
    assert client.post("/api/v1/orders", data="x", headers=headers).status_code == 415
    res = client.post(
        "/api/v1/orders", data="{", headers={**headers, "Content-Type": "application/json"}
    )
    assert res.status_code == 400 and res.json["error"]["code"] == "invalid_json"
    assert client.post("/api/v1/orders", json=[1], headers=headers).status_code == 400


def test_list_and_filter_own_orders(make, client, buyer, login_as):
    _user, headers = buyer
    sku = make.product(stock=20).skus[0]
    ids = [place(client, headers, sku.id).json["id"] for _ in range(3)]
    assert client.post(f"/api/v1/orders/{ids[0]}/cancel", headers=headers).status_code == 200
    # someone else's order never shows
    other = make.user()
    make_address(other.id)
    other_client = client.application.test_client()
    other_headers = sign_in(other_client, login_as, other)
    place(other_client, other_headers, sku.id)

    everything = client.get("/api/v1/orders").json
    assert [o["id"] for o in everything["items"]] == ids[::-1]
    assert everything["meta"]["total"] == 3
    pending = client.get("/api/v1/orders?status=pending_payment").json["items"]
    assert [o["id"] for o in pending] == ids[:0:-1]
    assert [o["id"] for o in client.get("/api/v1/orders?status=cancelled").json["items"]] == [
        ids[0]
    ]
    assert client.get("/api/v1/orders?status=refund").json["items"] == []
    assert client.get("/api/v1/orders?status=lost").status_code == 422
    assert client.get("/api/v1/orders?per_page=2").json["meta"]["pages"] == 2


def test_cancel_gives_stock_back_once(make, client, buyer):
    _user, headers = buyer
    sku = make.product(stock=4).skus[0]
    order_id = place(client, headers, sku.id, 3).json["id"]
    assert stock_of(sku.id) == 1
    res = client.post(f"/api/v1/orders/{order_id}/cancel", headers=headers)
    assert res.status_code == 200 and res.json["status"] == "cancelled"
    assert [h["to_status"] for h in res.json["history"]] == ["pending_payment", "cancelled"]
    again = client.post(f"/api/v1/orders/{order_id}/cancel", headers=headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "invalid_transition"
    assert stock_of(sku.id) == 4


def test_confirm_receipt_only_when_shipped(make, client, buyer):
    _user, headers = buyer
    sku = make.product(stock=4).skus[0]
    order_id = place(client, headers, sku.id).json["id"]
    early = client.post(f"/api/v1/orders/{order_id}/confirm-receipt", headers=headers)
    assert early.status_code == 409 and early.json["error"]["code"] == "invalid_transition"

    order = db.session.get(Order, order_id)
    mark_paid(order, transaction_id="4200000000000000000000000001", amount_fen=order.total_fen)
    move_order(order, SHIPPED, "staff:1", "发货", carrier="顺丰", tracking_number="SF1")
    db.session.commit()
    res = client.post(f"/api/v1/orders/{order_id}/confirm-receipt", headers=headers)
    assert res.status_code == 200 and res.json["status"] == "completed"
    assert res.json["history"][-1]["reason"] == "买家确认收货"


def test_refund_request_for_a_line(make, client, buyer):
    _user, headers = buyer
    sku = make.product(price_fen=1000, stock=10).skus[0]
    order_id = place(client, headers, sku.id, 3).json["id"]
    line_id = db.session.get(Order, order_id).lines[0].id
    url = f"/api/v1/orders/{order_id}/lines/{line_id}/refund"
    unpaid = client.post(url, json={"quantity": 1, "reason": "不想要了"}, headers=headers)
    assert unpaid.status_code == 409 and unpaid.json["error"]["code"] == "not_refundable"

    order = db.session.get(Order, order_id)
    mark_paid(order, transaction_id="4200000000000000000000000002", amount_fen=order.total_fen)
    db.session.commit()
    res = client.post(url, json={"quantity": 2, "reason": "不想要了"}, headers=headers)
    assert res.status_code == 201, res.json
    assert (res.json["quantity"], res.json["amount_fen"], res.json["status"]) == (
        2,
        2000,
        "requested",
    )
    assert res.json["status_text"] == "退款申请中"
    over = client.post(url, json={"quantity": 2, "reason": "再退"}, headers=headers)
    assert over.status_code == 409 and over.json["error"]["code"] == "refund_exceeded"
    for bad in ({"quantity": 0, "reason": "x"}, {"quantity": 1, "reason": " "}, {"quantity": 1}):
        assert client.post(url, json=bad, headers=headers).status_code == 422
    wrong_line = client.post(
        f"/api/v1/orders/{order_id}/lines/{line_id + 999}/refund",
        json={"quantity": 1, "reason": "x"},
        headers=headers,
    )
    assert wrong_line.status_code == 404

    detail = client.get(f"/api/v1/orders/{order_id}").json
    assert detail["lines"][0]["refundable_quantity"] == 1
    assert detail["lines"][0]["refunds"][0]["reason"] == "不想要了"
    assert [o["id"] for o in client.get("/api/v1/orders?status=refund").json["items"]] == [order_id]
    assert db.session.scalar(select(func.count(Refund.id))) == 1


# --- paying -----------------------------------------------------------------------------------


def test_pay_returns_jsapi_params_and_the_stand_in_cashier(make, client, buyer, sandbox):
    _user, headers = buyer
    sku = make.product(stock=4).skus[0]
    order = place(client, headers, sku.id).json
    res = client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers)
    assert res.status_code == 200, res.json
    assert res.json["out_trade_no"] == order["number"]
    jsapi = res.json["jsapi"]
    assert set(jsapi) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert jsapi["package"].startswith("prepay_id=") and jsapi["signType"] == "RSA"
    assert res.json["cashier_url"].startswith(f"{sandbox.url}/sandbox/cashier?prepay_id=")
    assert f"%2Forders%2F{order['id']}%2Fpay" in res.json["cashier_url"]


def test_the_page_never_marks_paid_but_the_server_may_ask_wechat(make, client, buyer, sandbox):
    _user, headers = buyer
    sku = make.product(stock=4).skus[0]
    order = place(client, headers, sku.id).json
    client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers)
    url = f"/api/v1/orders/{order['id']}"
    assert client.get(f"{url}?sync=true").json["status"] == "pending_payment"  # not paid yet

    sandbox_pay(sandbox, order["number"], notify=False)  # paid at WeChat, notice lost
    assert client.get(url).json["status"] == "pending_payment"  # a plain read asks nobody

    def synced():
        return client.get(f"{url}?sync=true").json["status"] == "paid"

    wait_until(synced, timeout=10, interval=0.5)  # the 3 s rate limit may hold the first try
    paid = fresh(Order, order["id"])
    assert paid.status == PAID and paid.paid_fen == paid.total_fen
    kinds = db.session.scalars(
        select(PaymentTransaction.kind).where(PaymentTransaction.order_id == order["id"])
    ).all()
    assert sorted(kinds) == ["paid", "prepay"]
    pay_again = client.post(f"{url}/pay", headers=headers)
    assert pay_again.status_code == 409 and pay_again.json["error"]["code"] == "not_payable"


def test_payment_notice_marks_the_order_paid(make, client, buyer, sandbox, live_server):
    _user, headers = buyer
    sku = make.product(stock=4).skus[0]
    order = place(client, headers, sku.id).json
    client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers)
    sandbox_pay(sandbox, order["number"])  # the stand-in sends the signed notice
    wait_until(lambda: fresh(Order, order["id"]).status == PAID)
    assert client.get(f"/api/v1/orders/{order['id']}").json["status_text"] == "待发货"


def test_cancel_closes_the_wechat_order_first(make, client, buyer, sandbox):
    _user, headers = buyer
    sku = make.product(stock=4).skus[0]
    order = place(client, headers, sku.id).json
    client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers)
    res = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=headers)
    assert res.status_code == 200 and res.json["status"] == "cancelled"
    # paying a closed WeChat order is refused by the stand-in, so no money can arrive
    refused = requests.post(
        f"{sandbox.url}/_sandbox/pay/orders/{order['number']}/pay", json={}, timeout=5
    )
    assert refused.status_code == 409


def test_cancel_after_payment_at_wechat_is_refused(make, client, buyer, sandbox):
    _user, headers = buyer
    sku = make.product(stock=4).skus[0]
    order = place(client, headers, sku.id).json
    client.post(f"/api/v1/orders/{order['id']}/pay", headers=headers)
    sandbox_pay(sandbox, order["number"], notify=False)
    res = client.post(f"/api/v1/orders/{order['id']}/cancel", headers=headers)
    assert res.status_code == 409 and res.json["error"]["code"] == "order_paid"
    assert fresh(Order, order["id"]).status == PAID  # the server asked WeChat
    assert stock_of(sku.id) == 3


# --- who may do what --------------------------------------------------------------------------


def owned_urls(order_id: int, line_id: int, address_id: int) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", f"/api/v1/orders/{order_id}", None),
        ("GET", f"/api/v1/orders/{order_id}?sync=true", None),
        ("POST", f"/api/v1/orders/{order_id}/pay", None),
        ("POST", f"/api/v1/orders/{order_id}/cancel", None),
        ("POST", f"/api/v1/orders/{order_id}/confirm-receipt", None),
        (
            "POST",
            f"/api/v1/orders/{order_id}/lines/{line_id}/refund",
            {"quantity": 1, "reason": "x"},
        ),
        ("PATCH", f"/api/v1/addresses/{address_id}", {"name": "王五"}),
        ("DELETE", f"/api/v1/addresses/{address_id}", None),
    ]


def test_another_customer_gets_404_on_every_order_and_address_url(make, client, buyer, login_as):
    owner, headers = buyer
    sku = make.product(stock=4).skus[0]
    order_id = place(client, headers, sku.id).json["id"]
    line_id = db.session.get(Order, order_id).lines[0].id
    address_id = db.session.scalar(select(Address.id).where(Address.user_id == owner.id))

    intruder = client.application.test_client()
    intruder_headers = sign_in(intruder, login_as, make.user())
    for method, url, body in owned_urls(order_id, line_id, address_id):
        res = intruder.open(url, method=method, json=body, headers=intruder_headers)
        assert res.status_code == 404, (method, url, res.status_code)
        assert res.json["error"]["code"] == "not_found"
    assert intruder.get("/api/v1/orders").json["items"] == []
    assert intruder.get("/api/v1/addresses").json["items"] == []
    assert fresh(Order, order_id).status == "pending_payment"
    assert fresh(Address, address_id).name == "张三"


def test_anonymous_and_staff_get_401(make, client, buyer, login_as, app):
    _owner, headers = buyer
    sku = make.product(stock=4).skus[0]
    order_id = place(client, headers, sku.id).json["id"]
    line_id = db.session.get(Order, order_id).lines[0].id
    address_id = db.session.scalar(select(Address.id))
    urls = [
        *owned_urls(order_id, line_id, address_id),
        ("GET", "/api/v1/orders", None),
        ("POST", "/api/v1/orders", {"items": [], "address_id": 0}),  # 401 before validation
        ("GET", "/api/v1/addresses", None),
        ("POST", "/api/v1/addresses", ADDRESS),
        ("GET", "/api/v1/cart", None),
        ("POST", "/api/v1/cart/items", {"sku_id": sku.id}),
        ("PATCH", f"/api/v1/cart/items/{sku.id}", {"quantity": 1}),
        ("DELETE", f"/api/v1/cart/items/{sku.id}", None),
    ]
    anonymous = app.test_client()
    staff_client = app.test_client()
    login_as(staff_client, make.staff())
    admin_page = staff_client.get("/admin/").get_data(as_text=True)
    staff_headers = {"X-CSRFToken": re.search(r'name="csrf_token" value="([^"]+)"', admin_page)[1]}
    for method, url, body in urls:
        res = staff_client.open(url, method=method, json=body, headers=staff_headers)
        assert res.status_code == 401, (method, url, res.status_code)
    for method, url, body in urls:
        res = anonymous.open(url, method=method, json=body)
        # No session, so no CSRF token either: signing in comes first, so writes are 401 too.
        assert res.status_code == 401, (method, url, res.status_code)
        assert res.json["error"]["code"] == "unauthorized"
    assert fresh(Order, order_id).status == "pending_payment"


def test_writes_need_the_csrf_header(make, client, login_as):
    user = make.user()
    make_address(user.id)
    sign_in(client, login_as, user)
    sku = make.product(stock=4).skus[0]
    res = client.post("/api/v1/cart/items", json={"sku_id": sku.id})
    assert res.status_code == 400 and res.json["error"]["code"] == "csrf_failed"
    bad = client.post(
        "/api/v1/cart/items", json={"sku_id": sku.id}, headers={"X-CSRFToken": "forged"}
    )
    assert bad.status_code == 400
    assert db.session.scalar(select(func.count(CartItem.id))) == 0


def test_ids_past_the_integer_range_are_not_found(make, client, buyer):
    _user, headers = buyer
    big = 2**40
    assert client.get(f"/api/v1/orders/{big}").status_code == 404
    assert client.post(f"/api/v1/orders/{big}/cancel", headers=headers).status_code == 404
    assert (
        client.patch(f"/api/v1/addresses/{big}", json={"name": "x"}, headers=headers).status_code
        == 404
    )
    assert client.delete(f"/api/v1/cart/items/{big}", headers=headers).status_code == 200


# --- the stock race, over real HTTP -----------------------------------------------------------


def session_cookie(app, user) -> str:
    """The session cookie a signed-in customer's phone would hold (the app's own signer)."""
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.dumps({"_user_id": user.get_id(), "_fresh": True})


def test_200_buyers_race_for_50_units(app, make, live_server):
    buyers = 200
    sku_id = make.product(title="秒杀好物", price_fen=990, stock=50).skus[0].id
    users = [make.user() for _ in range(buyers)]
    addresses = [make_address(u.id).id for u in users]

    sessions = []
    for user in users:
        http = requests.Session()
        http.cookies.set("session", session_cookie(app, user), domain="127.0.0.1", path="/")
        token = http.get(f"{live_server.url}/cart/session", timeout=30).json()["csrf_token"]
        http.headers["X-CSRFToken"] = token
        sessions.append(http)

    start = threading.Barrier(buyers)

    def buy(i: int) -> requests.Response:
        start.wait()
        # A phone retries "系统繁忙" (503 busy: a lock held past its timeout, which SQLite
        # reaches on a loaded machine); what the race must settle is who gets a unit.
        for _try in range(10):
            response = sessions[i].post(
                f"{live_server.url}/api/v1/orders",
                json={"items": [{"sku_id": sku_id, "quantity": 1}], "address_id": addresses[i]},
                timeout=120,
            )
            if response.status_code != 503:
                break
            assert response.json()["error"]["code"] == "busy"
        return response

    with ThreadPoolExecutor(max_workers=buyers) as pool:
        results = list(pool.map(buy, range(buyers)))

    statuses = [r.status_code for r in results]
    assert statuses.count(201) == 50, sorted(set(statuses))
    refused = [r.json()["error"] for r in results if r.status_code != 201]
    assert len(refused) == 150
    assert all(e["code"] == "sold_out" and "售罄" in e["message"] for e in refused)
    assert stock_of(sku_id) == 0
    assert db.session.scalar(select(func.count(Order.id))) == 50
    assert db.session.scalar(select(func.count(func.distinct(Order.user_id)))) == 50
