"""WeChat Pay APIv3 in the stand-in: JSAPI prepay, query, close, refunds, and notices.

Like WeChat it checks the ``Authorization: WECHATPAY2-SHA256-RSA2048 ...`` signature of
every request with the merchant's public key (401 SIGN_ERROR otherwise) and signs every
answer with the WeChat Pay private key (``Wechatpay-Signature/-Timestamp/-Nonce/-Serial``),
so the shop's real client code verifies real signatures both ways.

Development: ``GET /sandbox/cashier?prepay_id=...`` is the pay sheet WeChat would show;
pressing 支付 marks the order paid and sends a signed, AES-256-GCM encrypted notice to the
order's notify_url, retried on non-2xx on WeChat's schedule (15s, 15s, 30s, 3m, 10m, 20m,
30m ×3, 1h, 3h ×3, 6h ×2) multiplied by a time factor. Refunds complete after a short
delay and are notified the same way.

Test switches under ``/_sandbox/pay/...``: settings (time factor, duplicates sent at once,
refund delay, notice timeout), paying an order without the page, the delivery log.
Settings (``create_sandbox_app``): ``SANDBOX_PAY_KEYS_DIR``, ``SANDBOX_NOTIFY_TIME_FACTOR``,
``SANDBOX_NOTIFY_DUPLICATES``, ``SANDBOX_REFUND_DELAY``, ``SANDBOX_NOTIFY_TIMEOUT``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Blueprint, Flask, current_app, jsonify, redirect, render_template, request

from app.core.time import SHOP_TZ
from app.payments.sandbox_keys import SandboxKeys, ensure_sandbox_keys

bp = Blueprint("sandbox_pay", __name__)

RETRY_SCHEDULE = (
    15,
    15,
    30,
    180,
    600,
    1200,
    1800,
    1800,
    1800,
    3600,
    10800,
    10800,
    10800,
    21600,
    21600,
)
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
AUTH_RE = re.compile(r'(\w+)="([^"]*)"')
OUT_TRADE_NO_RE = re.compile(r"^[A-Za-z0-9_\-|*]{6,32}$")
OUT_REFUND_NO_RE = re.compile(r"^[A-Za-z0-9_\-|*@]{1,64}$")
AUTH_WINDOW = 300


def _now_text() -> str:
    return datetime.now(SHOP_TZ).isoformat(timespec="seconds")


# --- keys and signatures ------------------------------------------------------------------


@dataclass
class PayKeys:
    """The keys the stand-in holds: WeChat Pay's pair and the merchant's public key."""

    merchant_serial: str
    public_key_id: str
    merchant_public: object
    wechatpay_private: object

    @classmethod
    def load(cls, keys: SandboxKeys) -> PayKeys:
        return cls(
            merchant_serial=keys.merchant_serial,
            public_key_id=keys.public_key_id,
            merchant_public=serialization.load_pem_public_key(
                keys.merchant_public_path.read_bytes()
            ),
            wechatpay_private=serialization.load_pem_private_key(
                keys.wechatpay_private_path.read_bytes(), password=None
            ),
        )


def rsa_sign(private_key, message: str) -> str:
    """Base64 RSA-SHA256 (PKCS#1 v1.5) signature of ``message``."""
    raw = private_key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


def signed_headers(keys: PayKeys, body: str, timestamp: int | None = None) -> dict[str, str]:
    """WeChat Pay's response/notice signature headers over ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(16).upper()
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(keys.wechatpay_private, f"{ts}\n{nonce}\n{body}\n"),
        "Wechatpay-Serial": keys.public_key_id,
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
    }


def encrypt_resource(apiv3_key: str, plain: dict, associated_data: str, original_type: str) -> dict:
    """An APIv3 ``resource``: AEAD_AES_256_GCM with the APIv3 key and a 12-char nonce."""
    nonce = secrets.token_hex(6)
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(
        nonce.encode(), json.dumps(plain, ensure_ascii=False).encode(), associated_data.encode()
    )
    return {
        "original_type": original_type,
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def signed_notice(
    keys: PayKeys,
    apiv3_key: str,
    resource: dict,
    event_type: str = "TRANSACTION.SUCCESS",
    timestamp: int | None = None,
    notice_id: str | None = None,
) -> tuple[dict[str, str], str]:
    """A complete notice as WeChat sends it: (headers, body), signed and encrypted.

    Also what tests use to craft forged, stale and tampered variants with the stand-in's
    real keys.
    """
    refund = event_type.startswith("REFUND.")
    body = json.dumps(
        {
            "id": notice_id or str(uuid.uuid4()),
            "create_time": _now_text(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": ("退款成功" if event_type == "REFUND.SUCCESS" else "退款状态变化")
            if refund
            else "支付成功",
            "resource": encrypt_resource(
                apiv3_key,
                resource,
                "refund" if refund else "transaction",
                "refund" if refund else "transaction",
            ),
        },
        ensure_ascii=False,
    )
    headers = signed_headers(keys, body, timestamp)
    headers["Content-Type"] = "application/json"
    return headers, body


def load_pay_keys(directory: str | Path) -> PayKeys:
    """The stand-in's Pay keys from ``directory`` (generated there the first time)."""
    return PayKeys.load(ensure_sandbox_keys(directory))


# --- state --------------------------------------------------------------------------------


@dataclass
class Transaction:
    """One merchant order as WeChat Pay knows it."""

    appid: str
    mchid: str
    out_trade_no: str
    description: str
    total: int
    openid: str
    notify_url: str
    prepay_id: str
    created_at: float
    time_expire: str | None = None
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None

    def as_json(self) -> dict:
        state_desc = {
            "SUCCESS": "支付成功",
            "NOTPAY": "未支付",
            "CLOSED": "已关闭",
            "REFUND": "转入退款",
            "USERPAYING": "用户支付中",
            "PAYERROR": "支付失败",
        }
        data = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": self.trade_state,
            "trade_state_desc": state_desc.get(self.trade_state, ""),
            "attach": "",
            "payer": {"openid": self.openid},
            "amount": {"total": self.total, "currency": "CNY"},
        }
        if self.transaction_id:
            data["transaction_id"] = self.transaction_id
            data["bank_type"] = "OTHERS"
            data["success_time"] = self.success_time
            data["amount"].update(payer_total=self.total, payer_currency="CNY")
        return data


