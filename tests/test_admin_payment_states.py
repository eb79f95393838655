"""The admin order detail's 支付记录 speaks Chinese: WeChat Pay's own state codes (NOTPAY,
SUCCESS, PROCESSING...) are kept on the rows as they came and shown through one table of
labels (app/payments/labels.py). The rows are made by the real flow: prepay, payment and
refund at the WeChat stand-in, notices delivered to the live server."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.orders.models import Order, PaymentTransaction, Refund
from app.orders.refunds import request_refund
from app.payments.labels import (
    REFUND_STATE_LABELS,
    TRADE_STATE_LABELS,
    payment_kind_label,
    payment_state_label,
)
from tests.support.admin import fresh_client, post, text
from tests.support.pay import fresh, new_order, prepay, sandbox_pay, sandbox_settings, wait_until

WECHAT_CODES = re.compile(r"\b(NOTPAY|SUCCESS|PROCESSING|REFUND|CLOSED|ABNORMAL|USERPAYING)\b")


def test_every_wechat_pay_state_has_a_chinese_label():
    trade = ("SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR")
    refund = ("SUCCESS", "CLOSED", "PROCESSING", "ABNORMAL")
    assert set(TRADE_STATE_LABELS) == set(trade)
    assert set(REFUND_STATE_LABELS) == set(refund)
    assert payment_state_label("prepay", "NOTPAY") == "未支付"
    assert payment_state_label("paid", "SUCCESS") == "支付成功"
    assert payment_state_label("query", "USERPAYING") == "用户支付中"
    assert payment_state_label("closed", "CLOSED") == "已关闭"
    # The same code means another thing on a refund row.
    assert payment_state_label("refund", "SUCCESS") == "退款成功"
    assert payment_state_label("refund", "PROCESSING") == "退款处理中"
    assert payment_state_label("refund_closed", "CLOSED") == "退款关闭"
    assert payment_state_label("refund_abnormal", "ABNORMAL") == "退款异常"
    assert payment_state_label("paid", "") == "—"
    assert payment_state_label("paid", "SOMETHING_NEW") == "未知状态（SOMETHING_NEW）"
    assert payment_kind_label("unmatched") == "无法入账的付款"
    assert payment_kind_label("other") == "other"
    for label in [*TRADE_STATE_LABELS.values(), *REFUND_STATE_LABELS.values()]:
        assert not WECHAT_CODES.search(label)


@pytest.fixture
def stand_in(sandbox):
    saved = sandbox_settings(sandbox)
    yield sandbox
    sandbox_settings(sandbox, **saved)


@pytest.fixture
def staff_client(app, login_as, make):
    client = fresh_client(app)
    login_as(client, make.staff("clerk"))
    return client


def _payments_table(page: str) -> str:
    table = re.search(r"<h2>支付记录</h2>(.*?)</section>", page, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", table).split())


def test_order_detail_shows_wechat_pay_states_in_chinese(staff_client, make, live_server, stand_in):
    sandbox_settings(stand_in, refund_delay=3)  # the refund answers PROCESSING first
    order, _sku = new_order(make, quantity=2)
    prepay(order)
    table = _payments_table(text(staff_client.get(f"/admin/orders/{order.id}")))
    assert "发起支付" in table and "未支付" in table

    sandbox_pay(stand_in, order.number)
    wait_until(lambda: fresh(Order, order.id).status == "paid")
    order = fresh(Order, order.id)
    refund = request_refund(order, order.lines[0], 1, "尺码不合适", f"user:{order.user_id}")
    db.session.commit()
    post(
        staff_client, f"/admin/refunds/{refund.id}/approve", token_from=f"/admin/orders/{order.id}"
    )
    states = {
        (row.kind, row.state)
        for row in db.session.query(PaymentTransaction).filter_by(order_id=order.id)
    }
    assert {("prepay", "NOTPAY"), ("paid", "SUCCESS"), ("refund", "PROCESSING")} <= states
    table = _payments_table(text(staff_client.get(f"/admin/orders/{order.id}")))
    assert "支付成功" in table and "申请退款 " in table and "退款处理中" in table, table
    assert not WECHAT_CODES.search(table), table

    wait_until(lambda: fresh(Refund, refund.id).status == "refunded", timeout=20)
    table = _payments_table(text(staff_client.get(f"/admin/orders/{order.id}")))
    assert "退款成功" in table and not WECHAT_CODES.search(table), table


@pytest.mark.browser
def test_order_detail_payment_states_in_a_browser(desk, live_server, stand_in, make, artifacts):
    make.staff("clerk", password="clerk-password")
    order, _sku = new_order(make, quantity=1)
    prepay(order)
    sandbox_pay(stand_in, order.number)
    wait_until(lambda: fresh(Order, order.id).status == "paid")

    base = live_server.url
    desk.goto(f"{base}/admin/orders/{order.id}")
    desk.fill("#username", "clerk")
    desk.fill("#password", "clerk-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/orders/{order.id}")
    rows = desk.locator(".payments-table tbody tr")
    assert rows.count() == 2
    states = [rows.nth(i).locator("td").nth(4).inner_text().strip() for i in range(2)]
    assert states == ["未支付", "支付成功"]
    assert not WECHAT_CODES.search(desk.locator(".payments-table").inner_text())
    desk.screenshot(path=str(artifacts / "admin-order-payment-states.png"), full_page=True)
