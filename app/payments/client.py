"""Our side of WeChat Pay APIv3, through wechatpayv3 in public-key mode.

One ``WeChatPay`` per app (keys loaded once), pointed at ``WECHAT_PAY_API_BASE``: the
library fixes its origin to api.mch.weixin.qq.com in ``_core._gate_way``, so we replace
that attribute after construction. Everything else stays the library's, including the
signature check on every 2xx response (the stand-in signs its answers with the WeChat
Pay key, exactly like WeChat).

Every WeChat failure (HTTP error, refused signature, network) becomes ``PaymentError``
with a Chinese message; callers show it, never a 500. Functions here flush, never commit.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask, current_app
from wechatpayv3 import WeChatPay, WeChatPayType

from app.core.metrics import count_wechat_call
from app.core.sql import dialect_insert
from app.core.time import to_shop_time
from app.extensions import db
from app.orders.models import PENDING_PAYMENT, Order, PaymentTransaction, Refund

REAL_PAY_ORIGIN = "https://api.mch.weixin.qq.com"
TIMEOUT = (5, 15)  # connect, read (seconds)

# WeChat's error codes we translate for people; anything else shows WeChat's own message.
WECHAT_MESSAGES = {
    "ORDERPAID": "该订单已支付",
    "ORDER_CLOSED": "订单已关闭，请重新下单",
    "OUT_TRADE_NO_USED": "商户订单号重复",
    "ORDER_NOT_EXIST": "微信支付订单不存在",
    "SIGN_ERROR": "微信支付签名错误，请检查商户证书配置",
    "NOT_ENOUGH": "商户账户余额不足，无法退款",
    "USER_ACCOUNT_ABNORMAL": "用户账户异常，无法原路退款",
    "FREQUENCY_LIMITED": "请求太频繁，请稍后再试",
    "SYSTEM_ERROR": "微信支付系统繁忙，请稍后再试",
    "PARAM_ERROR": "微信支付参数错误",
    "INVALID_REQUEST": "微信支付请求无效",
}


class PaymentError(Exception):
    """WeChat Pay refused or could not be reached: a code and a Chinese message."""

    def __init__(self, code: str, message: str, status: int = 502, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status  # what our own API should answer
        self.http_status = http_status  # what WeChat answered, if it answered


# --- the library client -------------------------------------------------------------------


def _read(path: str | None, what: str) -> str:
    if not path:
        raise PaymentError("pay_not_configured", f"微信支付未配置：缺少{what}", status=503)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        raise PaymentError("pay_not_configured", f"微信支付未配置：无法读取{what}", 503) from None


def build_pay(app: Flask) -> WeChatPay:
    """A ``WeChatPay`` for ``app``'s configuration, aimed at ``WECHAT_PAY_API_BASE``."""
    cfg = app.config
    pay = WeChatPay(
        wechatpay_type=WeChatPayType.JSAPI,
        mchid=cfg["WECHAT_PAY_MCHID"],
        private_key=_read(cfg.get("WECHAT_PAY_PRIVATE_KEY_PATH"), "商户私钥"),
        cert_serial_no=cfg["WECHAT_PAY_CERT_SERIAL"],
        apiv3_key=cfg["WECHAT_PAY_APIV3_KEY"],
        appid=cfg["WECHAT_APPID"],
        notify_url=f"{cfg['PUBLIC_BASE_URL']}/pay/notify",
        public_key=_read(cfg.get("WECHAT_PAY_PUBLIC_KEY_PATH"), "微信支付公钥"),
        public_key_id=cfg["WECHAT_PAY_PUBLIC_KEY_ID"],
        timeout=TIMEOUT,
    )
    # The library hard-codes WeChat's origin; paths stay exactly WeChat's.
    pay._core._gate_way = (cfg.get("WECHAT_PAY_API_BASE") or REAL_PAY_ORIGIN).rstrip("/")
    return pay


