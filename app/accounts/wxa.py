"""Who a mini-program sign-in is: one person across the H5 pages and the mini-program.

WeChat gives each app its own openid; the unionid (when the apps share an open platform)
is the same. So ``sign_in_miniapp_user`` finds the customer by unionid first, then by the
mini-program openid (``users.wxa_openid``), and creates one when neither is known. A
customer created by the mini-program has no official-account openid yet: ``users.openid``
(required, unique) then holds ``wxa:<mini-program openid>`` until the same person signs in
on H5 (``sign_in_wechat_user`` finds them by unionid and stores the real openid). Flushes;
the caller commits.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.accounts.services import PLACEHOLDER_PREFIX, SignInError
from app.core.time import utcnow
from app.extensions import db


def has_official_openid(user: User) -> bool:
    """Whether ``user.openid`` is a real official-account openid (not a placeholder)."""
    return bool(user.openid) and not user.openid.startswith(PLACEHOLDER_PREFIX)


def sign_in_miniapp_user(wxa_openid: str, unionid: str | None = None) -> User:
    """Find or create the customer of a ``jscode2session`` answer and record the sign-in."""
    wxa_openid = (wxa_openid or "").strip()
    unionid = (unionid or "").strip() or None
    if not wxa_openid or len(wxa_openid) > 60 or (unionid and len(unionid) > 64):
        raise SignInError("微信返回的用户标识无效")
    now = utcnow()
    user = None
    if unionid:
        user = db.session.scalar(select(User).where(User.unionid == unionid))
    if user is None:
        user = db.session.scalar(select(User).where(User.wxa_openid == wxa_openid))
    if user is None:
        try:
            with db.session.begin_nested():
                user = User(
                    openid=PLACEHOLDER_PREFIX + wxa_openid,
                    unionid=unionid,
                    wxa_openid=wxa_openid,
                    created_at=now,
                    last_login_at=now,
                )
                db.session.add(user)
        except IntegrityError:  # a racing first sign-in inserted the row first
            user = db.session.scalar(
                select(User).where(
                    (User.wxa_openid == wxa_openid) | (User.unionid == unionid)
                    if unionid
                    else User.wxa_openid == wxa_openid
                )
            )
            if user is None:
                raise SignInError("微信用户创建失败，请重试") from None
        return user
    if user.wxa_openid != wxa_openid:
        taken = db.session.scalar(select(User.id).where(User.wxa_openid == wxa_openid))
        if taken is None:
            user.wxa_openid = wxa_openid
    if unionid and user.unionid is None:
        user.unionid = unionid
    user.last_login_at = now
    db.session.flush()
    return user
