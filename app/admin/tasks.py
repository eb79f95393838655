"""Admin pages of incentives: tasks (任务奖励) and the invite-reward / leaderboard settings.

Times are typed and shown in China time (datetime-local inputs); money in yuan, stored
in fen. Validation is ``app.incentives.tasks.validate``; every change is audited.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app.admin import bp
from app.admin.decorators import staff_required
from app.core.money import format_yuan, parse_yuan
from app.distribution.models import Grade
from app.extensions import db
from app.incentives.audit import audited, row, single
from app.incentives.invites import (
    IncentiveSettingsError,
    get_incentive_settings,
    update_incentive_settings,
)
from app.incentives.models import TASK_TARGETS, IncentiveSettings, Task
from app.incentives.tasks import TARGET_LABELS, TaskError, TaskInput, save_task
from app.ledger.models import LedgerEntry

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _local(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime(LOCAL_FORMAT) if moment else ""


def _parse_time(text: str, label: str) -> datetime:
    try:
        return datetime.strptime((text or "").strip(), LOCAL_FORMAT).replace(tzinfo=SHANGHAI)
    except ValueError:
        raise TaskError(f"请填写{label}") from None


def _int(text: str, message: str) -> int:
    raw = (text or "").strip()
    if not raw.isdecimal() or len(raw) > 12:
        raise TaskError(message)
    return int(raw)


def task_from_form(form) -> TaskInput:
    """Parse the task form; raise TaskError in Chinese."""
    kind = form.get("target_kind", "")
    if kind not in TASK_TARGETS:
        raise TaskError("请选择任务目标")
    raw_target = form.get("target_value", "")
    if kind == "sales_fen":
        try:
            target = parse_yuan(raw_target)
        except ValueError:
            raise TaskError("目标销售额格式不正确") from None
    else:
        target = _int(raw_target, "目标值须为正整数")
    try:
        reward = parse_yuan(form.get("reward", ""))
    except ValueError:
        raise TaskError("奖励金额格式不正确") from None
    grade_ids = []
    for raw in form.getlist("grade_ids"):
        grade_ids.append(_int(raw, "所选等级不存在"))
    return TaskInput(
        name=form.get("name", ""),
        target_kind=kind,
        target_value=target,
        reward_fen=reward,
        starts_at=_parse_time(form.get("starts_at", ""), "开始时间"),
        ends_at=_parse_time(form.get("ends_at", ""), "结束时间"),
        grade_ids=grade_ids,
        active=form.get("active") == "1",
    )


def _task_values(task: Task | None) -> dict:
    if task is None:
        return {"target_kind": "sales_fen", "active": True, "grade_ids": []}
    target = task.target_value
    return {
        "name": task.name,
        "target_kind": task.target_kind,
        "target_value": format_yuan(target, symbol=False)
        if task.target_kind == "sales_fen"
        else target,
        "reward": format_yuan(task.reward_fen, symbol=False),
        "starts_at": _local(task.starts_at),
        "ends_at": _local(task.ends_at),
        "grade_ids": task.grade_ids or [],
        "active": task.active,
    }


def _form_page(task: Task | None, values: dict, error: str = "", status: int = 200):
    grades = db.session.scalars(select(Grade).order_by(Grade.rank, Grade.id)).all()
    page = render_template(
        "admin/tasks_form.html",
        task=task,
        v=values,
        grades=grades,
        labels=TARGET_LABELS,
        error=error,
    )
    return page, status


def _posted_values() -> dict:
    values = dict(request.form.items())
    values["grade_ids"] = [int(g) for g in request.form.getlist("grade_ids") if g.isdecimal()]
    values["active"] = request.form.get("active") == "1"
    return values


@bp.get("/incentives/tasks")
@staff_required
def tasks():
    """Tasks with how many distributors reached each; the invite/leaderboard settings."""
    rows = db.session.scalars(select(Task).order_by(Task.id.desc())).all()
    reached = dict(
        db.session.execute(
            select(LedgerEntry.rule_source, db.func.count())
            .where(LedgerEntry.kind == "task_reward", LedgerEntry.state != "reversed")
            .group_by(LedgerEntry.rule_source)
        ).all()
    )
    settings = get_incentive_settings()
    db.session.commit()
    return render_template(
        "admin/tasks.html",
        rows=rows,
        reached=reached,
        labels=TARGET_LABELS,
        settings=settings,
        local=_local,
    )


@bp.get("/incentives/tasks/new")
@staff_required
def task_new():
    """The form for a new task."""
    return _form_page(None, _task_values(None))


@bp.post("/incentives/tasks")
@staff_required
@audited("task.create", single(Task, "task"))
def task_create():
    """Create a task."""
    try:
        task = save_task(task_from_form(request.form))
        db.session.commit()
    except TaskError as err:
        db.session.rollback()
        return _form_page(None, _posted_values(), err.message, 400)
    flash(f"已创建任务“{task.name}”", "success")
    return redirect(url_for("admin.tasks"))


@bp.get("/incentives/tasks/<int:task_id>")
@staff_required
def task_edit(task_id: int):
    """Edit a task."""
    task = db.get_or_404(Task, task_id)
    return _form_page(task, _task_values(task))


@bp.post("/incentives/tasks/<int:task_id>")
@staff_required
@audited("task.update", row(Task, "task_id", "task"))
def task_update(task_id: int):
    """Save a task's changes (rewards already written stay as they are)."""
    task = db.get_or_404(Task, task_id)
    try:
        save_task(task_from_form(request.form), task)
        db.session.commit()
    except TaskError as err:
        db.session.rollback()
        return _form_page(task, _posted_values(), err.message, 400)
    flash("任务已保存", "success")
    return redirect(url_for("admin.tasks"))


@bp.post("/incentives/settings")
@staff_required
@audited("incentives.settings", single(IncentiveSettings, "incentive_settings"))
def incentive_settings():
    """Invite reward on/off and amount; leaderboards on/off."""
    settings = get_incentive_settings()
    try:
        fen = parse_yuan(request.form.get("invite_reward", "0") or "0")
    except ValueError as err:
        db.session.rollback()
        flash(f"邀请奖励金额：{err}", "error")
        return redirect(url_for("admin.tasks"))
    try:
        update_incentive_settings(
            settings,
            request.form.get("invite_reward_enabled") == "1",
            fen,
            request.form.get("leaderboards_enabled") == "1",
        )
    except IncentiveSettingsError as err:
        db.session.rollback()
        flash(err.message, "error")
        return redirect(url_for("admin.tasks"))
    db.session.commit()
    flash("激励设置已保存", "success")
    return redirect(url_for("admin.tasks"))
