"""Sign-in traces: where a customer signed in from (address and a hash of the browser).

One row per (user, address, user-agent hash), its ``last_seen_at`` moved on each sign-in,
so the table grows with devices, not with visits. The risk checks (``app/risk/``) compare
the traces of a buyer and of the distributor who earns on the order: the same address and
browser is one device fingerprint. The user agent is kept only as a SHA-256 prefix.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from app.core.sql import dialect_insert
from app.core.time import UtcDateTime, utcnow
from app.extensions import db


class SignInTrace(db.Model):
    """A customer's sign-in from one address with one browser."""

    __tablename__ = "sign_in_traces"
    __table_args__ = (
        UniqueConstraint("user_id", "ip", "ua_hash"),
        Index("ix_sign_in_traces_ip_ua", "ip", "ua_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    ip: Mapped[str] = mapped_column(String(64), default="")
    ua_hash: Mapped[str] = mapped_column(String(16), default="")
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


def ua_hash(user_agent: str | None) -> str:
    """The first 16 hex digits of the user agent's SHA-256 ("" without one)."""
    if not user_agent:
        return ""
    return hashlib.sha256(user_agent.encode("utf-8", "replace")).hexdigest()[:16]


def record_sign_in(
    user_id: int, ip: str | None, user_agent: str | None, now: datetime | None = None
) -> None:
    """Remember that ``user_id`` signed in from ``ip`` with ``user_agent`` (flushes)."""
    now = now or utcnow()
    values = {"user_id": user_id, "ip": (ip or "")[:64], "ua_hash": ua_hash(user_agent)}
    db.session.execute(
        dialect_insert(SignInTrace)
        .values(**values, first_seen_at=now, last_seen_at=now)
        .on_conflict_do_update(
            index_elements=["user_id", "ip", "ua_hash"], set_={"last_seen_at": now}
        )
    )


def traces_of(user_ids) -> list[SignInTrace]:
    """Every trace of ``user_ids``."""
    ids = list(user_ids)
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(SignInTrace).where(SignInTrace.user_id.in_(ids)).order_by(SignInTrace.id)
        )
    )
