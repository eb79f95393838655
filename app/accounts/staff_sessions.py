"""Staff sessions kept on the server: start, check, touch, end, list.

A staff sign-in makes one ``StaffSession`` row; the Flask session (the signed cookie)
holds only its random token under ``STAFF_SESSION_KEY``. A session counts as active while
it has not been ended and is within both limits: ``STAFF_SESSION_MAX_AGE_SECONDS`` since
sign-in (absolute) and ``STAFF_SESSION_IDLE_SECONDS`` since it was last seen (idle). The
last-seen time is written at most once a minute (``TOUCH_EVERY``), not on every request.

These functions flush and never commit; they know nothing of requests (the caller passes
the address and browser it saw).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from app.accounts.models import StaffSession
from app.core.time import utcnow
from app.extensions import db

STAFF_SESSION_KEY = "_staff_sid"
DEFAULT_MAX_AGE_SECONDS = 12 * 3600
DEFAULT_IDLE_SECONDS = 2 * 3600
TOUCH_EVERY = timedelta(minutes=1)

# Why a session ended (``StaffSession.ended_reason``), and how the pages say it.
ENDED_REASONS = {
    "logout": "退出登录",
    "password_changed": "密码已修改",
    "deactivated": "账号已停用",
    "signed_out_everywhere": "退出所有设备",
}


def _limits() -> tuple[timedelta, timedelta]:
    config = current_app.config
    max_age = int(config.get("STAFF_SESSION_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS))
    idle = int(config.get("STAFF_SESSION_IDLE_SECONDS", DEFAULT_IDLE_SECONDS))
    return timedelta(seconds=max_age), timedelta(seconds=idle)


def start_session(staff_id: int, ip: str, user_agent: str) -> tuple[StaffSession, str]:
    """Open a session for ``staff_id``; returns the row and the token for the cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = StaffSession(
        token_hash=StaffSession.hash(token),
        staff_id=staff_id,
        created_at=now,
        last_seen_at=now,
        ip=(ip or "")[:64],
        user_agent=(user_agent or "")[:256],
    )
    db.session.add(row)
    db.session.flush()
    return row, token


def is_live(row: StaffSession, now: datetime | None = None) -> bool:
    """Whether ``row`` is neither ended nor past its absolute or idle limit."""
    now = now or utcnow()
    max_age, idle = _limits()
    return row.ended_at is None and now < row.created_at + max_age and now < row.last_seen_at + idle


def find_active(token: str | None, staff_id: int) -> StaffSession | None:
    """The active session of ``staff_id`` whose token is ``token``, else None."""
    if not token or not isinstance(token, str) or len(token) > 128:
        return None
    row = db.session.scalar(
        select(StaffSession).where(StaffSession.token_hash == StaffSession.hash(token))
    )
    if row is None or row.staff_id != staff_id or not is_live(row):
        return None
    return row


def touch(row: StaffSession) -> bool:
    """Move ``row``'s last-seen time to now when it is a minute old or more.

    Returns whether it wrote (so the caller knows to commit).
    """
    now = utcnow()
    if now - row.last_seen_at < TOUCH_EVERY:
        return False
    row.last_seen_at = now
    db.session.flush()
    return True


def end_session(row: StaffSession, reason: str) -> None:
    """End one session (a no-op when it has already ended)."""
    if row.ended_at is None:
        row.ended_at = utcnow()
        row.ended_reason = reason
        db.session.flush()


def end_all(staff_id: int, reason: str, keep_id: int | None = None) -> int:
    """End every open session of ``staff_id`` (except ``keep_id``); returns how many."""
    query = (
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow(), ended_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    if keep_id is not None:
        query = query.where(StaffSession.id != keep_id)
    result = db.session.execute(query)
    db.session.flush()
    return result.rowcount or 0


def _active_clause():
    now = utcnow()
    max_age, idle = _limits()
    return (
        StaffSession.ended_at.is_(None),
        StaffSession.created_at > now - max_age,
        StaffSession.last_seen_at > now - idle,
    )


def active_sessions(staff_id: int | None = None) -> list[StaffSession]:
    """Active sessions (of one staff member, or of everyone), most recently seen first."""
    query = select(StaffSession).where(*_active_clause())
    if staff_id is not None:
        query = query.where(StaffSession.staff_id == staff_id)
    return list(db.session.scalars(query.order_by(StaffSession.last_seen_at.desc())))


_BROWSERS = (
    ("MicroMessenger", "微信"),
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def describe_device(user_agent: str) -> str:
    """A short, readable name for a browser's user agent, e.g. "Chrome · Windows"."""
    ua = user_agent or ""
    browser = next((name for mark, name in _BROWSERS if mark in ua), "")
    system = next((name for mark, name in _SYSTEMS if mark in ua), "")
    return " · ".join(p for p in (browser, system) if p) or "未知设备"