def get_pay() -> WeChatPay:
    """The current app's ``WeChatPay`` (built once per app: loading keys is not free)."""
    app = current_app._get_current_object()
    pay = app.extensions.get("wechatpay")
    if pay is None:
        pay = app.extensions["wechatpay"] = build_pay(app)
    return pay


def call_pay(fn, *args, **kwargs) -> tuple[int, Any]:
    """Run a library call; return (status, parsed JSON or None) or raise ``PaymentError``."""
    try:
        status, body = fn(*args, **kwargs)
    except requests.Timeout:
        count_wechat_call("pay", "timeout")
        raise PaymentError("pay_timeout", "连接微信支付超时，请稍后再试") from None
    except requests.RequestException:
        count_wechat_call("pay", "unreachable")
        raise PaymentError("pay_unreachable", "无法连接微信支付，请稍后再试") from None
    except Exception as exc:  # the library raises bare Exception (e.g. a bad signature)
        count_wechat_call("pay", "bad_response")
        current_app.logger.warning("wechat pay call failed: %s", exc)
        raise PaymentError("pay_bad_response", "微信支付应答校验失败，请稍后再试") from None
    count_wechat_call("pay", "ok" if status < 300 else "error")
    data: Any = None
    if body:
        try:
            data = json.loads(body)
        except (TypeError, ValueError):
            data = None
    if status >= 300:
        code = (data or {}).get("code", "SYSTEM_ERROR") if isinstance(data, dict) else "ERROR"
        detail = (data or {}).get("message", "") if isinstance(data, dict) else ""
        if code in ("INVALID_REQUEST", "PARAM_ERROR") and detail:
            message = f"微信支付：{detail}"  # WeChat's own words say what was wrong
        else:
            message = WECHAT_MESSAGES.get(code) or (
                f"微信支付：{detail}" if detail else "微信支付出错"
            )
        raise PaymentError(code, message, status=502 if status >= 500 else 409, http_status=status)
    return status, data


# --- payment records ----------------------------------------------------------------------


def record_transaction(
    order_id: int,
    kind: str,
    external_id: str,
    amount_fen: int,
    state: str = "",
    payload: dict | None = None,
    note: str = "",
) -> bool:
    """Append a payment event once: True if written, False if (kind, external_id) exists."""
    result = db.session.execute(
        dialect_insert(PaymentTransaction)
        .values(
            order_id=order_id,
            kind=kind,
            external_id=external_id[:64],
            amount_fen=amount_fen,
            state=state[:32],
            payload=payload or {},
            note=note,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["kind", "external_id"])
        .returning(PaymentTransaction.id)
    )
    # RETURNING, not rowcount: an ORM-executed INSERT reports rowcount -1 on psycopg.
    return result.scalar_one_or_none() is not None


# --- payments -----------------------------------------------------------------------------


def _rfc3339(moment: datetime) -> str:
    return to_shop_time(moment).isoformat(timespec="seconds")


def _description(order: Order) -> str:
    titles = [line.title for line in order.lines]
    text = titles[0] if titles else "商品"
    if len(titles) > 1:
        text += f" 等{len(titles)}件"
    return text[:120]  # WeChat allows 127 characters


def create_prepay(order: Order, openid: str, appid: str | None = None) -> str:
    """Create (or reuse) the JSAPI prepay for ``order``; return its prepay_id.

    ``appid``: the app the payer opened (the mini-program's, with its openid); None is the
    official account's. The notice comes to the same ``/pay/notify`` either way. The
    prepay expires with the order's payment deadline. Each new prepay_id is recorded once
    as a ``prepay`` payment transaction.
    """
    if order.status != PENDING_PAYMENT:
        raise PaymentError("not_payable", "订单当前状态不能支付", status=409)
    if not openid:
        raise PaymentError("no_openid", "请在微信中打开并登录后再支付", status=400)
    deadline = order.pay_deadline
    if deadline.tzinfo is None:  # SQLite drops the zone; stored values are UTC
        deadline = deadline.replace(tzinfo=UTC)
    expire = max(deadline, datetime.now(UTC) + timedelta(minutes=1))
    _status, data = call_pay(
        get_pay().pay,
        description=_description(order),
        out_trade_no=order.out_trade_no,
        amount={"total": order.total_fen, "currency": "CNY"},
        payer={"openid": openid},
        time_expire=_rfc3339(expire),
        appid=appid or None,
    )
    prepay_id = (data or {}).get("prepay_id")
    if not prepay_id:
        raise PaymentError("pay_bad_response", "微信支付未返回预支付单，请稍后再试")
    record_transaction(order.id, "prepay", prepay_id, order.total_fen, "NOTPAY", data)
    db.session.flush()
    return prepay_id


