"""A request stuck behind another transaction's lock gives up after DB_LOCK_TIMEOUT_MS
with a clear "busy, try again" answer (503, Retry-After), writes nothing, and works once
the lock is gone: on SQLite (busy_timeout) and PostgreSQL (lock_timeout)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import create_app
from app.catalog.models import Category
from app.extensions import db
from tests.test_admin_support import post, text


@pytest.fixture
def impatient(app):
    """The same app on the same database, waiting at most 300 ms for a lock."""
    keys = (
        "ENV_NAME",
        "SQLALCHEMY_DATABASE_URI",
        "REDIS_URL",
        "UPLOAD_DIR",
        "PUBLIC_BASE_URL",
        "WECHAT_API_BASE",
        "WECHAT_OPEN_BASE",
        "WECHAT_MP_BASE",
        "WECHAT_PAY_API_BASE",
    )
    other = create_app({**{key: app.config[key] for key in keys}, "DB_LOCK_TIMEOUT_MS": 300})
    other.test_client_class = app.test_client_class
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def hold(app, table: str):
    """Another transaction that holds what adding a row to ``table`` must wait for."""
    with app.app_context():
        conn = db.engine.connect()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite's one write lock
    return conn


def test_a_form_stuck_behind_a_lock_gets_a_busy_page_then_works(app, impatient, make, login_as):
    staff = make.staff("clerk", role="staff")
    client = impatient.test_client()
    login_as(client, staff)
    held = hold(app, "categories")
    try:
        busy = post(client, "/admin/categories", {"name": "女装", "sort": "1"})
    finally:
        held.rollback()
        held.close()
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "2"
    assert "系统繁忙，请稍后重试" in text(busy)
    assert db.session.scalar(select(func.count()).select_from(Category)) == 0
    done = post(client, "/admin/categories", {"name": "女装", "sort": "1"})
    assert done.status_code == 302
    assert db.session.scalar(select(Category.name)) == "女装"


def test_the_json_api_says_busy_with_a_code(app, impatient, make, login_as, runner):
    made = runner.invoke(args=["create-api-token", "busy"])
    assert made.exit_code == 0, made.output
    client = impatient.test_client()
    held = hold(app, "distributor_grades")
    try:
        busy = client.post(
            "/api/v1/admin/distribution/grades",
            json={"name": "金牌"},
            headers={"Authorization": f"Bearer {made.output.strip()}"},
        )
    finally:
        held.rollback()
        held.close()
    assert busy.status_code == 503, busy.get_data(as_text=True)
    assert busy.get_json()["error"]["code"] == "busy"
    assert busy.get_json()["error"]["message"] == "系统繁忙，请稍后重试"
