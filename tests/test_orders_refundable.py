"""One "how many units can still be refunded" rule: the refund service, the Open API's
order detail and the H5 pages give the same answer for the same line.

The line goes through a completed refund, a rejected one and a pending request; at each
step the service (``refundable``), ``GET /api/v1/orders/<id>`` and the H5 refund form
must agree, and the API must refuse one unit more than that answer.
"""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.orders.models import Address, Order, OrderLine
from app.orders.queries import refunds_by_line
from app.orders.refunds import (
    left_to_refund,
    refundable,
    reject_refund,
    request_refund,
)
from app.orders.services import ItemRequest, mark_paid, place_order
from app.payments.refunds import complete_refund

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def _paid_order(user, sku, quantity: int) -> Order:
    address = Address(
        user_id=user.id,
        name="张三",
        phone="13800138000",
        province="广东省",
        city="深圳市",
        district="南山区",
        district_code="440305",
        detail="科技园1号",
    )
    db.session.add(address)
    db.session.flush()
    order = place_order(user.id, [ItemRequest(sku.id, quantity)], address.id)
    mark_paid(
        order, transaction_id=f"4200000000000000000{order.id:09d}", amount_fen=order.total_fen
    )
    db.session.commit()
    return order


def _answers(client, order_id: int, line_id: int) -> tuple[int, int, int, int]:
    """(service, loaded-refunds rule, API, H5 form) answers for one line, read afresh."""
    db.session.expire_all()
    line = db.session.get(OrderLine, line_id)
    service = refundable(line)[0]
    rule = left_to_refund(line, refunds_by_line([order_id]).get(line_id, []))[0]
    detail = client.get(f"/api/v1/orders/{order_id}").get_json()
    api = next(x for x in detail["lines"] if x["id"] == line_id)["refundable_quantity"]
    form = client.get(f"/orders/{order_id}/lines/{line_id}/refund").get_data(as_text=True)
    found = re.search(r'max="(\d+)"', form)
    h5 = int(found.group(1)) if found else 0
    return service, rule, api, h5


def test_service_api_and_h5_agree_on_a_partly_refunded_line(client, make, login_as):
    user = make.user()
    sku = make.product(price_fen=1000, stock=10).skus[0]
    order = _paid_order(user, sku, 4)
    line_id = order.lines[0].id
    login_as(client, user)
    headers = {"X-CSRFToken": client.get("/cart/session").get_json()["csrf_token"]}
    url = f"/api/v1/orders/{order.id}/lines/{line_id}/refund"
    assert _answers(client, order.id, line_id) == (4, 4, 4, 4)

    done = request_refund(order, order.lines[0], 1, "不想要了", f"user:{user.id}")
    db.session.commit()
    complete_refund(done, f"RF{done.id}", done.amount_fen, {})
    db.session.commit()
    assert _answers(client, order.id, line_id) == (3, 3, 3, 3)

    refused = request_refund(order, order.lines[0], 2, "拍错/多拍", f"user:{user.id}")
    db.session.commit()
    reject_refund(refused, "staff:1", "已发货")
    db.session.commit()
    assert _answers(client, order.id, line_id) == (3, 3, 3, 3)  # a rejected one holds nothing

    over = client.post(url, json={"quantity": 4, "reason": "不想要了"}, headers=headers)
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "refund_exceeded"


def test_service_api_and_h5_agree_with_a_pending_request(client, make, login_as):
    user = make.user()
    sku = make.product(price_fen=1000, stock=10).skus[0]
    order = _paid_order(user, sku, 3)
    line_id = order.lines[0].id
    login_as(client, user)
    headers = {"X-CSRFToken": client.get("/cart/session").get_json()["csrf_token"]}
    url = f"/api/v1/orders/{order.id}/lines/{line_id}/refund"

    pending = client.post(url, json={"quantity": 2, "reason": "不想要了"}, headers=headers)
    assert pending.status_code == 201 and pending.get_json()["status"] == "requested"
    assert _answers(client, order.id, line_id) == (1, 1, 1, 1)

    over = client.post(url, json={"quantity": 2, "reason": "再退"}, headers=headers)
    assert over.status_code == 409 and over.get_json()["error"]["code"] == "refund_exceeded"
    last = client.post(url, json={"quantity": 1, "reason": "再退"}, headers=headers)
    assert last.status_code == 201
    assert _answers(client, order.id, line_id) == (0, 0, 0, 0)
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "申请退款" not in page  # no button once nothing is left
