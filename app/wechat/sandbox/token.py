"""Base access token and JS-SDK ticket: ``/cgi-bin/token``, ``/cgi-bin/stable_token``,
``/cgi-bin/ticket/getticket``."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from app.wechat.sandbox.common import (
    check_credentials,
    get_state,
    require_access_token,
    state_for_appid,
    wx_error,
)

bp = Blueprint("sandbox_token", __name__)


@bp.get("/cgi-bin/token")
def token():
    """``GET /cgi-bin/token?grant_type=client_credential&appid&secret``: a new token each call."""
    if request.args.get("grant_type") != "client_credential":
        return wx_error(40002)
    error = check_credentials(request.args.get("appid"), request.args.get("secret"))
    if error:
        return error
    issued = state_for_appid(request.args.get("appid")).issue_token()
    return jsonify(access_token=issued.value, expires_in=7200)


@bp.post("/cgi-bin/stable_token")
def stable_token():
    """``POST /cgi-bin/stable_token`` (JSON): the same token while valid unless forced."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return wx_error(44002 if not request.data else 47001)
    if body.get("grant_type") != "client_credential":
        return wx_error(40002)
    error = check_credentials(body.get("appid"), body.get("secret"))
    if error:
        return error
    force = body.get("force_refresh", False)
    if not isinstance(force, bool):
        return wx_error(40097)
    state = state_for_appid(body.get("appid"))
    issued = state.stable_token(force_refresh=force)
    return jsonify(access_token=issued.value, expires_in=round(issued.expires_at - state.now()))


@bp.get("/cgi-bin/ticket/getticket")
def getticket():
    """``GET /cgi-bin/ticket/getticket?access_token&type=jsapi``: the JS-SDK ticket."""
    error = require_access_token()
    if error:
        return error
    if request.args.get("type") != "jsapi":
        return wx_error(40097)
    state = get_state()
    ticket = state.jsapi()
    return jsonify(
        errcode=0,
        errmsg="ok",
        ticket=ticket.value,
        expires_in=round(ticket.expires_at - state.now()),
    )
