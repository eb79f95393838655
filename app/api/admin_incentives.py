"""Merchant Open API for incentives: tasks (任务奖励) and the invite reward / leaderboard
settings, the money rules of the admin's 任务与激励 pages.

Tasks go through ``app.incentives.tasks.save_task`` and the settings through
``app.incentives.invites.update_incentive_settings``, the same services as the admin
pages, so both doors refuse the same input with the same Chinese message (422
``invalid_task`` / ``invalid_settings``) and both are audited under the same actions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StrictBool, StrictInt
from spectree import Response
from sqlalchemy import select

from app.api.blueprints import admin_bp
from app.api.schemas import MAX_ID, Body, ErrorResponse, Id, Name, omitted
from app.api.spec import BEARER, spec
from app.core.audit import audited, row, single
from app.core.errors import ApiError
from app.extensions import db
from app.incentives.invites import (
    IncentiveSettingsError,
    get_incentive_settings,
    update_incentive_settings,
)
from app.incentives.models import TASK_TARGETS, IncentiveSettings, Task
from app.incentives.tasks import TaskError, TaskInput, save_task

TASK_ID = "<int:task_id>"
TAGS = ["admin-incentives"]
SECURITY = {BEARER: []}
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_404": ErrorResponse}
BODY_ERRORS = {
    **ERRORS,
    "HTTP_400": ErrorResponse,
    "HTTP_415": ErrorResponse,
    "HTTP_422": ErrorResponse,
}

# JSON has no time type: an ISO 8601 text with its offset (strict bodies would refuse it).
Moment = Annotated[AwareDatetime, Field(strict=False, description="ISO 8601，须带时区")]
TargetKind = Literal[TASK_TARGETS]  # type: ignore[valid-type]


class AdminTask(BaseModel):
    id: int
    name: str
    target_kind: str = Field(
        description="sales_fen / paid_orders / new_distributors / new_customers"
    )
    target_value: int = Field(description="目标：sales_fen 为分，其余为个数")
    reward_fen: int
    starts_at: datetime
    ends_at: datetime
    grade_ids: list[int] = Field(description="可参加的等级；[] 表示所有分销员")
    active: bool


class AdminTaskList(BaseModel):
    items: list[AdminTask]


class AdminTaskCreate(Body):
    name: Name = Field(min_length=1, max_length=64)
    target_kind: TargetKind
    target_value: StrictInt = Field(description="目标：sales_fen 为分，其余为个数；须大于 0")
    reward_fen: StrictInt = Field(description="达成后一次性奖励，单位分；须大于 0")
    starts_at: Moment
    ends_at: Moment
    grade_ids: list[Id] = Field(default_factory=list, max_length=100)
    active: StrictBool = True


class AdminTaskPatch(Body):
    """Only the fields given change; the task is then checked whole, as on the admin page."""

    name: Name = omitted(min_length=1, max_length=64)
    target_kind: TargetKind = omitted()
    target_value: StrictInt = omitted()
    reward_fen: StrictInt = omitted()
    starts_at: Moment = omitted()
    ends_at: Moment = omitted()
    grade_ids: list[Id] = omitted(max_length=100)
    active: StrictBool = omitted()


class IncentiveSettingsOut(BaseModel):
    invite_reward_enabled: bool
    invite_reward_fen: int = Field(
        description="邀请奖励：被邀请人成为分销员并首单付款后发放，单位分"
    )
    leaderboards_enabled: bool


class IncentiveSettingsPut(Body):
    """Only the fields given change."""

    invite_reward_enabled: StrictBool = omitted()
    invite_reward_fen: StrictInt = omitted(description="单位分；开启时须大于 0")
    leaderboards_enabled: StrictBool = omitted()


@contextmanager
def incentive_errors(code: str) -> Iterator[None]:
    """A change the incentive services refuse rolls back and answers 422 with their text."""
    try:
        yield
    except (TaskError, IncentiveSettingsError) as exc:
        db.session.rollback()
        raise ApiError(422, code, exc.message) from None


def _task_out(task: Task) -> AdminTask:
    return AdminTask(
        id=task.id,
        name=task.name,
        target_kind=task.target_kind,
        target_value=task.target_value,
        reward_fen=task.reward_fen,
        starts_at=task.starts_at,
        ends_at=task.ends_at,
        grade_ids=list(task.grade_ids or []),
        active=task.active,
    )


def _task_or_404(task_id: int) -> Task:
    found = db.session.get(Task, task_id) if task_id <= MAX_ID else None
    if found is None:
        raise ApiError(404, "not_found", "任务不存在")
    return found


@admin_bp.get("/incentives/tasks")
@spec.validate(resp=Response(HTTP_200=AdminTaskList, **ERRORS), tags=TAGS, security=SECURITY)
def list_incentive_tasks():
    """Every task, newest first."""
    tasks = db.session.scalars(select(Task).order_by(Task.id.desc()))
    return AdminTaskList(items=[_task_out(t) for t in tasks])


@admin_bp.post("/incentives/tasks")
@audited("task.create", single(Task, "task"))
@spec.validate(resp=Response(HTTP_201=AdminTask, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def create_incentive_task(json: AdminTaskCreate):
    """Create a task (422 ``invalid_task`` with the reason, as the admin form says it)."""
    with incentive_errors("invalid_task"):
        task = save_task(TaskInput(**json.model_dump()))
        db.session.commit()
    return _task_out(task), 201


@admin_bp.get(f"/incentives/tasks/{TASK_ID}")
@spec.validate(resp=Response(HTTP_200=AdminTask, **ERRORS), tags=TAGS, security=SECURITY)
def get_incentive_task(task_id: int):
    """One task."""
    return _task_out(_task_or_404(task_id))


@admin_bp.patch(f"/incentives/tasks/{TASK_ID}")
@audited("task.update", row(Task, "task_id", "task"))
@spec.validate(resp=Response(HTTP_200=AdminTask, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def patch_incentive_task(task_id: int, json: AdminTaskPatch):
    """Change the fields given (rewards already written stay as they are)."""
    task = _task_or_404(task_id)
    current = _task_out(task).model_dump(exclude={"id"})
    merged = {**current, **json.model_dump(exclude_unset=True)}
    with incentive_errors("invalid_task"):
        save_task(TaskInput(**merged), task)
        db.session.commit()
    return _task_out(task)


def _settings_out(settings: IncentiveSettings) -> IncentiveSettingsOut:
    return IncentiveSettingsOut(
        invite_reward_enabled=settings.invite_reward_enabled,
        invite_reward_fen=settings.invite_reward_fen,
        leaderboards_enabled=settings.leaderboards_enabled,
    )


@admin_bp.get("/incentives/settings")
@spec.validate(resp=Response(HTTP_200=IncentiveSettingsOut, **ERRORS), tags=TAGS, security=SECURITY)
def get_incentive_settings_api():
    """Invite reward on/off and amount; leaderboards on/off."""
    settings = get_incentive_settings()
    db.session.commit()  # get_incentive_settings may have created the row
    return _settings_out(settings)


@admin_bp.put("/incentives/settings")
@audited("incentives.settings", single(IncentiveSettings, "incentive_settings"))
@spec.validate(
    resp=Response(HTTP_200=IncentiveSettingsOut, **BODY_ERRORS), tags=TAGS, security=SECURITY
)
def put_incentive_settings(json: IncentiveSettingsPut):
    """Change the settings given (422 ``invalid_settings`` with the reason)."""
    settings = get_incentive_settings()
    given = json.model_dump(exclude_unset=True)
    with incentive_errors("invalid_settings"):
        update_incentive_settings(
            settings,
            given.get("invite_reward_enabled", settings.invite_reward_enabled),
            given.get("invite_reward_fen", settings.invite_reward_fen),
            given.get("leaderboards_enabled", settings.leaderboards_enabled),
        )
        db.session.commit()
    return _settings_out(settings)
