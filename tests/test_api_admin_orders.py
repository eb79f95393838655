"""Merchant Open API for orders and refunds, through HTTP with a token from the real CLI."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.extensions import db
from app.orders.models import Order, Refund
from app.orders.refunds import request_refund
from app.orders.services import mark_paid
from tests.support.openapi import bearer_caller
from tests.support.pay import (
    fresh,
    new_order,
    pay_state,
    prepay,
    sandbox_pay,
    sandbox_settings,
    wait_until,
)

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

_tx = iter(range(1, 10**6))


@pytest.fixture
def token(runner, app_ctx) -> str:
    result = runner.invoke(args=["create-api-token", "erp"])
    assert result.exit_code == 0, result.output
    return result.output.strip()


@pytest.fixture
def api(client, token):
    """Call the Open API with the token: ``api("get", "/orders")``."""

    return bearer_caller(client, token)


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


def paid(make, **kwargs) -> Order:
    order, _sku = new_order(make, **kwargs)
    mark_paid(order, transaction_id=f"42000001{next(_tx):014d}", amount_fen=order.total_fen)
    db.session.commit()
    return order


def test_every_endpoint_needs_a_token(client, make):
    order = paid(make)
    refund = request_refund(order, order.lines[0], 1, "x", "user:1")
    db.session.commit()
    for method, path, body in (
        ("get", "/orders", None),
        ("get", f"/orders/{order.id}", None),
        ("post", f"/orders/{order.id}/ship", {"carrier": "SF", "tracking_number": "SF1234567"}),
        ("post", f"/refunds/{refund.id}/approve", None),
        ("post", f"/refunds/{refund.id}/reject", {"reason": "no"}),
    ):
        response = client.open(f"/api/v1/admin{path}", method=method.upper(), json=body)
        _error(response, 401, "invalid_token")
        wrong = client.open(
            f"/api/v1/admin{path}",
            method=method.upper(),
            json=body,
            headers={"Authorization": "Bearer sk_wrong"},
        )
        _error(wrong, 401, "invalid_token")
    assert fresh(Order, order.id).status == "paid"
    assert fresh(Refund, refund.id).status == "requested"


def test_list_with_filters_and_pages(api, make):
    pending, _ = new_order(make)
    order = paid(make)
    order.receiver_name = "王五"
    order.created_at = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)
    db.session.commit()
    body = api("get", "/orders").get_json()
    assert body["meta"] == {"page": 1, "per_page": 20, "total": 2, "pages": 1}
    assert [o["id"] for o in body["items"]] == [pending.id, order.id]  # newest first
    item = body["items"][1]
    assert item["status"] == "paid" and item["status_label"] == "待发货"
    assert item["total_fen"] == 2990 and item["paid_fen"] == 2990 and item["shipping_fen"] == 1000
    assert item["receiver"]["district_code"] == "440305"
    assert item["lines"][0]["quantity"] == 1 and item["lines"][0]["amount_fen"] == 1990
    assert item["created_at"].startswith("2025-03-01T02:00:00")

    def ids(query: str) -> list[int]:
        response = api("get", f"/orders?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return [o["id"] for o in response.get_json()["items"]]

    assert ids("status=paid") == [order.id]
    assert ids("status=pending_payment") == [pending.id]
    assert ids("status=refunding") == []
    assert ids("q=王五") == [order.id]
    assert ids(f"q={order.number}") == [order.id]
    assert ids("created_from=2025-03-01&created_to=2025-03-01") == [order.id]
    assert ids("created_to=2025-02-28") == []
    assert ids("per_page=1&page=2") == [order.id]

    _error(api("get", "/orders?status=bogus"), 422, "validation_error")
    _error(api("get", "/orders?created_from=yesterday"), 422, "validation_error")
    _error(
        api("get", "/orders?created_from=2025-03-02&created_to=2025-03-01"), 422, "validation_error"
    )
    _error(api("get", "/orders?per_page=500"), 422, "validation_error")


def test_detail_has_lines_history_payments_and_refunds(api, make):
    order = paid(make, quantity=2)
    refund = request_refund(order, order.lines[0], 1, "买多了", f"user:{order.user_id}")
    db.session.commit()
    response = api("get", f"/orders/{order.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["number"] == order.number and len(body["lines"]) == 1
    assert [(h["subject"], h["to_status"]) for h in body["history"]] == [
        ("order", "pending_payment"),
        ("order", "paid"),
        ("refund", "requested"),
    ]
    assert [p["kind"] for p in body["payments"]] == ["paid"]
    assert body["refunds"][0]["id"] == refund.id
    assert body["refunds"][0]["status"] == "requested" and body["refunds"][0]["amount_fen"] == 1990
    _error(api("get", "/orders/999999"), 404, "not_found")
    _error(api("get", "/orders/99999999999"), 404, "not_found")


def test_ship(api, make):
    order = paid(make)
    path = f"/orders/{order.id}/ship"
    error = _error(
        api("post", path, json={"carrier": "DHL", "tracking_number": "SF1234567"}),
        422,
        "invalid_carrier",
    )
    assert error["details"][0]["field"] == "carrier"
    _error(
        api("post", path, json={"carrier": "SF", "tracking_number": "12"}),
        422,
        "invalid_tracking_number",
    )
    _error(api("post", path, json={"carrier": "SF"}), 422, "validation_error")
    _error(
        api("post", path, json={"carrier": "SF", "tracking_number": 12345678}),
        422,
        "validation_error",
    )
    _error(
        api("post", path, json={"carrier": "SF", "tracking_number": "SF12345678", "x": 1}),
        422,
        "validation_error",
    )
    _error(api("post", path, data="carrier=SF"), 415, "unsupported_media_type")
    assert fresh(Order, order.id).status == "paid"

    response = api("post", path, json={"carrier": "顺丰", "tracking_number": "sf1234567890"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["status"], body["carrier"], body["tracking_number"]) == (
        "shipped",
        "顺丰速运",
        "SF1234567890",
    )
    assert body["shipped_at"]
    assert body["history"][-1]["actor"].startswith("api:")

    again = api("post", path, json={"carrier": "ZTO", "tracking_number": "ZT1234567890"})
    error = _error(again, 409, "invalid_transition")
    assert "待收货" in error["message"]
    unpaid, _ = new_order(make)
    _error(
        api(
            "post",
            f"/orders/{unpaid.id}/ship",
            json={"carrier": "SF", "tracking_number": "SF1234567"},
        ),
        409,
        "invalid_transition",
    )
    _error(
        api("post", "/orders/999999/ship", json={"carrier": "SF", "tracking_number": "SF1234567"}),
        404,
        "not_found",
    )


def test_reject(api, make):
    order = paid(make)
    refund = request_refund(order, order.lines[0], 1, "不想要了", "user:1")
    db.session.commit()
    path = f"/refunds/{refund.id}/reject"
    _error(api("post", path, json={"reason": "   "}), 422, "validation_error")
    _error(api("post", path, json={}), 422, "validation_error")
    response = api("post", path, json={"reason": "已过七天无理由退货期"})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["review_note"]) == ("rejected", "已过七天无理由退货期")
    _error(api("post", path, json={"reason": "again"}), 409, "invalid_transition")
    _error(api("post", f"/refunds/{refund.id}/approve"), 409, "invalid_transition")
    _error(api("post", "/refunds/999999/reject", json={"reason": "x"}), 404, "not_found")


def test_approve_when_wechat_refuses_is_a_502_and_leaves_the_refund_failed(api, make, sandbox):
    order = paid(make)  # never paid at the stand-in, so WeChat does not know it
    refund = request_refund(order, order.lines[0], 1, "不想要了", "user:1")
    db.session.commit()
    error = _error(api("post", f"/refunds/{refund.id}/approve"), 502, "payment_error")
    assert "订单" in error["message"] or "微信" in error["message"]
    refund = fresh(Refund, refund.id)
    assert refund.status == "failed" and refund.review_note


@pytest.fixture
def stand_in(sandbox):
    saved = sandbox_settings(sandbox)
    yield sandbox
    sandbox_settings(sandbox, **saved)


def test_approve_reaches_wechat_and_the_notice_completes_it(api, make, live_server, stand_in):
    sandbox_settings(stand_in, refund_delay=0.2)
    order, _sku = new_order(make, quantity=2)
    prepay(order)
    sandbox_pay(stand_in, order.number)
    order = wait_until(lambda: (o := fresh(Order, order.id)).status == "paid" and o)
    refund = request_refund(order, order.lines[0], 1, "尺码不合适", "user:1")
    db.session.commit()

    response = api("post", f"/refunds/{refund.id}/approve")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] in ("approved", "refunded") and body["refund_id"]
    assert pay_state(stand_in).refunds[refund.out_refund_no].refund == 1990

    wait_until(lambda: fresh(Refund, refund.id).status == "refunded")
    detail = api("get", f"/orders/{order.id}").get_json()
    assert detail["refunded_fen"] == 1990
    assert {"refund", "refund_done"} <= {p["kind"] for p in detail["payments"]}
    _error(api("post", f"/refunds/{refund.id}/approve"), 409, "invalid_transition")
