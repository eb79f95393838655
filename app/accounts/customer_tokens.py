"""Customers' bearer tokens for the JSON API (the mini-program door). They flush; the
caller (the request) commits.

``issue`` gives an access token (``ca_...``, 2 hours) and a refresh token (``cr_...``,
30 days); only their SHA-256s are stored (``customer_tokens``). ``refresh`` rotates: the
old row is retired by one conditional UPDATE (``WHERE revoked_at IS NULL``), so two
refreshes racing with the same refresh token give one new pair, never two. ``revoke`` ends
a pair (signing out). ``customer_for_access`` is what the request loader asks.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from app.accounts.models import CustomerToken, User
from app.core.time import utcnow
from app.extensions import db

ACCESS_PREFIX = "ca_"
REFRESH_PREFIX = "cr_"
ACCESS_TTL = timedelta(hours=2)
REFRESH_TTL = timedelta(days=30)
MAX_TOKEN_LENGTH = 128


class CustomerTokenError(ValueError):
    """A refresh or revoke that cannot be done: ``code`` for the client, Chinese message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class IssuedTokens:
    """A new pair, returned once: the secrets are never stored."""

    row: CustomerToken
    access_token: str
    refresh_token: str

    @property
    def expires_in(self) -> int:
        return int(ACCESS_TTL.total_seconds())

    @property
    def refresh_expires_in(self) -> int:
        return int(REFRESH_TTL.total_seconds())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


def issue(user: User, channel: str = "wxa", now: datetime | None = None) -> IssuedTokens:
    """A new access/refresh pair for ``user`` (flushed)."""
    now = now or utcnow()
    access = ACCESS_PREFIX + secrets.token_urlsafe(32)
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    row = CustomerToken(
        user_id=user.id,
        channel=channel,
        access_hash=CustomerToken.hash(access),
        refresh_hash=CustomerToken.hash(refresh),
        created_at=now,
        access_expires_at=now + ACCESS_TTL,
        refresh_expires_at=now + REFRESH_TTL,
    )
    db.session.add(row)
    db.session.flush()
    return IssuedTokens(row, access, refresh)


def _by_refresh(refresh_token: str) -> CustomerToken | None:
    refresh_token = (refresh_token or "").strip()
    if not refresh_token.startswith(REFRESH_PREFIX) or len(refresh_token) > MAX_TOKEN_LENGTH:
        return None
    return db.session.scalar(
        select(CustomerToken).where(CustomerToken.refresh_hash == CustomerToken.hash(refresh_token))
    )


def _retire(row: CustomerToken, reason: str, now: datetime) -> bool:
    """End ``row`` once: True for the caller that ended it."""
    result = db.session.execute(
        update(CustomerToken)
        .where(CustomerToken.id == row.id, CustomerToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def refresh(refresh_token: str, now: datetime | None = None) -> IssuedTokens:
    """Trade a live refresh token for a new pair; the old pair stops working."""
    now = now or utcnow()
    row = _by_refresh(refresh_token)
    if row is None:
        raise CustomerTokenError("invalid_token", "登录凭证无效，请重新登录")
    if row.revoked_at is not None:
        raise CustomerTokenError("token_revoked", "登录凭证已失效，请重新登录")
    if _aware(row.refresh_expires_at) <= now:
        raise CustomerTokenError("token_expired", "登录已过期，请重新登录")
    if not _retire(row, "rotated", now):
        raise CustomerTokenError("token_revoked", "登录凭证已失效，请重新登录")
    user = db.session.get(User, row.user_id)
    return issue(user, row.channel, now)


def revoke(refresh_token: str, now: datetime | None = None) -> bool:
    """End the pair a refresh token belongs to; False when it was unknown or already ended."""
    row = _by_refresh(refresh_token)
    if row is None:
        return False
    return _retire(row, "revoked", now or utcnow())


def token_for_access(access_token: str, now: datetime | None = None) -> CustomerToken | None:
    """The live token row of ``access_token``, or None (unknown, ended, expired)."""
    access_token = (access_token or "").strip()
    if not access_token.startswith(ACCESS_PREFIX) or len(access_token) > MAX_TOKEN_LENGTH:
        return None
    row = db.session.scalar(
        select(CustomerToken).where(CustomerToken.access_hash == CustomerToken.hash(access_token))
    )
    if row is None or row.revoked_at is not None:
        return None
    if _aware(row.access_expires_at) <= (now or utcnow()):
        return None
    return row
