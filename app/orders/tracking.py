"""Logistics (查看物流): 快递100's real-time query API, cached, with a plain fallback.

The call is 快递100's ``POST {KUAIDI100_BASE_URL}/poll/query.do``, form-encoded:
``customer``, ``param`` (JSON: ``com`` the carrier's 快递100 code, ``num``, ``phone`` which
顺丰 requires) and ``sign = MD5(param + key + customer)`` in upper-case hex. A good answer
has ``status`` "200" and ``data`` (newest first: ``time``, ``context``); a refusal has
``result`` false and a ``returnCode``/``message``.

Answers are cached in Redis for ``KUAIDI100_CACHE_SECONDS`` (30 minutes), so a customer
refreshing the page does not spend the shop's query quota. Without credentials, on a
timeout, an HTTP error or a refusal, ``track`` returns a result without events and a
reason; the page still shows the carrier, the number and the carrier's own site.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field

import requests
from flask import current_app

from app.core.redis import get_redis

log = logging.getLogger(__name__)

# Our carrier names (app/orders/shipping.CARRIERS) → (快递100 code, the carrier's own site).
CARRIER_CODES: dict[str, tuple[str, str]] = {
    "顺丰速运": ("shunfeng", "https://www.sf-express.com/"),
    "中通快递": ("zhongtong", "https://www.zto.com/"),
    "圆通速递": ("yuantong", "https://www.yto.net.cn/"),
    "韵达快递": ("yunda", "https://www.yundaex.com/"),
    "申通快递": ("shentong", "https://www.sto.cn/"),
    "EMS": ("ems", "https://www.ems.com.cn/"),
    "京东物流": ("jd", "https://www.jdl.com/"),
    "极兔速递": ("jtexpress", "https://www.jtexpress.com.cn/"),
}
FALLBACK_SITE = "https://www.kuaidi100.com/"
STATE_LABELS = {
    "0": "运输中",
    "1": "已揽收",
    "2": "疑难件",
    "3": "已签收",
    "4": "已退签",
    "5": "派送中",
    "6": "退回中",
    "7": "已转单",
    "14": "拒签",
}
CACHE_PREFIX = "kuaidi100:"


@dataclass
class TrackEvent:
    """One step of the parcel's way."""

    time: str
    context: str


@dataclass
class Tracking:
    """What the logistics page shows. ``events`` is empty when 快递100 gave nothing;
    ``problem`` then says why in a customer's words."""

    carrier: str
    number: str
    site: str
    state_text: str = ""
    events: list[TrackEvent] = field(default_factory=list)
    problem: str = ""
    cached: bool = False


def sign(param: str, key: str, customer: str) -> str:
    """快递100's signature: MD5 of param + key + customer, upper-case hex."""
    return hashlib.md5((param + key + customer).encode()).hexdigest().upper()  # noqa: S324


def carrier_site(carrier: str) -> str:
    """The carrier's own site (where a customer can look the number up), or 快递100's."""
    return CARRIER_CODES.get(carrier, ("", FALLBACK_SITE))[1]


def _from_answer(base: Tracking, answer: dict) -> Tracking:
    events = [
        TrackEvent(str(e.get("ftime") or e.get("time") or "")[:19], str(e.get("context", "")))
        for e in answer.get("data") or []
        if isinstance(e, dict)
    ]
    base.events = events
    base.state_text = STATE_LABELS.get(str(answer.get("state", "")), "")
    return base


def track(carrier: str, number: str, phone: str = "") -> Tracking:
    """The parcel's timeline from 快递100 (or the cache); never raises for 快递100's sake."""
    result = Tracking(carrier=carrier, number=number, site=carrier_site(carrier))
    config = current_app.config
    customer, key = config.get("KUAIDI100_CUSTOMER"), config.get("KUAIDI100_KEY")
    code = CARRIER_CODES.get(carrier, ("", ""))[0]
    if not code:
        result.problem = "该快递公司暂不支持在线查询"
        return result
    if not (customer and key):
        result.problem = "暂未开通物流查询"
        return result
    cache_key = f"{CACHE_PREFIX}{code}:{number}"
    redis = get_redis()
    try:
        cached = redis.get(cache_key)
    except Exception:  # Redis down: ask 快递100 instead
        log.warning("kuaidi100 cache unreadable", exc_info=True)
        cached = None
    if cached:
        result.cached = True
        return _from_answer(result, json.loads(cached))

    # 顺丰 requires the sender's or receiver's phone; the others need none of it.
    param = json.dumps(
        {"com": code, "num": number, "phone": phone if code == "shunfeng" else ""},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    url = config["KUAIDI100_BASE_URL"].rstrip("/") + "/poll/query.do"
    try:
        response = requests.post(
            url,
            data={"customer": customer, "sign": sign(param, key, customer), "param": param},
            timeout=float(config.get("KUAIDI100_TIMEOUT_SECONDS", 5)),
        )
        response.raise_for_status()
        answer = response.json()
    except requests.Timeout:
        log.warning("kuaidi100 timed out for %s %s", code, number)
        result.problem = "物流查询超时，请稍后再试"
        return result
    except (requests.RequestException, ValueError):
        log.warning("kuaidi100 failed for %s %s", code, number, exc_info=True)
        result.problem = "物流信息暂时无法获取"
        return result
    if not isinstance(answer, dict) or str(answer.get("status")) != "200":
        message = answer.get("message", "") if isinstance(answer, dict) else ""
        log.info("kuaidi100 refused %s %s: %s", code, number, message)
        result.problem = "暂无物流信息，请稍后再试"
        return result
    try:
        redis.set(
            cache_key,
            json.dumps(answer, ensure_ascii=False),
            ex=int(config.get("KUAIDI100_CACHE_SECONDS", 1800)),
        )
    except Exception:
        log.warning("kuaidi100 cache unwritable", exc_info=True)
    return _from_answer(result, answer)