@dataclass
class RefundRecord:
    """One refund as WeChat Pay knows it."""

    refund_id: str
    out_refund_no: str
    out_trade_no: str
    transaction_id: str
    mchid: str
    refund: int
    total: int
    notify_url: str | None
    reason: str
    create_time: str
    status: str = "PROCESSING"
    success_time: str | None = None

    def as_json(self) -> dict:
        data = {
            "refund_id": self.refund_id,
            "out_refund_no": self.out_refund_no,
            "transaction_id": self.transaction_id,
            "out_trade_no": self.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": self.create_time,
            "status": self.status,
            "amount": {
                "total": self.total,
                "refund": self.refund,
                "payer_total": self.total,
                "payer_refund": self.refund,
                "settlement_refund": self.refund,
                "settlement_total": self.total,
                "discount_refund": 0,
                "currency": "CNY",
            },
        }
        if self.success_time:
            data["success_time"] = self.success_time
        return data

    def notice_resource(self) -> dict:
        return {
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "transaction_id": self.transaction_id,
            "out_refund_no": self.out_refund_no,
            "refund_id": self.refund_id,
            "refund_status": self.status,
            "success_time": self.success_time,
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": self.total,
                "refund": self.refund,
                "payer_total": self.total,
                "payer_refund": self.refund,
            },
        }


@dataclass
class PayState:
    """Orders, refunds and notice deliveries of the stand-in's Pay, behind one lock."""

    keys: PayKeys
    mchid: str
    appid: str
    apiv3_key: str
    settings: dict
    other_appids: tuple[str, ...] = ()  # the mini-program's: JSAPI pay with another appid
    lock: threading.RLock = field(default_factory=threading.RLock)
    transactions: dict[str, Transaction] = field(default_factory=dict)
    prepays: dict[str, str] = field(default_factory=dict)
    refunds: dict[str, RefundRecord] = field(default_factory=dict)
    deliveries: list[dict] = field(default_factory=list)

    def log_delivery(self, entry: dict) -> None:
        with self.lock:
            self.deliveries.append(entry)


def get_pay_state() -> PayState:
    return current_app.extensions["wechat_sandbox_pay"]


