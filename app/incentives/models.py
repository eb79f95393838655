"""Incentives: tasks, invite-reward settings, grade history and leaderboard opt-ins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import UtcDateTime, utcnow
from app.extensions import db

TASK_TARGETS = ("sales_fen", "paid_orders", "new_distributors", "new_customers")


class Task(db.Model):
    """A target in a time window; reaching it pays ``reward_fen`` once per distributor."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("target_value > 0", name="target_positive"),
        CheckConstraint("reward_fen > 0", name="reward_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str] = mapped_column(String(20))
    target_value: Mapped[int]
    reward_fen: Mapped[int]
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime())
    grade_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # [] = everyone
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class IncentiveSettings(db.Model):
    """Invite reward and leaderboard settings: one row (id 1)."""

    __tablename__ = "incentive_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    invite_reward_enabled: Mapped[bool] = mapped_column(default=False)
    invite_reward_fen: Mapped[int] = mapped_column(default=0)
    leaderboards_enabled: Mapped[bool] = mapped_column(default=True)


class LeaderboardOptIn(db.Model):
    """A distributor who agreed to show their name on leaderboards (masked otherwise)."""

    __tablename__ = "leaderboard_opt_ins"

    distributor_id: Mapped[int] = mapped_column(
        ForeignKey("distributors.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class GradeChange(db.Model):
    """Every grade change of a distributor: from, to, why. Append-only."""

    __tablename__ = "grade_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributors.id"), index=True)
    from_grade_id: Mapped[int | None] = mapped_column(ForeignKey("distributor_grades.id"))
    to_grade_id: Mapped[int | None] = mapped_column(ForeignKey("distributor_grades.id"))
    reason: Mapped[str] = mapped_column(String(200), default="")
    actor: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
