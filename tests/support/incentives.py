"""Helpers for the incentive tests: tasks and invite settings."""

from __future__ import annotations

from datetime import timedelta

from app.core.time import utcnow
from app.extensions import db
from app.incentives import invites, tasks
from app.incentives.models import Task


def make_task(kind: str = "sales_fen", target: int = 20000, reward: int = 888, **extra) -> Task:
    """A running task (started an hour ago, ends tomorrow), committed."""
    now = utcnow()
    data = tasks.TaskInput(
        name=extra.pop("name", "冲刺任务"),
        target_kind=kind,
        target_value=target,
        reward_fen=reward,
        starts_at=extra.pop("starts_at", now - timedelta(hours=1)),
        ends_at=extra.pop("ends_at", now + timedelta(days=1)),
        grade_ids=extra.pop("grade_ids", []),
    )
    task = tasks.save_task(data)
    db.session.commit()
    return task


def invite_settings(fen: int = 500, enabled: bool = True) -> None:
    row = invites.get_incentive_settings()
    row.invite_reward_enabled = enabled
    row.invite_reward_fen = fen
    db.session.commit()
