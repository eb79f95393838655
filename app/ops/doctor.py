"""``flask doctor``: check a production configuration end to end, in plain words.

Each check says what it looked at and, when something is wrong, what to do, in Chinese and
English. The command exits non-zero when any check fails. Checks, in order:

1. settings: everything ``APP_ENV=production`` refuses to start with (config.py's
   ``production_problems``), and ``METRICS_TOKEN`` or ``METRICS_ALLOW`` for /metrics;
2. database: it answers, and the schema is at the migrations' head;
3. Redis: it answers;
4. WeChat token: ``/cgi-bin/stable_token`` with the configured appid and secret, now;
5. Pay key pair: the merchant key signs a real request (an order query) and WeChat Pay
   accepts the signature (a 401 means the key or its serial is wrong);
6. Pay platform public key: it parses, and it verifies a signed answer of WeChat Pay (a
   query of the last paid order; without one, only the parse is checked);
7. notify URL: ``PUBLIC_BASE_URL/pay/notify`` is https and answers from outside (a GET
   gets the shop's 405).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from flask import Flask
from sqlalchemy import select

from app.core.redis import redis_for
from app.extensions import db
from app.ops.readiness import check_database, check_migrations, check_redis
from app.orders.models import Order
from app.payments.client import PaymentError, get_pay, query_order
from app.wechat.clients import WeChatClient
from config import ProductionConfig, production_problems

NOTIFY_TIMEOUT = 10
PROBE_TRADE_NO = "DOCTOR-PROBE-0000000001"


@dataclass
class Check:
    name: str
    ok: bool
    message: str


def _settings(app: Flask) -> list[Check]:
    problems = production_problems(dict(app.config), ProductionConfig.REQUIRED)
    checks = [Check("settings 配置", False, problem) for problem in problems]
    if not checks:
        checks.append(Check("settings 配置", True, "production settings complete 生产配置完整"))
    return checks


def _wechat_token(app: Flask) -> Check:
    client = WeChatClient(
        app.config["WECHAT_APPID"] or "",
        app.config["WECHAT_SECRET"] or "",
        redis=redis_for(app),
        api_base=app.config["WECHAT_API_BASE"],
    )
    try:
        client.check_credentials()
    except Exception as exc:
        return Check(
            "WeChat token 公众号令牌",
            False,
            f"WeChat refused or did not answer 获取 access_token 失败: {exc}. Check "
            "WECHAT_APPID / WECHAT_SECRET and the IP whitelist 检查 AppID、AppSecret 和 IP 白名单",
        )
    return Check("WeChat token 公众号令牌", True, "access_token fetched 已取得 access_token")


def _pay_checks(app: Flask) -> list[Check]:
    cfg = app.config
    checks = []
    try:
        load_pem_private_key(Path(cfg["WECHAT_PAY_PRIVATE_KEY_PATH"]).read_bytes(), None)
    except Exception as exc:
        return [
            Check(
                "Pay key pair 商户密钥",
                False,
                f"merchant private key unreadable 商户私钥无法读取: {type(exc).__name__}",
            )
        ]
    try:
        load_pem_public_key(Path(cfg["WECHAT_PAY_PUBLIC_KEY_PATH"]).read_bytes())
    except Exception as exc:
        return [
            Check(
                "Pay public key 微信支付公钥",
                False,
                f"platform public key unreadable 微信支付公钥无法读取: {type(exc).__name__}",
            )
        ]
    try:
        query_order(PROBE_TRADE_NO)  # None: WeChat Pay accepted our signature, no such order
    except PaymentError as err:
        if err.http_status == 401:
            message = (
                "WeChat Pay refused our signature 签名被拒: WECHAT_PAY_PRIVATE_KEY_PATH and "
                "WECHAT_PAY_CERT_SERIAL must be the merchant API key and its serial "
                "商户私钥或证书序列号不对"
            )
        else:
            message = f"WeChat Pay did not answer as expected 微信支付应答异常: {err.code} {err}"
        return [Check("Pay key pair 商户密钥", False, message)]
    checks.append(Check("Pay key pair 商户密钥", True, "signature accepted 签名已被接受"))
    paid = db.session.scalar(
        select(Order.number).where(Order.paid_at.is_not(None)).order_by(Order.id.desc()).limit(1)
    )
    if paid is None:
        checks.append(
            Check(
                "Pay public key 微信支付公钥",
                True,
                "parses; no paid order yet to verify a signed answer 已解析，暂无已付订单可验签",
            )
        )
        return checks
    try:
        query_order(paid)
    except PaymentError as err:
        if err.code == "pay_bad_response":
            message = (
                "WeChat Pay's answer did not verify 应答验签失败: WECHAT_PAY_PUBLIC_KEY_PATH / "
                "WECHAT_PAY_PUBLIC_KEY_ID must be the platform public key 微信支付公钥不对"
            )
        else:
            message = f"order query failed 查单失败: {err.code} {err}"
        checks.append(Check("Pay public key 微信支付公钥", False, message))
    else:
        checks.append(
            Check("Pay public key 微信支付公钥", True, "a signed answer verified 应答验签通过")
        )
    return checks


def _notify_url(app: Flask) -> list[Check]:
    url = f"{(app.config.get('PUBLIC_BASE_URL') or '').rstrip('/')}/pay/notify"
    checks = []
    if urlsplit(url).scheme != "https":
        checks.append(
            Check(
                "notify URL 支付通知地址",
                False,
                f"{url} is not https: WeChat Pay only calls https 支付通知地址必须是 https",
            )
        )
    try:
        response = requests.get(url, timeout=NOTIFY_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        checks.append(
            Check(
                "notify URL 支付通知地址",
                False,
                f"{url} cannot be reached 无法访问: {type(exc).__name__}",
            )
        )
        return checks
    if response.status_code != 405:
        checks.append(
            Check(
                "notify URL 支付通知地址",
                False,
                f"{url} answered {response.status_code}, not the shop's 405 地址未指向本店",
            )
        )
    elif not checks:
        checks.append(Check("notify URL 支付通知地址", True, f"{url} reachable 可访问"))
    else:
        checks.append(Check("notify URL 支付通知地址", True, f"{url} reachable 可访问 (http)"))
    return checks


def run_checks(app: Flask) -> list[Check]:
    """Every check, in order; none raises."""
    checks = _settings(app)
    ok, why = check_database()
    checks.append(Check("database 数据库", ok, "answers 可连接" if ok else why))
    if ok:
        ok, why = check_migrations()
        checks.append(Check("migrations 数据库版本", ok, "at head 已是最新" if ok else why))
    ok, why = check_redis()
    checks.append(Check("Redis", ok, "answers 可连接" if ok else why))
    checks.append(_wechat_token(app))
    try:
        get_pay()
    except Exception as exc:
        checks.append(Check("Pay 微信支付", False, f"cannot build the client 无法初始化: {exc}"))
    else:
        checks += _pay_checks(app)
    checks += _notify_url(app)
    db.session.rollback()
    return checks
