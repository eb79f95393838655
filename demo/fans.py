"""Demo users one can act as in ``make dev``: each is a fan of the WeChat stand-in.

With the WeChat stand-in (development), a demo user gets the openid the stand-in gives the
fan of the same nickname (``fan_openid``), and ``flask wechat-sandbox`` lists those fans on
its sign-in and ``/sandbox/fans`` pages: choosing "南山区代理" signs in as the demo agent.
Rows seeded earlier under the old placeholder openids (``o_demo_...``) are moved to the
fan's openid. Against the real WeChat the placeholders are kept. Flushes only.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.wechat.sandbox.state import fan_openid

REAL_WECHAT_API = "https://api.weixin.qq.com"


def uses_stand_in() -> bool:
    """Whether the shop talks to the WeChat stand-in rather than the real WeChat."""
    base = current_app.config.get("WECHAT_API_BASE", REAL_WECHAT_API) or REAL_WECHAT_API
    return base.rstrip("/") != REAL_WECHAT_API


def demo_user(legacy_openid: str, nickname: str) -> User:
    """The demo user called ``nickname``: the stand-in fan's openid in development (an
    older row under ``legacy_openid`` is moved to it), ``legacy_openid`` otherwise."""
    openid = legacy_openid
    if uses_stand_in():
        openid = fan_openid(current_app.config["WECHAT_APPID"], nickname)
    user = db.session.scalar(select(User).where(User.openid == openid))
    if user is None and openid != legacy_openid:
        user = db.session.scalar(select(User).where(User.openid == legacy_openid))
        if user is not None:
            user.openid = openid
    if user is None:
        user = User(openid=openid, nickname=nickname)
        db.session.add(user)
    db.session.flush()
    return user