def jsapi_params(prepay_id: str, appid: str | None = None) -> dict[str, str]:
    """Parameters for ``WeixinJSBridge.invoke('getBrandWCPayRequest', ...)``, or, with the
    mini-program's ``appid``, for ``wx.requestPayment`` (which takes the same fields but
    appId).

    paySign is RSA-SHA256 with the merchant key over "appId\\ntimeStamp\\nnonceStr\\npackage\\n".
    """
    appid = appid or current_app.config["WECHAT_APPID"]
    timestamp = str(int(time.time()))
    nonce = secrets.token_hex(16)
    package = f"prepay_id={prepay_id}"
    return {
        "appId": appid,
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": get_pay().sign([appid, timestamp, nonce, package]),
    }


def query_order(out_trade_no: str) -> dict | None:
    """WeChat's view of an order (trade_state, amount, transaction_id...), None if unknown."""
    try:
        _status, data = call_pay(get_pay().query, out_trade_no=out_trade_no)
    except PaymentError as err:
        if err.code == "ORDER_NOT_EXIST":
            return None
        raise
    return data


def close_order(out_trade_no: str) -> None:
    """Close an unpaid order at WeChat so it can no longer be paid."""
    call_pay(get_pay().close, out_trade_no=out_trade_no)


def request_refund(refund: Refund) -> dict:
    """Ask WeChat to refund ``refund`` (idempotent by out_refund_no); return its answer."""
    order = refund.order
    cfg = current_app.config
    _status, data = call_pay(
        get_pay().refund,
        out_refund_no=refund.out_refund_no,
        amount={"refund": refund.amount_fen, "total": order.paid_fen, "currency": "CNY"},
        out_trade_no=order.out_trade_no,
        reason=(refund.reason or "")[:80] or None,
        notify_url=f"{cfg['PUBLIC_BASE_URL']}/pay/refund-notify",
    )
    if not isinstance(data, dict) or not data.get("refund_id"):
        raise PaymentError("pay_bad_response", "微信支付未返回退款单，请稍后再试")
    return data


def query_refund(out_refund_no: str) -> dict:
    """WeChat's view of a refund (status, amount, refund_id)."""
    _status, data = call_pay(get_pay().query_refund, out_refund_no=out_refund_no)
    return data or {}


# --- the stand-in's cashier -----------------------------------------------------------------


def uses_sandbox() -> bool:
    """True when Pay calls go to the local stand-in (never in production)."""
    cfg = current_app.config
    base = (cfg.get("WECHAT_PAY_API_BASE") or REAL_PAY_ORIGIN).rstrip("/")
    return cfg.get("ENV_NAME") != "production" and base != REAL_PAY_ORIGIN


def sandbox_cashier_url(prepay_id: str, return_url: str) -> str | None:
    """The stand-in's cashier page for ``prepay_id`` (development, outside real WeChat).

    None when payments go to the real WeChat Pay: then only WeixinJSBridge can pay.
    """
    if not uses_sandbox():
        return None
    base = current_app.config["WECHAT_PAY_API_BASE"].rstrip("/")
    return f"{base}/sandbox/cashier?{urlencode({'prepay_id': prepay_id, 'return_url': return_url})}"
