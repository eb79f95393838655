"""Our WeChat Pay client against the stand-in over real HTTP: signatures checked both ways."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import func, select
from wechatpayv3.utils import build_authorization

from app.extensions import db
from app.orders.models import PaymentTransaction
from app.payments.client import (
    PaymentError,
    build_pay,
    call_pay,
    close_order,
    create_prepay,
    get_pay,
    jsapi_params,
    query_order,
    sandbox_cashier_url,
)
from tests.support.pay import new_order, prepay


def _calls(sandbox) -> dict[str, int]:
    return requests.get(f"{sandbox.url}/_sandbox/calls", timeout=5).json()["calls"]


def test_prepay_is_created_once_and_recorded(app, make, sandbox):
    order, _sku = new_order(make)
    before = _calls(sandbox).get("/v3/pay/transactions/jsapi", 0)
    prepay_id = prepay(order)
    assert prepay_id.startswith("wx")
    # Asking again (the customer taps 支付 twice) gives the same prepay and no second row.
    assert create_prepay(order, order.user.openid) == prepay_id
    db.session.commit()
    assert _calls(sandbox)["/v3/pay/transactions/jsapi"] == before + 2
    rows = db.session.scalars(
        select(PaymentTransaction).where(PaymentTransaction.order_id == order.id)
    ).all()
    assert [(r.kind, r.external_id, r.amount_fen) for r in rows] == [
        ("prepay", prepay_id, order.total_fen)
    ]


def test_jsapi_params_are_signed_with_the_merchant_key(app, make, sandbox):
    order, _sku = new_order(make)
    params = jsapi_params(prepay(order))
    assert params["appId"] == app.config["WECHAT_APPID"]
    assert params["package"].startswith("prepay_id=wx")
    assert params["signType"] == "RSA"
    with open(app.config["WECHAT_PAY_PRIVATE_KEY_PATH"], "rb") as fh:
        public = serialization.load_pem_private_key(fh.read(), password=None).public_key()
    message = "".join(
        f"{params[k]}\n" for k in ("appId", "timeStamp", "nonceStr", "package")
    ).encode()
    public.verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())


def test_stand_in_refuses_a_request_signed_with_another_key(app, sandbox):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = {"mchid": app.config["WECHAT_PAY_MCHID"]}
    path = "/v3/pay/transactions/out-trade-no/20260101000000123456/close"
    auth = build_authorization(
        path,
        "POST",
        app.config["WECHAT_PAY_MCHID"],
        app.config["WECHAT_PAY_CERT_SERIAL"],
        stranger,
        data=body,
    )
    res = requests.post(
        sandbox.url + path,
        data=json.dumps(body),
        headers={"Authorization": auth, "Content-Type": "application/json"},
        timeout=5,
    )
    assert res.status_code == 401
    assert res.json()["code"] == "SIGN_ERROR"
    # Even the refusal is signed by WeChat Pay, like the real one.
    assert res.headers["Wechatpay-Serial"] == app.config["WECHAT_PAY_PUBLIC_KEY_ID"]
    no_auth = requests.get(sandbox.url + "/v3/pay/transactions/out-trade-no/x?mchid=1", timeout=5)
    assert no_auth.status_code == 401


def test_answers_with_a_bad_signature_are_refused(app, make, sandbox, tmp_path):
    """Pointing the client at the wrong WeChat Pay public key: every answer fails to verify."""
    order, _sku = new_order(make)
    wrong = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    path = tmp_path / "wrong.pem"
    path.write_bytes(
        wrong.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    pay = build_pay(SimpleNamespace(config={**app.config, "WECHAT_PAY_PUBLIC_KEY_PATH": str(path)}))
    assert pay._core._gate_way == sandbox.url
    with pytest.raises(PaymentError) as err:
        call_pay(pay.query, out_trade_no=order.number)
    assert err.value.code in ("pay_bad_response", "ORDER_NOT_EXIST")
    prepay(order)  # now WeChat knows the order: a 200 whose signature cannot be verified
    with pytest.raises(PaymentError) as err:
        call_pay(pay.query, out_trade_no=order.number)
    assert err.value.code == "pay_bad_response"
    assert "微信支付" in err.value.message


def test_same_order_number_with_another_amount_is_refused(app, make, sandbox):
    order, _sku = new_order(make)
    prepay(order)
    with pytest.raises(PaymentError) as err:
        call_pay(
            get_pay().pay,
            description="改价",
            out_trade_no=order.number,
            amount={"total": order.total_fen + 1},
            payer={"openid": order.user.openid},
        )
    assert err.value.code == "OUT_TRADE_NO_USED"
    assert err.value.http_status == 400
    assert err.value.message == "商户订单号重复"


def test_query_close_and_reprepay(app, make, sandbox):
    order, _sku = new_order(make)
    assert query_order(order.number) is None  # WeChat never heard of it
    prepay(order)
    state = query_order(order.number)
    assert state["trade_state"] == "NOTPAY"
    assert state["amount"]["total"] == order.total_fen
    close_order(order.number)
    assert query_order(order.number)["trade_state"] == "CLOSED"
    with pytest.raises(PaymentError) as err:
        create_prepay(order, order.user.openid)
    assert err.value.code == "ORDER_CLOSED"
    assert err.value.message == "订单已关闭，请重新下单"


def test_unreachable_wechat_is_a_payment_error(app, make):
    order, _sku = new_order(make)
    pay = build_pay(
        SimpleNamespace(config={**app.config, "WECHAT_PAY_API_BASE": "http://127.0.0.1:9"})
    )
    with pytest.raises(PaymentError) as err:
        call_pay(pay.query, out_trade_no=order.number)
    assert err.value.code == "pay_unreachable"
    assert err.value.message == "无法连接微信支付，请稍后再试"


def test_bad_prepay_input_is_refused_in_chinese(app, make, sandbox):
    order, _sku = new_order(make)
    with pytest.raises(PaymentError) as err:
        create_prepay(order, "")
    assert err.value.status == 400
    assert "微信" in err.value.message
    assert db.session.scalar(select(func.count(PaymentTransaction.id))) == 0


def test_cashier_url_only_for_the_stand_in(app, sandbox):
    with app.test_request_context():
        url = sandbox_cashier_url("wx123", "http://127.0.0.1:5000/orders/1")
        assert url.startswith(f"{sandbox.url}/sandbox/cashier?prepay_id=wx123&return_url=")
    real = {**app.config, "WECHAT_PAY_API_BASE": "https://api.mch.weixin.qq.com"}
    with app.test_request_context():
        saved = dict(app.config)
        app.config.update(real)
        try:
            assert sandbox_cashier_url("wx123", "http://x/") is None
        finally:
            app.config.update(saved)
