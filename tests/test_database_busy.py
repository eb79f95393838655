"""A request stuck behind another transaction's lock gives up after DB_LOCK_TIMEOUT_MS
with a clear "busy, try again" answer (503, Retry-After), writes nothing, and works once
the lock is gone: on SQLite (busy_timeout) and PostgreSQL (lock_timeout). Pages that need
Redis say the same when it is out of reach; pages that do not keep working."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.catalog.models import Category
from app.distribution.distributors import create_distributor
from app.extensions import db
from tests.support.admin import post, text
from tests.support.apps import second_app
from tests.support.servers import free_port

pytestmark = pytest.mark.postgresql  # lock timeouts


def variant(app, **overrides):
    """The same app on the same database, with ``overrides`` in its config."""
    return second_app(app, **overrides)


@pytest.fixture
def impatient(app):
    """The same app, waiting at most 300 ms for a lock."""
    other = variant(app, DB_LOCK_TIMEOUT_MS=300)
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def without_redis(app):
    """The same app with Redis out of reach (nothing listens on the port)."""
    other = variant(app, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
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


def test_with_redis_out_of_reach_pages_say_busy_or_keep_working(without_redis, make, login_as):
    seller = make.user()
    create_distributor(seller.id, None)
    db.session.commit()
    client = without_redis.test_client()
    login_as(client, seller)
    assert client.get("/").status_code == 200  # the catalog cache is skipped, not fatal
    assert client.get("/distributor/commissions").status_code == 200
    for needs_redis in ("/distributor/leaderboards", "/distributor/posters"):
        busy = client.get(needs_redis)
        assert busy.status_code == 503, needs_redis
        assert "系统繁忙，请稍后重试" in text(busy)


def test_with_redis_out_of_reach_a_customer_can_still_place_an_order(without_redis, make, login_as):
    """The order and its stock are in the database; what Redis carries after the commit
    (the unpaid-order timer) is swept up by the periodic timers once Redis is back."""
    from tests.support.orders import make_address, place, sign_in, stock_of

    user = make.user()
    make_address(user.id, is_default=True)
    sku = make.product("绿茶", price_fen=1000, stock=5).skus[0]
    client = without_redis.test_client()
    headers = sign_in(client, login_as, user)
    placed = place(client, headers, sku.id, 2)
    assert placed.status_code == 201, placed.get_data(as_text=True)
    assert stock_of(sku.id) == 3
