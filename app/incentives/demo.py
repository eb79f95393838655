"""A running demo task for ``seed-demo`` (idempotent: found by name)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.core.time import utcnow
from app.extensions import db
from app.incentives.models import Task
from app.incentives.tasks import TaskInput, save_task

DEMO_TASK_NAME = "冲刺任务：30 天推广销售满 ¥500"


def seed_demo_task() -> str:
    """Add a 30-day sales task (¥500 target, ¥20 reward) unless it is already there."""
    if db.session.scalar(select(Task.id).where(Task.name == DEMO_TASK_NAME)) is not None:
        return "demo task already there"
    now = utcnow()
    save_task(
        TaskInput(
            name=DEMO_TASK_NAME,
            target_kind="sales_fen",
            target_value=50_000,
            reward_fen=2_000,
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=29),
            grade_ids=[],
        )
    )
    return "demo task added"
