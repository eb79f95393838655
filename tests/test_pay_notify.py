"""``POST /pay/notify`` over real HTTP: cashier → notice → paid, exactly once, and refusals."""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from rq import Queue
from sqlalchemy import func, select

from app.core.models import StatusChange
from app.core.redis import redis_for
from app.extensions import db
from app.orders.models import Order, PaymentTransaction
from app.orders.services import cancel_order
from app.payments.client import get_pay
from app.wechat.sandbox.pay import rsa_sign
from jobs.follow_ups import waiting_sweep
from tests.support.pay import (
    deliveries,
    fresh,
    new_order,
    notice_for,
    pay_state,
    post_notice,
    prepay,
    sandbox_pay,
    sandbox_settings,
    transaction_resource,
    wait_until,
)
from tests.support.servers import ServerThread

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


@pytest.fixture
def stand_in(sandbox):
    """The stand-in, with its notice settings put back after the test."""
    saved = sandbox_settings(sandbox)
    yield sandbox
    sandbox_settings(sandbox, **saved)


def _queued_job_ids(app) -> list[str]:
    return Queue("default", connection=redis_for(app)).job_ids


def _paid_rows(order_id: int) -> int:
    return db.session.scalar(
        select(func.count(PaymentTransaction.id)).where(
            PaymentTransaction.order_id == order_id, PaymentTransaction.kind == "paid"
        )
    )


def test_cashier_pay_sends_a_notice_and_the_order_is_paid(app, make, live_server, stand_in):
    order, _sku = new_order(make)
    prepay_id = prepay(order)
    page = requests.get(
        f"{stand_in.url}/sandbox/cashier", params={"prepay_id": prepay_id}, timeout=5
    )
    assert page.status_code == 200
    assert "支付" in page.text
    assert f"¥{order.total_fen // 100}.{order.total_fen % 100:02d}" in page.text
    back = f"{live_server.url}/orders/{order.id}"
    res = requests.post(
        f"{stand_in.url}/sandbox/cashier",
        data={"prepay_id": prepay_id, "return_url": back, "action": "pay"},
        allow_redirects=False,
        timeout=5,
    )
    assert res.status_code == 303
    assert res.headers["Location"] == f"{back}?pay_result=ok"

    paid = wait_until(lambda: (o := fresh(Order, order.id)).status == "paid" and o)
    assert paid.paid_fen == order.total_fen
    assert paid.transaction_id.startswith("4200")
    assert _paid_rows(order.id) == 1
    assert _queued_job_ids(app) == [waiting_sweep()]  # the follow-up sweep, woken
    history = db.session.scalars(
        select(StatusChange.to_status)
        .where(StatusChange.subject == "order", StatusChange.subject_id == order.id)
        .order_by(StatusChange.id)
    ).all()
    assert history == ["pending_payment", "paid"]
    sent = [d for d in deliveries(stand_in) if d["url"] == f"{live_server.url}/pay/notify"]
    assert any(d["status"] == 204 for d in sent)


def test_cashier_cancel_leaves_the_order_unpaid(app, make, live_server, stand_in):
    order, _sku = new_order(make)
    prepay_id = prepay(order)
    res = requests.post(
        f"{stand_in.url}/sandbox/cashier",
        data={"prepay_id": prepay_id, "return_url": "http://127.0.0.1:9/x", "action": "cancel"},
        allow_redirects=False,
        timeout=5,
    )
    assert res.headers["Location"] == "http://127.0.0.1:9/x?pay_result=cancel"
    time.sleep(0.2)
    assert fresh(Order, order.id).status == "pending_payment"
    assert (
        requests.get(f"{stand_in.url}/sandbox/cashier?prepay_id=nope", timeout=5).status_code == 404
    )


def test_stand_in_duplicates_are_applied_once(app, make, live_server, stand_in):
    sandbox_settings(stand_in, duplicates=8)
    orders = [new_order(make)[0] for _ in range(5)]
    for order in orders:
        prepay(order)
        sandbox_pay(stand_in, order.number)
    for order in orders:
        wait_until(lambda order=order: fresh(Order, order.id).status == "paid")
    wait_until(lambda: len([d for d in deliveries(stand_in) if d["status"]]) >= 40)
    for order in orders:
        assert _paid_rows(order.id) == 1
    assert _queued_job_ids(app) == [waiting_sweep()]  # one follow-up sweep for all of them


