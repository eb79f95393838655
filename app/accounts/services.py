"""Account operations. They flush; the caller (request, CLI) commits."""

from __future__ import annotations

import re

from sqlalchemy import bindparam, select

from app.accounts.models import STAFF_ROLES, Staff, User
from app.accounts.staff_sessions import end_all
from app.core.sql import insert_on_conflict
from app.core.time import utcnow
from app.extensions import db

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")


class StaffError(ValueError):
    """A staff account request that cannot be carried out (message in Chinese)."""


def upsert_staff(username: str, password: str, role: str = "staff") -> tuple[Staff, bool]:
    """Create the staff account ``username``, or reset its password and role.

    Returns (staff, created). Passwords shorter than 8 characters are refused. A reset
    ends every session the account had open, so whoever held it is signed out.
    """
    if not USERNAME_RE.match(username or ""):
        raise StaffError("用户名需为 3-64 位字母、数字、点、下划线或短横线")
    check_password_rules(password)
    if role not in STAFF_ROLES:
        raise StaffError("角色只能是 owner 或 staff")
    staff = db.session.scalar(select(Staff).where(Staff.username == username))
    created = staff is None
    if created:
        staff = Staff(username=username)
        db.session.add(staff)
    staff.role = role
    staff.active = True
    staff.set_password(password)
    db.session.flush()
    if not created:
        end_all(staff.id, "password_changed")
    return staff, created


def check_password_rules(password: str | None) -> None:
    """Refuse a password too short (or too long) to be a staff password."""
    if len(password or "") < 8:
        raise StaffError("密码至少 8 位")
    if len(password) > 256:
        raise StaffError("密码最多 256 位")


def change_password(staff: Staff, password: str, keep_session_id: int | None = None) -> int:
    """Give ``staff`` a new password and end their sessions (all but ``keep_session_id``,
    the one a member changing their own password is using). Returns how many ended."""
    check_password_rules(password)
    staff.set_password(password)
    db.session.flush()
    return end_all(staff.id, "password_changed", keep_id=keep_session_id)


# users.openid of a customer known so far only from the mini-program (app/accounts/wxa.py).
PLACEHOLDER_PREFIX = "wxa:"


class SignInError(ValueError):
    """WeChat gave us an identity we cannot use (message in Chinese)."""


_NEW_WECHAT_USER = select(User).from_statement(
    insert_on_conflict(
        User.__table__,
        ("openid", "unionid", "nickname", "avatar_url", "created_at", "last_login_at"),
        returning=tuple(User.__table__.columns),
    )
)


def sign_in_wechat_user(
    openid: str,
    unionid: str | None = None,
    nickname: str | None = None,
    avatar_url: str | None = None,
    profile_fetched: bool = False,
) -> User:
    """Find or create the customer WeChat OAuth identified, and record this sign-in.

    Found by openid, else by unionid (the same person through another app of the same
    open platform). Nickname and avatar are updated only when given (snsapi_userinfo);
    ``profile_fetched`` records that WeChat was asked for them now (profile_refreshed_at).
    Two callbacks racing for a new openid both end with the same row: the loser's insert
    hits the unique constraint inside a savepoint and re-reads the winner's row.
    Flushes; the caller commits.
    """
    openid = (openid or "").strip()
    unionid = (unionid or "").strip() or None
    if not openid or len(openid) > 64 or (unionid and len(unionid) > 64):
        raise SignInError("微信返回的用户标识无效")

    now = utcnow()
    user = _find_wechat_user(openid, unionid)
    created = False
    if user is None:
        # ON CONFLICT DO NOTHING rather than a savepoint: a fan's first push and their
        # first page view may race, and the loser simply reads the winner's row.
        user = db.session.scalar(
            _NEW_WECHAT_USER,
            {
                "openid": openid,
                "unionid": unionid,
                "nickname": "",
                "avatar_url": "",
                "created_at": now,
                "last_login_at": now,
            },
        )
        created = user is not None
        if user is None:
            user = _find_wechat_user(openid, unionid)
            if user is None:
                raise SignInError("微信用户创建失败，请重试")
    if user.openid.startswith(PLACEHOLDER_PREFIX) and user.openid != openid:
        # Known from the mini-program (same unionid): now we have their official openid.
        taken = db.session.scalar(_USER_BY_OPENID, {"openid": openid})
        if taken is None:
            user.openid = openid
    if unionid and user.unionid is None:
        taken = db.session.scalar(select(User.id).where(User.unionid == unionid))
        if taken is None:
            user.unionid = unionid
    if nickname:
        user.nickname = nickname.strip()[:64]
    if avatar_url and avatar_url.startswith(("https://", "http://")) and len(avatar_url) <= 512:
        user.avatar_url = avatar_url
    if profile_fetched:
        user.profile_refreshed_at = now
    if not created:  # a new row was inserted with it
        user.last_login_at = now
    db.session.flush()
    return user


_USER_BY_OPENID = select(User).where(User.openid == bindparam("openid"))


def _find_wechat_user(openid: str, unionid: str | None) -> User | None:
    user = db.session.scalar(_USER_BY_OPENID, {"openid": openid})
    if user is None and unionid:
        user = db.session.scalar(select(User).where(User.unionid == unionid))
    return user
