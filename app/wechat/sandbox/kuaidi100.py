"""快递100's real-time query (``POST /poll/query.do``) for development and tests.

It checks what 快递100 checks: the ``customer`` it knows, ``sign = MD5(param + key +
customer)`` upper-case, and a ``param`` JSON with ``com`` and ``num``; it answers in 快递100's
shape (``message``, ``state``, ``status`` "200", ``data`` newest first). The timeline is
made up from the number, so the same number always tells the same story.

Numbers that steer it (for tests and trying the page by hand):

- starting ``SLOW``: the answer comes after ``SANDBOX_KUAIDI100_SLOW_SECONDS`` (a timeout);
- starting ``ERR``: an HTTP 500;
- starting ``NONE``: 快递100's "查询无结果" refusal.

Settings: ``SANDBOX_KUAIDI100_CUSTOMER`` / ``SANDBOX_KUAIDI100_KEY`` (config.py's defaults,
which the shop uses by default in development and tests).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta

from flask import Blueprint, Flask, current_app, jsonify, request

import config as shop_config

bp = Blueprint("sandbox_kuaidi100", __name__)

_STEPS = (
    "【{city}】快件已被揽收，揽收员正在处理",
    "快件已到达【{city}转运中心】",
    "快件已从【{city}转运中心】发出，下一站【目的地分拨中心】",
    "快件已到达【目的地分拨中心】",
    "快件正在派送中，派送员电话 138****0000，请保持电话畅通",
)
_CITIES = ("深圳", "广州", "杭州", "上海", "北京")


def init_kuaidi100(app: Flask) -> None:
    """Attach the stand-in's 快递100 door to ``app``."""
    app.config.setdefault("SANDBOX_KUAIDI100_CUSTOMER", shop_config.SANDBOX_KUAIDI100_CUSTOMER)
    app.config.setdefault("SANDBOX_KUAIDI100_KEY", shop_config.SANDBOX_KUAIDI100_KEY)
    app.config.setdefault("SANDBOX_KUAIDI100_SLOW_SECONDS", 3.0)
    app.register_blueprint(bp)


def _refuse(code: str, message: str, status: int = 200):
    return jsonify(result=False, returnCode=code, message=message), status


@bp.post("/poll/query.do")
def query():
    """快递100's 实时快递查询."""
    customer = request.form.get("customer", "")
    param = request.form.get("param", "")
    given = request.form.get("sign", "")
    if customer != current_app.config["SANDBOX_KUAIDI100_CUSTOMER"]:
        return _refuse("601", "POLL:KEY已过期或账号不存在")
    key = current_app.config["SANDBOX_KUAIDI100_KEY"]
    expected = hashlib.md5((param + key + customer).encode()).hexdigest().upper()  # noqa: S324
    if given != expected:
        return _refuse("400", "验证签名失败")
    try:
        wanted = json.loads(param)
        com, num = str(wanted["com"]), str(wanted["num"])
    except (ValueError, KeyError, TypeError):
        return _refuse("400", "找不到对应公司或参数错误")
    if num.upper().startswith("SLOW"):
        time.sleep(float(current_app.config["SANDBOX_KUAIDI100_SLOW_SECONDS"]))
    if num.upper().startswith("ERR"):
        return jsonify(message="server error"), 500
    if num.upper().startswith("NONE"):
        return _refuse("500", "查询无结果，请隔段时间再查")
    seed = int(hashlib.sha256(num.encode()).hexdigest()[:8], 16)
    steps = 3 + seed % 3
    city = _CITIES[seed % len(_CITIES)]
    start = datetime(2026, 12, 1, 9, 0) + timedelta(minutes=seed % 600)
    data = []
    for i in range(steps):
        moment = (start + timedelta(hours=7 * i)).strftime("%Y-%m-%d %H:%M:%S")
        data.append({"time": moment, "ftime": moment, "context": _STEPS[i].format(city=city)})
    data.reverse()  # 快递100 answers newest first (order=desc, the default)
    return jsonify(
        message="ok",
        nu=num,
        ischeck="0",
        condition="00",
        com=com,
        status="200",
        state="5" if steps == len(_STEPS) else "0",
        data=data,
    )
