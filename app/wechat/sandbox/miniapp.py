"""The mini-program (小程序): ``wx.login`` codes, ``/sns/jscode2session`` and
``/wxa/getwxacodeunlimit``.

The mini-program is another app with its own appid and secret (``SANDBOX_MINIAPP_APPID``
/ ``SANDBOX_MINIAPP_SECRET``), so it has its own ``SandboxState`` (tokens, codes, fans):
the same nickname gets another openid there and the same unionid, as with WeChat's open
platform. ``POST /_sandbox/wxa/login {"nickname"}`` stands in for ``wx.login()`` inside
the mini-program: it answers a single-use code (5 minutes), like WeChat's.
"""

from __future__ import annotations

import io

import qrcode
from flask import Blueprint, Flask, current_app, jsonify, request

from app.wechat.sandbox.common import check_credentials, require_access_token, wx_error
from app.wechat.sandbox.state import SandboxState

bp = Blueprint("sandbox_miniapp", __name__)

MAX_SCENE = 32
SCENE_CHARS = set(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$&'()*+,/:;=?@-._~"
)


def get_wxa_state() -> SandboxState:
    return current_app.extensions["wechat_sandbox_wxa"]


def init_miniapp(app: Flask) -> None:
    """Attach the mini-program's state and blueprint to the stand-in ``app``."""
    cfg = app.config
    app.extensions["wechat_sandbox_wxa"] = SandboxState(
        cfg["SANDBOX_MINIAPP_APPID"],
        cfg["SANDBOX_MINIAPP_SECRET"],
        clock=cfg.get("SANDBOX_CLOCK"),
        fans=tuple(cfg.get("SANDBOX_FANS") or ()),
    )
    app.register_blueprint(bp)


@bp.post("/_sandbox/wxa/login")
def login():
    """``wx.login()`` for the fan called ``nickname``: a fresh single-use code."""
    body = request.get_json(silent=True) or {}
    nickname = body.get("nickname") if isinstance(body, dict) else None
    if not isinstance(nickname, str) or not nickname.strip() or len(nickname) > 32:
        return jsonify(errcode=40097, errmsg="nickname required (1-32 chars)"), 400
    state = get_wxa_state()
    fan = state.fan_for_nickname(nickname)
    code = state.issue_code(fan.openid, "wxa")
    return jsonify(code=code.code, openid=fan.openid, unionid=fan.unionid)


@bp.get("/sns/jscode2session")
def jscode2session():
    """``GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code``."""
    args = request.args
    state = get_wxa_state()
    error = check_credentials(args.get("appid"), args.get("secret"), state)
    if error:
        return error
    if args.get("grant_type") != "authorization_code":
        return wx_error(40002)
    if not args.get("js_code"):
        return wx_error(41008)
    errcode, code = state.redeem_code(args["js_code"])
    if errcode or code is None:
        return wx_error(errcode)
    fan = state.fans[code.openid]
    body = {"openid": fan.openid, "session_key": "c2FuZGJveC1zZXNzaW9uLWtleQ=="}
    if current_app.config.get("SANDBOX_UNIONID", True):
        body["unionid"] = fan.unionid
    return jsonify(body)


@bp.post("/wxa/getwxacodeunlimit")
def getwxacodeunlimit():
    """A mini-program code (here: a QR code PNG of ``scene`` and ``page``)."""
    state = get_wxa_state()
    error = require_access_token(state)
    if error:
        return error
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        return wx_error(47001)
    scene = body.get("scene")
    if not isinstance(scene, str) or not 1 <= len(scene) <= MAX_SCENE:
        return wx_error(40097, "invalid scene")
    if not set(scene) <= SCENE_CHARS:
        return wx_error(40097, "invalid scene")
    page = body.get("page") or ""
    if not isinstance(page, str) or page.startswith("/"):
        return wx_error(41030, "invalid page")
    width = body.get("width", 430)
    if not isinstance(width, int) or not 280 <= width <= 1280:
        width = 430
    image = qrcode.make(f"wxa:{state.appid}:{page}?scene={scene}", border=2)
    image = image.get_image().convert("RGB").resize((width, width))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return current_app.response_class(out.getvalue(), mimetype="image/png")
