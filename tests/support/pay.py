"""Helpers for the WeChat Pay tests: orders to pay, the stand-in's switches, signed notices.

``notice_for`` builds a real notice with the stand-in's own keys and code
(``app.wechat.sandbox.pay.signed_notice``), so tests can send genuine, forged, stale and
tampered variants to the shop's real door over HTTP. Nothing of the shop is mocked.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
from sqlalchemy import select

from app.extensions import db
from app.orders.models import Address, Order
from app.orders.services import ItemRequest, place_order
from app.payments.client import create_prepay
from tests.support import factories


def address_for(user) -> Address:
    """A delivery address for ``user`` (committed)."""
    return factories.address(user)


def new_order(make, *, price_fen: int = 1990, quantity: int = 1, stock: int = 10, user=None):
    """A committed unpaid order of one SKU: (order, sku_id)."""
    user = user or make.user()
    address = address_for(user)
    sku = make.product(price_fen=price_fen, stock=stock).skus[0]
    order = place_order(user.id, [ItemRequest(sku.id, quantity)], address.id)
    db.session.commit()
    return order, sku.id


def prepay(order: Order) -> str:
    """Create the JSAPI prepay for ``order`` at the stand-in (our real client); commit."""
    prepay_id = create_prepay(order, order.user.openid)
    db.session.commit()
    return prepay_id


def fresh(model, row_id: int):
    """Re-read a row as committed by other threads or processes."""
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(model, row_id)


def order_by_number(number: str) -> Order:
    db.session.rollback()
    return db.session.scalar(select(Order).where(Order.number == number))


def wait_until(check: Callable[[], object], timeout: float = 10.0, interval: float = 0.05):
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


# --- the stand-in -------------------------------------------------------------------------


def pay_state(sandbox):
    """The stand-in's Pay state (for its keys, and to read what it did)."""
    return sandbox.server.app.extensions["wechat_sandbox_pay"]


def sandbox_settings(sandbox, **settings) -> dict:
    """Change the stand-in's notice settings over HTTP; return them all."""
    res = requests.post(f"{sandbox.url}/_sandbox/pay/settings", json=settings, timeout=5)
    res.raise_for_status()
    return res.json()


def sandbox_pay(sandbox, out_trade_no: str, notify: bool = True) -> dict:
    """Pay an order at the stand-in as the cashier's 支付 would."""
    res = requests.post(
        f"{sandbox.url}/_sandbox/pay/orders/{out_trade_no}/pay", json={"notify": notify}, timeout=5
    )
    res.raise_for_status()
    return res.json()


def deliveries(sandbox) -> list[dict]:
    return requests.get(f"{sandbox.url}/_sandbox/pay/deliveries", timeout=5).json()["deliveries"]


def transaction_resource(sandbox, order: Order, **changes) -> dict:
    """What WeChat's payment notice says about a paid ``order`` (override any field)."""
    state = pay_state(sandbox)
    resource = {
        "appid": state.appid,
        "mchid": state.mchid,
        "out_trade_no": order.number,
        "transaction_id": f"4200000000{order.id:018d}",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2026-11-26T12:00:00+08:00",
        "payer": {"openid": "o_test"},
        "amount": {
            "total": order.total_fen,
            "payer_total": order.total_fen,
            "currency": "CNY",
            "payer_currency": "CNY",
        },
    }
    resource.update(changes)
    return resource


def notice_for(sandbox, resource: dict, event_type: str = "TRANSACTION.SUCCESS", **kwargs):
    """(headers, body) of a genuine notice signed and encrypted with the stand-in's keys."""
    from app.wechat.sandbox.pay import signed_notice

    state = pay_state(sandbox)
    return signed_notice(state.keys, state.apiv3_key, resource, event_type, **kwargs)


def post_notice(base_url: str, headers: dict, body: str | bytes, path: str = "/pay/notify"):
    """Send a notice to the shop's real door over HTTP, as WeChat does."""
    data = body.encode() if isinstance(body, str) else body
    return requests.post(f"{base_url}{path}", data=data, headers=headers, timeout=30)


def wait_for_paid_follow_up(app, order_id: int) -> None:
    """Wait until the order's follow-up is queued: the pay path names it to the follow-up
    sweep and wakes one, just after the commit that marks the order paid (so "paid" in
    the database can come a moment earlier)."""
    from app.core.redis import redis_for
    from jobs.follow_ups import PAID_KEY, WAKE_KEY

    redis = redis_for(app)
    wait_until(lambda: redis.zscore(PAID_KEY, order_id) is not None and redis.exists(WAKE_KEY))
