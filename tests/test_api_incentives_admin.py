"""Open API for incentive money rules: tasks (reward per target) and the invite reward,
through HTTP with a token from the real CLI, refused with the admin pages' messages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core.models import AuditLog
from app.extensions import db
from app.incentives.models import IncentiveSettings, Task
from tests.support.openapi import bearer_caller

TASK = {
    "name": "月度冲刺",
    "target_kind": "paid_orders",
    "target_value": 10,
    "reward_fen": 5000,
    "starts_at": "2026-12-01T00:00:00+08:00",
    "ends_at": "2026-12-31T23:59:00+08:00",
}


@pytest.fixture
def api(client, runner, app_ctx):
    token = runner.invoke(args=["create-api-token", "erp"]).output.strip()

    return bearer_caller(client, token)


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code, error
    return error


def test_task_round_trip(api):
    made = api("post", "/incentives/tasks", json=TASK)
    assert made.status_code == 201, made.get_data(as_text=True)
    task = made.get_json()
    assert (task["reward_fen"], task["grade_ids"], task["active"]) == (5000, [], True)
    assert task["starts_at"].startswith("2026-11-30T16:00:00")  # stored in UTC
    url = f"/incentives/tasks/{task['id']}"
    assert api("get", url).get_json() == task
    changed = api("patch", url, json={"reward_fen": 8000, "active": False})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert (changed.get_json()["reward_fen"], changed.get_json()["name"]) == (8000, "月度冲刺")
    assert [t["id"] for t in api("get", "/incentives/tasks").get_json()["items"]] == [task["id"]]
    db.session.expire_all()
    assert db.session.get(Task, task["id"]).reward_fen == 8000
    actions = db.session.scalars(
        select(AuditLog.action).where(AuditLog.subject == "task").order_by(AuditLog.id)
    ).all()
    assert actions == ["task.create", "task.update"]


def test_tasks_refused_with_the_admin_pages_reasons(api):
    error = error_of(
        api("post", "/incentives/tasks", json={**TASK, "reward_fen": 0}), 422, "invalid_task"
    )
    assert error["message"] == "奖励金额必须大于 0"
    late = {**TASK, "ends_at": "2026-11-01T00:00:00+08:00"}
    assert error_of(api("post", "/incentives/tasks", json=late), 422, "invalid_task")[
        "message"
    ] == ("结束时间必须晚于开始时间")
    error_of(
        api("post", "/incentives/tasks", json={**TASK, "grade_ids": [987654]}), 422, "invalid_task"
    )
    error_of(
        api("post", "/incentives/tasks", json={**TASK, "reward_fen": 10**8}), 422, "invalid_task"
    )
    naive = {**TASK, "starts_at": "2026-12-01T00:00:00"}
    error_of(api("post", "/incentives/tasks", json=naive), 422, "validation_error")
    error_of(
        api("post", "/incentives/tasks", json={**TASK, "target_kind": "heads"}),
        422,
        "validation_error",
    )
    made = api("post", "/incentives/tasks", json=TASK).get_json()
    error_of(
        api("patch", f"/incentives/tasks/{made['id']}", json={"target_value": 0}),
        422,
        "invalid_task",
    )
    for huge in (2**31, 1099511627775, 10**20):  # past the integer column: refused, not a 500
        for method, path in (
            ("post", "/incentives/tasks"),
            ("patch", f"/incentives/tasks/{made['id']}"),
        ):
            body = {**TASK, "target_value": huge} if method == "post" else {"target_value": huge}
            assert error_of(api(method, path, json=body), 422, "invalid_task")["message"] == (
                "目标值过大"
            )
    error_of(api("patch", "/incentives/tasks/987654", json={"reward_fen": 1}), 404, "not_found")
    db.session.expire_all()
    assert db.session.scalars(select(Task.target_value)).all() == [10]


def test_invite_reward_settings(api):
    assert api("get", "/incentives/settings").get_json() == {
        "invite_reward_enabled": False,
        "invite_reward_fen": 0,
        "leaderboards_enabled": True,
    }
    error = error_of(
        api("put", "/incentives/settings", json={"invite_reward_enabled": True}),
        422,
        "invalid_settings",
    )
    assert error["message"] == "开启邀请奖励时金额必须大于 0"
    error_of(
        api("put", "/incentives/settings", json={"invite_reward_fen": -1}), 422, "invalid_settings"
    )
    error_of(
        api("put", "/incentives/settings", json={"invite_reward_fen": 10**8}),
        422,
        "invalid_settings",
    )
    saved = api(
        "put",
        "/incentives/settings",
        json={"invite_reward_enabled": True, "invite_reward_fen": 800},
    )
    assert saved.status_code == 200, saved.get_data(as_text=True)
    assert saved.get_json()["invite_reward_fen"] == 800
    db.session.expire_all()
    assert db.session.get(IncentiveSettings, 1).invite_reward_enabled is True
    assert db.session.scalar(
        select(AuditLog.action).where(AuditLog.action == "incentives.settings")
    )