def init_pay(app: Flask) -> None:
    """Attach the Pay state and blueprint to the stand-in ``app``."""
    from config import INSTANCE_DIR

    cfg = app.config
    testing = bool(cfg.get("TESTING"))
    keys_dir = cfg.get("SANDBOX_PAY_KEYS_DIR") or INSTANCE_DIR / "wechatpay-sandbox"
    app.extensions["wechat_sandbox_pay"] = PayState(
        keys=load_pay_keys(keys_dir),
        mchid=cfg["SANDBOX_MCHID"],
        appid=cfg["SANDBOX_APPID"],
        apiv3_key=cfg["SANDBOX_APIV3_KEY"],
        other_appids=tuple(a for a in (cfg.get("SANDBOX_MINIAPP_APPID"),) if a),
        settings={
            # 15 s becomes 0.15 s in development (about 15 minutes for the whole day).
            "time_factor": float(
                cfg.get("SANDBOX_NOTIFY_TIME_FACTOR") or (0.0005 if testing else 0.01)
            ),
            "duplicates": int(cfg.get("SANDBOX_NOTIFY_DUPLICATES") or 1),
            "refund_delay": float(cfg.get("SANDBOX_REFUND_DELAY") or (0.05 if testing else 2.0)),
            "timeout": float(cfg.get("SANDBOX_NOTIFY_TIMEOUT") or (2.0 if testing else 5.0)),
        },
    )
    app.register_blueprint(bp)


# --- notices ------------------------------------------------------------------------------


def _post_notice(
    state: PayState,
    url: str,
    event_type: str,
    build: Callable[[str], tuple[dict, str]],
    notice_id: str,
    attempt: int,
    copy: int,
) -> bool:
    headers, body = build(notice_id)
    entry = {
        "id": notice_id,
        "event_type": event_type,
        "url": url,
        "attempt": attempt,
        "copy": copy,
    }
    started = time.perf_counter()
    try:
        res = requests.post(
            url, data=body.encode(), headers=headers, timeout=state.settings["timeout"]
        )
        entry.update(status=res.status_code, body=res.text[:200])
        ok = 200 <= res.status_code < 300
    except requests.RequestException as exc:
        entry.update(status=None, error=type(exc).__name__)
        ok = False
    entry["seconds"] = round(time.perf_counter() - started, 4)
    state.log_delivery(entry)
    return ok


