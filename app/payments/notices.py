"""WeChat Pay APIv3 notices: check them, then apply them once.

``verify_notice`` trusts nothing until the signature holds: it checks the serial, the
timestamp window (wechatpayv3 does not: replays), the RSA signature with WeChat Pay's
public key, and only then parses the JSON and decrypts the AES-256-GCM resource with the
APIv3 key. ``apply_payment`` and ``apply_refund`` check what the resource says against
our records and change them once; they flush, the view commits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import bindparam, select
from wechatpayv3.utils import aes_decrypt, rsa_verify

from app.core.status import InvalidTransition
from app.extensions import db
from app.orders.models import Order, Refund
from app.orders.services import PaymentMismatch, mark_paid, mark_paid_by_number
from app.payments.client import get_pay, record_transaction
from app.payments.refunds import complete_refund, fail_refund

MAX_NOTICE_BYTES = 16 * 1024  # real notices are ~1 KB
TIMESTAMP_WINDOW = 300  # seconds either way


class NoticeRejected(Exception):
    """A notice we refuse: the HTTP status and the message for the APIv3 failure body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Notice:
    """A verified, decrypted notice."""

    id: str
    event_type: str
    resource: dict


def verify_notice(headers: Mapping[str, str], body: bytes, now: float | None = None) -> Notice:
    """Check a notice's headers and signature, then decrypt it; raise ``NoticeRejected``."""
    cfg = current_app.config
    if len(body) > MAX_NOTICE_BYTES:
        raise NoticeRejected(413, "通知内容过大")
    signature = headers.get("Wechatpay-Signature", "")
    timestamp = headers.get("Wechatpay-Timestamp", "")
    nonce = headers.get("Wechatpay-Nonce", "")
    serial = headers.get("Wechatpay-Serial", "")
    if not (signature and timestamp and nonce and serial):
        raise NoticeRejected(401, "缺少签名信息")
    if headers.get("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048") != (
        "WECHATPAY2-SHA256-RSA2048"
    ):
        raise NoticeRejected(401, "不支持的签名类型")
    if serial != cfg["WECHAT_PAY_PUBLIC_KEY_ID"]:
        raise NoticeRejected(401, "微信支付公钥ID不匹配")
    if not timestamp.isdecimal() or abs((now or time.time()) - int(timestamp)) > TIMESTAMP_WINDOW:
        raise NoticeRejected(401, "通知时间戳已过期")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoticeRejected(400, "通知编码错误") from None
    if not rsa_verify(timestamp, nonce, text, signature, get_pay()._core._public_key):
        raise NoticeRejected(401, "签名验证失败")

    # Signed by WeChat Pay: only now is the body worth parsing.
    try:
        data = json.loads(text)
        resource = data["resource"]
        if data.get("resource_type") != "encrypt-resource":
            raise ValueError("resource_type")
        if resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise ValueError("algorithm")
        plain = aes_decrypt(
            nonce=resource["nonce"],
            ciphertext=resource["ciphertext"],
            associated_data=resource.get("associated_data") or "",
            apiv3_key=cfg["WECHAT_PAY_APIV3_KEY"],
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise NoticeRejected(400, "通知格式错误") from None
    if plain is None:
        raise NoticeRejected(400, "通知解密失败")
    try:
        decrypted = json.loads(plain)
    except ValueError:
        raise NoticeRejected(400, "通知内容格式错误") from None
    if not isinstance(decrypted, dict):
        raise NoticeRejected(400, "通知内容格式错误")
    return Notice(str(data.get("id", "")), str(data.get("event_type", "")), decrypted)


def _parse_time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC)
    except ValueError:
        return None


def _amount(resource: dict, key: str) -> int:
    value = (resource.get("amount") or {}).get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise NoticeRejected(400, "金额格式错误")
    return value


# Built once with a bound parameter: the pay notice is the hottest write path.
_ORDER_BY_NUMBER = select(Order).where(Order.number == bindparam("number"))


