"""Fans of the official account: follow and unfollow by openid, linked to the customer.

A fan is the same person as the customer WeChat OAuth signs in: both are found by openid
(``sign_in_wechat_user``), so a fan who follows first and opens the shop later, or the
other way round, is one ``User``. Services flush; the edge (the message server, a job)
commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from app.accounts.models import User
from app.accounts.services import sign_in_wechat_user
from app.core.sql import insert_on_conflict
from app.core.time import utcnow
from app.extensions import db
from app.wechat.models import WechatFan


def customer_for_openid(openid: str, *, create: bool) -> User | None:
    """The customer with this openid; created (as OAuth would) when ``create`` is set."""
    if create:
        return sign_in_wechat_user(openid)
    return db.session.scalar(select(User).where(User.openid == openid))


_FOLLOW = insert_on_conflict(
    WechatFan.__table__,
    (
        "openid",
        "user_id",
        "subscribed",
        "subscribed_at",
        "qr_scene",
        "subscribe_scene",
        "nickname",
        "updated_at",
    ),
    conflict=("openid",),
    update=("user_id", "subscribed", "subscribed_at", "qr_scene", "updated_at"),
)


def record_follow(openid: str, user_id: int, qr_scene: str = "", now: datetime | None = None):
    """Mark ``openid`` as following now (insert or update its fan row, race-safe)."""
    now = now or utcnow()
    db.session.execute(
        _FOLLOW,
        {
            "openid": openid,
            "user_id": user_id,
            "subscribed": True,
            "subscribed_at": now,
            "qr_scene": qr_scene[:64],
            "subscribe_scene": "",
            "nickname": "",
            "updated_at": now,
        },
    )


def record_unfollow(openid: str, now: datetime | None = None) -> None:
    """Mark ``openid`` as no longer following. The customer and any binding stay."""
    now = now or utcnow()
    db.session.execute(
        update(WechatFan)
        .where(WechatFan.openid == openid)
        .values(subscribed=False, unsubscribed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()


def apply_user_info(info: dict) -> WechatFan | None:
    """Store what ``/cgi-bin/user/info`` said about a fan on the fan and the customer.

    Since late 2021 WeChat returns an empty nickname here for most accounts, so a
    nickname only overwrites when WeChat gave one. ``subscribe: 0`` (the fan left before
    the job ran) marks the fan as not following.
    """
    openid = str(info.get("openid") or "")
    fan = db.session.scalar(select(WechatFan).where(WechatFan.openid == openid))
    if fan is None:
        return None
    unionid = (info.get("unionid") or "").strip()[:64] or None
    nickname = (info.get("nickname") or "").strip()[:64]
    fan.unionid = unionid or fan.unionid
    if nickname:
        fan.nickname = nickname
    fan.subscribe_scene = str(info.get("subscribe_scene") or "")[:64]
    if info.get("qr_scene_str"):
        fan.qr_scene = str(info["qr_scene_str"])[:64]
    if info.get("subscribe") == 0:
        fan.subscribed = False
    user = sign_in_wechat_user(openid, unionid, nickname or None)
    fan.user_id = user.id
    db.session.flush()
    return fan
