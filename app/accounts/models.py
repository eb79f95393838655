"""People who sign in: customers (WeChat fans) and merchant staff; Open API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts.names import display_name
from app.core.time import UtcDateTime, utcnow
from app.extensions import db

STAFF_ROLES = ("owner", "staff")


class User(UserMixin, db.Model):
    """A customer, known by the openid WeChat OAuth gave us (and unionid when present)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The mini-program's openid (another app, another openid); see app/accounts/wxa.py.
    wxa_openid: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    nickname: Mapped[str] = mapped_column(String(64), default="")
    avatar_url: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When nickname and avatar last came from snsapi_userinfo (None: never).
    profile_refreshed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    is_staff = False

    def get_id(self) -> str:
        """Flask-Login id: prefixed, so a customer id never loads a staff account."""
        return f"user:{self.id}"

    @property
    def display_name(self) -> str:
        """The nickname, or 微信用户 + the last 4 digits of the id (snsapi_base gives none)."""
        return display_name(self.nickname, self.id)


class Staff(UserMixin, db.Model):
    """A merchant staff account for the admin site."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="staff")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    is_staff = True
    # The StaffSession a request runs in, set by the user loader (not a column).
    current_session = None

    def get_id(self) -> str:
        """Flask-Login id, prefixed to keep staff and customers apart."""
        return f"staff:{self.id}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive accounts
        return self.active

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    def set_password(self, password: str) -> None:
        """Store a salted hash of ``password`` (werkzeug's scrypt)."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """Whether ``password`` matches the stored hash."""
        return check_password_hash(self.password_hash, password)


class StaffSession(db.Model):
    """One staff sign-in, kept on the server so it can be ended (log-out, a new password,
    deactivation, "sign out everywhere") and expire. The browser's cookie carries only the
    random token; the table keeps its SHA-256, so a copy of the database opens no session.
    """

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # logout, password_changed, deactivated, signed_out_everywhere
    ended_reason: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="")

    @staticmethod
    def hash(token: str) -> str:
        """The stored form of a session token."""
        return hashlib.sha256(token.encode()).hexdigest()


API_SCOPES = ("read", "write", "owner")  # each one allows what the ones before it allow


class ApiToken(db.Model):
    """A bearer token for the merchant Open API. Only its SHA-256 is stored.

    ``scope``: ``read`` (GET only), ``write`` (every change but the owner's settings) or
    ``owner`` (everything). ``expires_at`` None means it never expires; a revoked token
    keeps its row (and its name) so the audit log and the token list still say who it was.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(8), default="write")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    @staticmethod
    def hash(token: str) -> str:
        """The stored form of a token."""
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(
        cls, name: str, scope: str = "write", expires_at: datetime | None = None
    ) -> tuple[ApiToken, str]:
        """Make a token row (added to the session, not committed) and return it with the secret."""
        secret = "sk_" + secrets.token_urlsafe(32)
        row = cls(name=name, token_hash=cls.hash(secret), scope=scope, expires_at=expires_at)
        db.session.add(row)
        return row, secret

    def allows(self, needed: str) -> bool:
        """Whether this token's scope covers ``needed`` (read < write < owner); a scope
        this code does not know (a row edited by hand) covers nothing."""
        if self.scope not in API_SCOPES:
            return False
        return API_SCOPES.index(self.scope) >= API_SCOPES.index(needed)

    def expired(self, now: datetime) -> bool:
        """Whether the token's expiry has passed at ``now``."""
        return self.expires_at is not None and self.expires_at <= now


CUSTOMER_TOKEN_CHANNELS = ("wxa",)


class CustomerToken(db.Model):
    """A customer's bearer tokens for the JSON API (the mini-program): an access token
    (short-lived) and the refresh token that renews it. Only SHA-256s are stored.

    A refresh rotates: the row is retired (``revoked_at``, reason ``rotated``) and a new
    row issued, so a refresh token works once. ``revoke`` ends a row at once.
    """

    __tablename__ = "customer_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8), default="wxa")
    access_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    access_expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    refresh_expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # rotated (refreshed), revoked (signed out)
    revoked_reason: Mapped[str | None] = mapped_column(String(16))

    @staticmethod
    def hash(token: str) -> str:
        """The stored form of a token."""
        return hashlib.sha256(token.encode()).hexdigest()