def apply_payment(resource: dict) -> tuple[Order | None, bool]:
    """Apply a payment notice (or a query result): (order, True the first time it is paid).

    Raises ``NoticeRejected`` (nothing changed) when the notice is not for this merchant or
    app, names an unknown order, or carries the wrong amount. A payment for an order that
    can no longer take it (cancelled, paid by another transaction) is recorded for staff as
    an ``unmatched`` transaction and acknowledged, since WeChat's retries cannot fix it.
    """
    cfg = current_app.config
    if resource.get("mchid") != cfg["WECHAT_PAY_MCHID"]:
        raise NoticeRejected(400, "商户号不匹配")
    # Paid in the official account's pages or in the mini-program: both are ours.
    ours = (cfg["WECHAT_APPID"], cfg.get("WECHAT_MINIAPP_APPID"))
    if not resource.get("appid") or resource.get("appid") not in ours:
        raise NoticeRejected(400, "AppID不匹配")
    out_trade_no = resource.get("out_trade_no")
    transaction_id = resource.get("transaction_id")
    if not isinstance(out_trade_no, str) or not isinstance(transaction_id, str):
        raise NoticeRejected(400, "缺少订单号")
    total = _amount(resource, "total")
    payment = {
        "transaction_id": transaction_id,
        "amount_fen": total,
        "paid_at": _parse_time(resource.get("success_time")),
        "payload": resource,
    }
    if resource.get("trade_state") == "SUCCESS":
        # The common case in one round trip; anything unusual falls through unchanged.
        paid = mark_paid_by_number(out_trade_no, **payment)
        if paid is not None:
            return paid, True
    order = db.session.scalar(_ORDER_BY_NUMBER, {"number": out_trade_no})
    if order is None:
        raise NoticeRejected(404, "订单不存在")
    if total != order.total_fen:
        current_app.logger.warning(
            "pay notice amount %s != order %s total %s", total, order.number, order.total_fen
        )
        raise NoticeRejected(400, "金额与订单不符")
    if resource.get("trade_state") != "SUCCESS":
        return order, False  # only success is notified; anything else changes nothing
    try:
        first = mark_paid(order, **payment)
    except (PaymentMismatch, InvalidTransition) as exc:
        # mark_paid changed nothing; the money is real, so keep its trace for a refund.
        current_app.logger.error("payment %s for order %s: %s", transaction_id, out_trade_no, exc)
        record_transaction(
            order.id, "unmatched", transaction_id, total, "SUCCESS", resource, str(exc)
        )
        db.session.flush()
        return order, False
    return order, first


def apply_refund(resource: dict) -> tuple[Refund, bool]:
    """Apply a refund notice: (refund, True the first time it completes)."""
    cfg = current_app.config
    if resource.get("mchid") != cfg["WECHAT_PAY_MCHID"]:
        raise NoticeRejected(400, "商户号不匹配")
    out_refund_no = resource.get("out_refund_no")
    if not isinstance(out_refund_no, str):
        raise NoticeRejected(400, "缺少退款单号")
    refund = db.session.scalar(select(Refund).where(Refund.out_refund_no == out_refund_no))
    if refund is None:
        raise NoticeRejected(404, "退款单不存在")
    if resource.get("out_trade_no") != refund.order.number:
        raise NoticeRejected(400, "订单号不匹配")
    amount = _amount(resource, "refund")
    if amount != refund.amount_fen:
        raise NoticeRejected(400, "退款金额不符")
    refund_id = str(resource.get("refund_id") or "")
    status = resource.get("refund_status")
    if status == "SUCCESS":
        try:
            return refund, complete_refund(refund, refund_id, amount, resource)
        except PaymentMismatch as exc:
            raise NoticeRejected(400, str(exc)) from None
    if status in ("CLOSED", "ABNORMAL"):
        return refund, fail_refund(refund, refund_id, status, resource)
    return refund, False