def deliver_notice(
    state: PayState, url: str, event_type: str, build: Callable[[str], tuple[dict, str]]
) -> None:
    """Send one notice until a 2xx, on WeChat's retry schedule (compressed).

    ``build(notice_id)`` gives the signed headers and body; payment, refund and transfer
    notices differ only there. Each attempt may go out as several concurrent copies.
    """
    notice_id = str(uuid.uuid4())
    for attempt in range(len(RETRY_SCHEDULE) + 1):
        copies = max(1, state.settings["duplicates"])
        results = [False] * copies

        def send(i: int, attempt: int = attempt, results: list[bool] = results) -> None:
            results[i] = _post_notice(state, url, event_type, build, notice_id, attempt, i)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(copies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if any(results) or attempt == len(RETRY_SCHEDULE):
            return
        time.sleep(RETRY_SCHEDULE[attempt] * state.settings["time_factor"])


def _deliver(state: PayState, url: str, resource: dict, event_type: str) -> None:
    deliver_notice(
        state,
        url,
        event_type,
        lambda notice_id: signed_notice(
            state.keys, state.apiv3_key, resource, event_type, notice_id=notice_id
        ),
    )


def send_notice(state: PayState, url: str, resource: dict, event_type: str) -> None:
    """Deliver a notice in the background, like WeChat's servers do."""
    threading.Thread(target=_deliver, args=(state, url, resource, event_type), daemon=True).start()


def pay_transaction(state: PayState, out_trade_no: str, notify: bool = True) -> Transaction | None:
    """The payer confirmed: SUCCESS, a transaction id, and (optionally) the notice."""
    with state.lock:
        tx = state.transactions.get(out_trade_no)
        if tx is None or tx.trade_state not in ("NOTPAY", "USERPAYING"):
            return None
        tx.trade_state = "SUCCESS"
        tx.transaction_id = (
            "4200"
            + datetime.now(SHOP_TZ).strftime("%Y%m%d")
            + str(secrets.randbelow(10**16)).zfill(16)
        )
        tx.success_time = _now_text()
        resource = tx.as_json()
    if notify:
        send_notice(state, tx.notify_url, resource, "TRANSACTION.SUCCESS")
    return tx


def _finish_refund(state: PayState, out_refund_no: str) -> None:
    with state.lock:
        record = state.refunds.get(out_refund_no)
        if record is None or record.status != "PROCESSING":
            return
        record.status = "SUCCESS"
        record.success_time = _now_text()
        resource = record.notice_resource()
        url = record.notify_url
    if url:
        send_notice(state, url, resource, "REFUND.SUCCESS")


# --- request checks and signed answers ------------------------------------------------------


def _answer(payload: dict | None, status: int = 200):
    """A signed answer (every APIv3 response carries WeChat Pay's signature)."""
    body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
    response = current_app.response_class(
        body, status=status, mimetype="application/json" if payload is not None else None
    )
    if payload is not None:
        response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers.update(signed_headers(get_pay_state().keys, body))
    response.headers["Request-ID"] = secrets.token_hex(16)
    return response


def _error(status: int, code: str, message: str):
    return _answer({"code": code, "message": message}, status)


def _check_authorization():
    """None if the request is signed by the merchant's key, else WeChat's 401 answer."""
    state = get_pay_state()
    header = request.headers.get("Authorization", "")
    scheme, _, rest = header.partition(" ")
    if scheme != SIGNATURE_TYPE:
        return _error(401, "SIGN_ERROR", "Authorization 不合法")
    fields = dict(AUTH_RE.findall(rest))
    needed = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
    if any(not fields.get(k) for k in needed):
        return _error(401, "SIGN_ERROR", "Authorization 缺少必要字段")
    if fields["mchid"] != state.mchid:
        return _error(401, "SIGN_ERROR", "商户号与签名不匹配")
    if fields["serial_no"] != state.keys.merchant_serial:
        return _error(401, "SIGN_ERROR", "商户证书序列号有误")
    if (
        not fields["timestamp"].isdecimal()
        or abs(time.time() - int(fields["timestamp"])) > AUTH_WINDOW
    ):
        return _error(401, "SIGN_ERROR", "签名时间戳过期")
    path = request.path
    if request.query_string:
        path += "?" + request.query_string.decode()
    body = request.get_data(as_text=True)
    message = f"{request.method}\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n{body}\n"
    try:
        state.keys.merchant_public.verify(
            base64.b64decode(fields["signature"]),
            message.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return _error(401, "SIGN_ERROR", "签名错误")
    return None


@bp.before_request
def _authorize():
    if request.path.startswith("/v3/"):
        return _check_authorization()
    return None


def _json_body() -> dict | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


def _is_amount(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _valid_url(value) -> bool:
    if not isinstance(value, str) or len(value) > 255:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query


# --- APIv3 ----------------------------------------------------------------------------------


@bp.post("/v3/pay/transactions/jsapi")
def jsapi():
    """JSAPI 下单: returns ``{"prepay_id"}`` (the same one again for an identical request)."""
    state = get_pay_state()
    body = _json_body()
    if body is None:
        return _error(400, "PARAM_ERROR", "请求体不是合法的 JSON")
    amount = body.get("amount") or {}
    payer = body.get("payer") or {}
    if body.get("appid") not in (state.appid, *state.other_appids):
        return _error(400, "PARAM_ERROR", "appid和mch_id不匹配")
    if body.get("mchid") != state.mchid:
        return _error(400, "PARAM_ERROR", "mchid与请求商户号不一致")
    description = body.get("description")
    if not isinstance(description, str) or not 1 <= len(description) <= 127:
        return _error(400, "PARAM_ERROR", "description 格式不正确")
    out_trade_no = body.get("out_trade_no")
    if not isinstance(out_trade_no, str) or not OUT_TRADE_NO_RE.match(out_trade_no):
        return _error(400, "PARAM_ERROR", "out_trade_no 格式不正确")
    if not _valid_url(body.get("notify_url")):
        return _error(400, "PARAM_ERROR", "notify_url 格式不正确")
    if not isinstance(amount, dict) or not _is_amount(amount.get("total")):
        return _error(400, "PARAM_ERROR", "amount.total 必须为正整数（分）")
    if amount.get("currency", "CNY") != "CNY":
        return _error(400, "PARAM_ERROR", "仅支持人民币 CNY")
    if (
        not isinstance(payer, dict)
        or not isinstance(payer.get("openid"), str)
        or not payer["openid"]
    ):
        return _error(400, "PARAM_ERROR", "JSAPI 下单必须传 payer.openid")
    with state.lock:
        tx = state.transactions.get(out_trade_no)
        if tx is not None:
            if tx.trade_state in ("SUCCESS", "REFUND"):
                return _error(400, "ORDERPAID", "该订单已支付")
            if tx.trade_state == "CLOSED":
                return _error(400, "ORDER_CLOSED", "订单已关闭")
            if (tx.total, tx.description, tx.openid, tx.appid) != (
                amount["total"],
                description,
                payer["openid"],
                body["appid"],
            ):
                return _error(400, "OUT_TRADE_NO_USED", "商户订单号重复")
            tx.notify_url = body["notify_url"]
            return _answer({"prepay_id": tx.prepay_id})
        prepay_id = "wx" + datetime.now(SHOP_TZ).strftime("%d%H%M%S") + secrets.token_hex(13)
        tx = Transaction(
            appid=body["appid"],
            mchid=state.mchid,
            out_trade_no=out_trade_no,
            description=description,
            total=amount["total"],
            openid=payer["openid"],
            notify_url=body["notify_url"],
            prepay_id=prepay_id,
            created_at=time.time(),
            time_expire=body.get("time_expire"),
        )
        state.transactions[out_trade_no] = tx
        state.prepays[prepay_id] = out_trade_no
    return _answer({"prepay_id": prepay_id})


@bp.get("/v3/pay/transactions/out-trade-no/<out_trade_no>")
def query(out_trade_no: str):
    """查询订单 by out_trade_no (``?mchid=`` required)."""
    state = get_pay_state()
    if request.args.get("mchid") != state.mchid:
        return _error(400, "PARAM_ERROR", "mchid 参数错误")
    with state.lock:
        tx = state.transactions.get(out_trade_no)
        if tx is None:
            return _error(404, "ORDER_NOT_EXIST", "订单不存在")
        return _answer(tx.as_json())


@bp.post("/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
def close(out_trade_no: str):
    """关闭订单: 204; a paid order cannot be closed."""
    state = get_pay_state()
    body = _json_body()
    if body is None or body.get("mchid") != state.mchid:
        return _error(400, "PARAM_ERROR", "mchid 参数错误")
    with state.lock:
        tx = state.transactions.get(out_trade_no)
        if tx is None:
            return _error(404, "ORDER_NOT_EXIST", "订单不存在")
        if tx.trade_state in ("SUCCESS", "REFUND"):
            return _error(400, "ORDERPAID", "该订单已支付")
        tx.trade_state = "CLOSED"
    return _answer(None, 204)


@bp.post("/v3/refund/domestic/refunds")
def create_refund():
    """申请退款: PROCESSING now, SUCCESS (and the notice) after ``refund_delay``."""
    state = get_pay_state()
    body = _json_body()
    if body is None:
        return _error(400, "PARAM_ERROR", "请求体不是合法的 JSON")
    out_refund_no = body.get("out_refund_no")
    if not isinstance(out_refund_no, str) or not OUT_REFUND_NO_RE.match(out_refund_no):
        return _error(400, "PARAM_ERROR", "out_refund_no 格式不正确")
    amount = body.get("amount") or {}
    if (
        not isinstance(amount, dict)
        or not _is_amount(amount.get("refund"))
        or not _is_amount(amount.get("total"))
    ):
        return _error(400, "PARAM_ERROR", "amount.refund 与 amount.total 必须为正整数（分）")
    if amount.get("currency", "CNY") != "CNY":
        return _error(400, "PARAM_ERROR", "仅支持人民币 CNY")
    notify_url = body.get("notify_url")
    if notify_url is not None and not _valid_url(notify_url):
        return _error(400, "PARAM_ERROR", "notify_url 格式不正确")
    with state.lock:
        existing = state.refunds.get(out_refund_no)
        if existing is not None:
            if existing.refund != amount["refund"]:
                return _error(400, "INVALID_REQUEST", "退款单号已存在且金额不一致")
            return _answer(existing.as_json())
        tx = None
        if body.get("transaction_id"):
            tx = next(
                (
                    t
                    for t in state.transactions.values()
                    if t.transaction_id == body["transaction_id"]
                ),
                None,
            )
        elif body.get("out_trade_no"):
            tx = state.transactions.get(body["out_trade_no"])
        if tx is None:
            return _error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if tx.trade_state not in ("SUCCESS", "REFUND"):
            return _error(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if amount["total"] != tx.total:
            return _error(400, "PARAM_ERROR", "订单金额 amount.total 与原订单不一致")
        refunded = sum(
            r.refund
            for r in state.refunds.values()
            if r.out_trade_no == tx.out_trade_no and r.status != "CLOSED"
        )
        if refunded + amount["refund"] > tx.total:
            return _error(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        record = RefundRecord(
            refund_id="50" + str(secrets.randbelow(10**27)).zfill(27),
            out_refund_no=out_refund_no,
            out_trade_no=tx.out_trade_no,
            transaction_id=tx.transaction_id or "",
            mchid=state.mchid,
            refund=amount["refund"],
            total=tx.total,
            notify_url=notify_url,
            reason=str(body.get("reason") or ""),
            create_time=_now_text(),
        )
        state.refunds[out_refund_no] = record
        tx.trade_state = "REFUND"
        answer = record.as_json()
    timer = threading.Timer(state.settings["refund_delay"], _finish_refund, (state, out_refund_no))
    timer.daemon = True
    timer.start()
    return _answer(answer)


@bp.get("/v3/refund/domestic/refunds/<out_refund_no>")
def get_refund(out_refund_no: str):
    """查询单笔退款."""
    state = get_pay_state()
    with state.lock:
        record = state.refunds.get(out_refund_no)
        if record is None:
            return _error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return _answer(record.as_json())


# --- the cashier (development) and test switches ------------------------------------------


def _safe_return_url(value: str | None) -> str | None:
    return value if value and _valid_url(value.split("?", 1)[0]) else None


@bp.get("/sandbox/cashier")
def cashier():
    """The pay sheet WeChat would show inside its browser: 支付 or 取消."""
    state = get_pay_state()
    prepay_id = request.args.get("prepay_id", "")
    return_url = _safe_return_url(request.args.get("return_url"))
    with state.lock:
        out_trade_no = state.prepays.get(prepay_id)
        tx = state.transactions.get(out_trade_no or "")
    if tx is None:
        return render_template(
            "sandbox/cashier.html", tx=None, error="预支付交易单不存在或已过期"
        ), 404
    return render_template(
        "sandbox/cashier.html", tx=tx, prepay_id=prepay_id, return_url=return_url, error=None
    )


@bp.post("/sandbox/cashier")
def cashier_submit():
    """支付 pays and notifies; 取消 leaves the order unpaid. Then back to the shop."""
    state = get_pay_state()
    prepay_id = request.form.get("prepay_id", "")
    return_url = _safe_return_url(request.form.get("return_url"))
    with state.lock:
        out_trade_no = state.prepays.get(prepay_id)
        tx = state.transactions.get(out_trade_no or "")
    if tx is None:
        return render_template(
            "sandbox/cashier.html", tx=None, error="预支付交易单不存在或已过期"
        ), 404
    action = request.form.get("action")
    if action == "pay":
        if tx.trade_state != "NOTPAY":
            return render_template(
                "sandbox/cashier.html",
                tx=tx,
                prepay_id=prepay_id,
                return_url=return_url,
                error="该订单已支付或已关闭",
            ), 409
        pay_transaction(state, tx.out_trade_no)
        result = "ok"
    else:
        result = "cancel"
    if return_url:
        sep = "&" if "?" in return_url else "?"
        return redirect(f"{return_url}{sep}pay_result={result}", code=303)
    return render_template("sandbox/cashier_done.html", tx=tx, result=result)


@bp.route("/_sandbox/pay/settings", methods=["GET", "POST"])
def pay_settings():
    """Read or change the notice settings (tests: time factor, duplicates, refund delay)."""
    state = get_pay_state()
    body = _json_body() or {}
    with state.lock:
        for key, kind in (
            ("time_factor", float),
            ("duplicates", int),
            ("refund_delay", float),
            ("timeout", float),
        ):
            if key in body:
                state.settings[key] = kind(body[key])
        return jsonify(state.settings)


@bp.post("/_sandbox/pay/orders/<out_trade_no>/pay")
def pay_without_page(out_trade_no: str):
    """Pay an order as the cashier's 支付 would; ``{"notify": false}`` skips the notice."""
    state = get_pay_state()
    body = _json_body() or {}
    tx = pay_transaction(state, out_trade_no, notify=body.get("notify", True) is not False)
    if tx is None:
        return jsonify(error="unknown or not payable"), 409
    return jsonify(tx.as_json())


@bp.get("/_sandbox/pay/deliveries")
def deliveries():
    """Every notice attempt so far (url, attempt, copy, HTTP status)."""
    state = get_pay_state()
    with state.lock:
        return jsonify(deliveries=list(state.deliveries))
