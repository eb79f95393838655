"""Records every area writes: the history of each status change and the staff audit log.

They live here, below the areas, so orders, cloud, distribution, the admin and the Open API
can all write and read them without importing one another.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import UtcDateTime, utcnow
from app.extensions import db


class StatusChange(db.Model):
    """Every transition of an order, a refund, a withdrawal, an agent...: who, when, from,
    to, why. Append-only."""

    __tablename__ = "status_changes"
    __table_args__ = (Index("ix_status_changes_subject", "subject", "subject_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(16))  # "order", "refund", "withdrawal"...
    subject_id: Mapped[int]
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(64))  # "user:3", "staff:1", "wechat", "system"
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AuditLog(db.Model):
    """A staff action that changed money, bindings, rules or agents: who, when, what,
    before and after. Append-only."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_subject", "subject", "subject_id"),
        Index("ix_audit_logs_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))  # "staff:3", "api:2"
    action: Mapped[str] = mapped_column(String(64))  # e.g. "withdrawal.approve"
    subject: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64), default="")
    before: Mapped[dict] = mapped_column(JSON, default=dict)
    after: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
