"""Helpers every stand-in blueprint uses: WeChat-shaped errors and the shared state."""

from __future__ import annotations

import secrets

from flask import current_app, jsonify, request

from app.wechat.sandbox.state import SandboxState

# WeChat's errmsg for the errcodes the stand-in returns (from WeChat's global error table).
ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40030: "invalid refresh_token",
    40097: "invalid args",
    40125: "invalid appsecret",
    40163: "code been used",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    42002: "refresh_token expired",
    44002: "empty post data",
    47001: "data format error",
    48001: "api unauthorized",
}


def get_state() -> SandboxState:
    """The state of the stand-in app serving this request."""
    return current_app.extensions["wechat_sandbox"]


def wx_error(errcode: int, errmsg: str | None = None):
    """A WeChat error body. WeChat answers errors with HTTP 200 and a request id."""
    message = errmsg or ERRMSG.get(errcode, "error")
    rid = secrets.token_hex(4) + "-" + secrets.token_hex(4)
    return jsonify(errcode=errcode, errmsg=f"{message} rid: {rid}")


def state_for_appid(appid: str | None) -> SandboxState:
    """The state of the app ``appid`` names: the mini-program's, else the official
    account's (each has its own secret, tokens and codes)."""
    wxa = current_app.extensions.get("wechat_sandbox_wxa")
    if wxa is not None and appid and appid == wxa.appid:
        return wxa
    return get_state()


def check_credentials(appid: str | None, secret: str | None, state: SandboxState | None = None):
    """None when appid and secret are the account's, else the WeChat error response."""
    state = state or state_for_appid(appid)
    if not appid:
        return wx_error(41002)
    if appid != state.appid:
        return wx_error(40013)
    if not secret:
        return wx_error(41004)
    if not secrets.compare_digest(secret, state.secret):
        return wx_error(40125)
    return None


def require_access_token(state: SandboxState | None = None):
    """None when ``?access_token=`` is a live base token, else the WeChat error response.

    For the APIs later issues add (QR codes, messages, media) that take the base token.
    """
    value = request.args.get("access_token")
    if not value:
        return wx_error(41001)
    errcode = (state or get_state()).check_base_token(value)
    return wx_error(errcode) if errcode else None