def test_a_thousand_concurrent_duplicate_notices_for_a_hundred_orders(
    app, make, live_server, stand_in
):
    # A customer each: one customer may hold only a few unpaid orders.
    orders = [new_order(make)[0] for _ in range(100)]
    notices = []
    for order in orders:
        resource = transaction_resource(stand_in, order)
        # Each retry is signed afresh (new nonce and timestamp), as WeChat's are.
        notices += [notice_for(stand_in, resource) for _ in range(10)]
    random.Random(4).shuffle(notices)
    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda n: post_notice(live_server.url, *n).status_code, notices))
    assert statuses == [204] * 1000

    db.session.rollback()
    ids = [o.id for o in orders]
    assert (
        db.session.scalar(
            select(func.count(Order.id)).where(Order.id.in_(ids), Order.status == "paid")
        )
        == 100
    )
    per_order = dict(
        db.session.execute(
            select(PaymentTransaction.order_id, func.count(PaymentTransaction.id))
            .where(PaymentTransaction.kind == "paid")
            .group_by(PaymentTransaction.order_id)
        ).all()
    )
    assert per_order == dict.fromkeys(ids, 1)
    paid_changes = db.session.scalar(
        select(func.count(StatusChange.id)).where(
            StatusChange.subject == "order", StatusChange.to_status == "paid"
        )
    )
    assert paid_changes == 100
    assert _queued_job_ids(app) == [waiting_sweep()]  # one follow-up sweep for all of them


# --- refusals -----------------------------------------------------------------------------


def _forged(stand_in, resource):
    headers, body = notice_for(stand_in, resource)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ts, nonce = headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"]
    headers["Wechatpay-Signature"] = rsa_sign(stranger, f"{ts}\n{nonce}\n{body}\n")
    return headers, body


def _stale(stand_in, resource):
    return notice_for(stand_in, resource, timestamp=int(time.time()) - 600)


def _future(stand_in, resource):
    return notice_for(stand_in, resource, timestamp=int(time.time()) + 600)


def _tampered_unsigned(stand_in, resource):
    headers, body = notice_for(stand_in, resource)
    return headers, body.replace('"TRANSACTION.SUCCESS"', '"TRANSACTION.SUCCESS" ')


def _tampered_ciphertext(stand_in, resource):
    """A flipped ciphertext byte, re-signed with WeChat Pay's key: the GCM tag must fail."""
    from app.wechat.sandbox.pay import signed_headers

    _headers, body = notice_for(stand_in, resource)
    data = json.loads(body)
    ct = data["resource"]["ciphertext"]
    data["resource"]["ciphertext"] = ("B" if ct[0] == "A" else "A") + ct[1:]
    body = json.dumps(data, ensure_ascii=False)
    headers = signed_headers(pay_state(stand_in).keys, body)
    headers["Content-Type"] = "application/json"
    return headers, body


def _wrong_serial(stand_in, resource):
    headers, body = notice_for(stand_in, resource)
    headers["Wechatpay-Serial"] = "PUB_KEY_ID_0000000000000000000000000000"
    return headers, body


def _no_signature(stand_in, resource):
    headers, body = notice_for(stand_in, resource)
    del headers["Wechatpay-Signature"]
    return headers, body


def _huge(stand_in, resource):
    return notice_for(stand_in, {**resource, "attach": "x" * 40_000})


def _field(**changes):
    def build(stand_in, resource):
        return notice_for(stand_in, {**resource, **changes})

    return build


