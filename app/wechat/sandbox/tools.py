"""Pages and endpoints of the stand-in that WeChat does not have: an index for the
developer, generated avatars, and call counts for tests (all under ``/_sandbox``)."""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape

from flask import Blueprint, current_app, jsonify, render_template

from app.wechat.sandbox.common import get_state

bp = Blueprint("sandbox_tools", __name__)

_COLORS = ("#07c160", "#10aeff", "#fa9d3b", "#fa5151", "#6467f0", "#1485ee", "#ff8f1f")


@bp.get("/")
def index():
    """What the stand-in is, its credentials and its test fans."""
    return render_template(
        "sandbox/index.html",
        state=get_state(),
        fans=get_state().list_fans(),
        shop_base_url=current_app.config.get("SHOP_BASE_URL"),
    )


@bp.get("/_sandbox/calls")
def calls():
    """How many times each WeChat path was called since the stand-in started."""
    state = get_state()
    with state.lock:
        return jsonify(calls=dict(state.calls))


@bp.get("/_sandbox/avatar/<openid>.svg")
def avatar(openid: str):
    """A generated avatar: the fan's first character on a colour chosen by openid."""
    fan = get_state().fans.get(openid)
    letter = escape(fan.nickname[:1]) if fan else "?"
    color = _COLORS[hashlib.sha256(openid.encode()).digest()[0] % len(_COLORS)]
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="132" height="132" viewBox="0 0 132 132">'
        f'<rect width="132" height="132" rx="12" fill="{color}"/>'
        '<text x="66" y="88" font-size="64" text-anchor="middle" fill="#fff" '
        f'font-family="sans-serif">{letter}</text></svg>'
    )
    response = current_app.response_class(svg, mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