REFUSALS = {
    "forged signature": (_forged, 401),
    "stale timestamp": (_stale, 401),
    "future timestamp": (_future, 401),
    "body changed after signing": (_tampered_unsigned, 401),
    "tampered ciphertext": (_tampered_ciphertext, 400),
    "wrong public key id": (_wrong_serial, 401),
    "missing signature": (_no_signature, 401),
    "oversized body": (_huge, 413),
    "wrong amount": (_field(amount={"total": 1, "payer_total": 1, "currency": "CNY"}), 400),
    "unknown order": (_field(out_trade_no="20990101000000999999"), 404),
    "wrong mchid": (_field(mchid="1900009999"), 400),
    "wrong appid": (_field(appid="wx0000000000000000"), 400),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_notices_are_refused_and_change_nothing(app, make, live_server, stand_in, case):
    build, status = REFUSALS[case]
    order, _sku = new_order(make)
    headers, body = build(stand_in, transaction_resource(stand_in, order))
    res = post_notice(live_server.url, headers, body)
    assert res.status_code == status
    assert res.json()["code"] == "FAIL"
    assert res.json()["message"]
    assert fresh(Order, order.id).status == "pending_payment"
    assert db.session.scalar(select(func.count(PaymentTransaction.id))) == 0
    assert _queued_job_ids(app) == []


def test_a_genuine_notice_after_refusals_still_works(app, make, live_server, stand_in):
    order, _sku = new_order(make)
    resource = transaction_resource(stand_in, order)
    assert post_notice(live_server.url, *_forged(stand_in, resource)).status_code == 401
    assert post_notice(live_server.url, *notice_for(stand_in, resource)).status_code == 204
    assert fresh(Order, order.id).status == "paid"


def test_payment_for_a_cancelled_order_is_kept_for_staff(app, make, live_server, stand_in):
    order, _sku = new_order(make)
    cancel_order(order, "system")
    db.session.commit()
    resource = transaction_resource(stand_in, order)
    for _ in range(2):  # WeChat would retry a refusal for a day; nothing would change
        assert post_notice(live_server.url, *notice_for(stand_in, resource)).status_code == 204
    assert fresh(Order, order.id).status == "cancelled"
    rows = db.session.scalars(select(PaymentTransaction)).all()
    assert [(r.kind, r.external_id) for r in rows] == [("unmatched", resource["transaction_id"])]
    assert _queued_job_ids(app) == []


# --- WeChat retries -----------------------------------------------------------------------


class FlakyFront:
    """A real HTTP front for the shop that fails the first notices (503, then a slow 504)."""

    def __init__(self, target: str, failures: list[str]):
        self.target = target
        self.failures = list(failures)
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            mode = self.failures.pop(0) if self.failures else "forward"
            self.seen.append(mode)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        if mode == "503":
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"busy"]
        if mode == "slow":
            time.sleep(1.0)  # longer than the stand-in waits
            start_response("504 Gateway Timeout", [("Content-Type", "text/plain")])
            return [b"slow"]
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_WECHATPAY")
        }
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "application/json")
        res = requests.post(
            self.target + environ["PATH_INFO"], data=body, headers=headers, timeout=10
        )
        start_response(f"{res.status_code} X", [("Content-Type", "application/json")])
        return [res.content]


def test_wechat_retries_after_5xx_and_timeout_until_it_succeeds(app, make, live_server, stand_in):
    sandbox_settings(stand_in, timeout=0.3, time_factor=0.002)
    front_app = FlakyFront(live_server.url, ["503", "503", "slow"])
    front = ServerThread(front_app).start()
    try:
        order, _sku = new_order(make)
        # Prepay through the library with the front as notify_url (as if behind a proxy).
        code, _ = get_pay().pay(
            description="重试测试",
            out_trade_no=order.number,
            amount={"total": order.total_fen},
            payer={"openid": order.user.openid},
            notify_url=f"{front.url}/pay/notify",
        )
        assert code == 200
        sandbox_pay(stand_in, order.number)
        wait_until(lambda: fresh(Order, order.id).status == "paid", timeout=15)
    finally:
        time.sleep(1.2)
        front.stop()
    assert front_app.seen[:4] == ["503", "503", "slow", "forward"]
    attempts = [d for d in deliveries(stand_in) if d["url"].startswith(front.url)]
    assert [d["status"] for d in attempts][:4] == [503, 503, None, 204]
    assert [d["attempt"] for d in attempts][:4] == [0, 1, 2, 3]
    assert _paid_rows(order.id) == 1
    assert _queued_job_ids(app) == [waiting_sweep()]  # the follow-up sweep, woken
