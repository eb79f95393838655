"""Leaderboards and the incentive pages: order and ties, masking and opt-in, Redis kept in
step and rebuilt equal to the database; the centre's 任务奖励 / 排行榜 pages, the JSON API
and who may see them; the admin task form."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.redis import get_redis
from app.core.time import utcnow
from app.distribution.models import Distributor
from app.extensions import db
from app.incentives import leaderboards
from app.incentives.models import Task
from jobs.incentives import evaluate_everything
from tests.support.admin import csrf_token, fresh_client, login_staff
from tests.support.commissions import configure, customer_of, distributor, pay, place, refund
from tests.support.incentives import invite_settings, make_task

pytestmark = pytest.mark.postgresql  # ranking SQL

BOARDS = [(b, p) for b in leaderboards.BOARDS for p in leaderboards.PERIODS]


def seed(make):
    """Three sellers (one tie), an inviter with two buying invitees; a refund."""
    configure(levels=1)
    a = distributor(make, nickname="阿里")
    b = distributor(make, nickname="白云")
    c = distributor(make, nickname="陈晨")
    pay(place(make, customer_of(make, a), price_fen=30000))
    pay(place(make, customer_of(make, b), price_fen=20000))
    pay(place(make, customer_of(make, c), price_fen=20000))  # ties with b
    order = pay(place(make, customer_of(make, c), price_fen=10000, quantity=2))
    refund(order, 2)  # fully refunded: counts for nothing
    for _ in range(2):
        invitee = distributor(make, a)
        pay(place(make, db.session.get(Distributor, invitee.id).user, price_fen=100))
    return a, b, c


def test_order_ties_and_refunds_from_the_database(app, make):
    a, b, c = seed(make)
    assert leaderboards.from_database("sales", "day") == [
        (a.id, 30000),
        (b.id, 20000),
        (c.id, 20000),
    ]
    assert leaderboards.from_database("commission", "week")[:3] == [
        (a.id, 3000),
        (b.id, 2000),
        (c.id, 2000),
    ]
    assert leaderboards.from_database("invites", "month") == [(a.id, 2)]


@pytest.mark.parametrize(("board", "period"), BOARDS)
def test_redis_rebuilt_equals_database(app, make, board, period):
    seed(make)
    leaderboards.rebuild(board, period)
    assert leaderboards.from_redis(board, period) == leaderboards.from_database(board, period)


def test_events_keep_redis_in_step(app, make):
    configure(levels=1)
    a = distributor(make, nickname="阿里")
    for board, period in BOARDS:
        leaderboards.rebuild(board, period)  # built (empty) before the events
    order = pay(place(make, customer_of(make, a), price_fen=10000))
    assert leaderboards.from_redis("sales", "day") == [(a.id, 10000)]
    refund(order, 1)
    for board, period in BOARDS:
        assert leaderboards.from_redis(board, period) == leaderboards.from_database(board, period)
    assert leaderboards.from_redis("sales", "day") == []


def test_read_masks_names_unless_opted_in_and_gives_my_rank(app, make):
    a, _b, c = seed(make)
    data = leaderboards.read("sales", "day", c.id)
    assert [(r.rank, r.name) for r in data.rows] == [(1, "阿**"), (2, "白**"), (3, "陈**")]
    assert data.me is not None and (data.me.rank, data.me.score, data.me.is_me) == (3, 20000, True)
    leaderboards.set_opt_in(a.id, True)
    db.session.commit()
    assert leaderboards.read("sales", "day", None).rows[0].name == "阿里"
    nobody = distributor(make)
    assert leaderboards.read("sales", "day", nobody.id).me is None


def test_read_rebuilds_a_missing_set(app, make):
    a, _b, _c = seed(make)
    get_redis().flushdb()
    assert leaderboards.read("sales", "month", a.id).rows[0].distributor_id == a.id


def test_periods_are_china_time():
    from datetime import UTC, datetime

    # 2026-03-01 16:30 UTC is Monday 2 March 00:30 in Shanghai.
    now = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
    start, end = leaderboards.period_range("day", now)
    assert (start.isoformat(), end.isoformat()) == (
        "2026-03-02T00:00:00+08:00",
        "2026-03-03T00:00:00+08:00",
    )
    assert leaderboards.period_range("week", now)[0].isoformat() == "2026-03-02T00:00:00+08:00"
    assert leaderboards.period_range("month", now)[0].isoformat() == "2026-03-01T00:00:00+08:00"


# --- pages and API --------------------------------------------------------------------------


def test_centre_pages_and_api(app, client, login_as, make):
    invite_settings(500)
    _a, _b, c = seed(make)
    make_task(target=50000, name="月度冲刺")
    login_as(client, db.session.get(Distributor, c.id).user)
    page = client.get("/distributor/tasks")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "月度冲刺" in html and "邀请奖励" in html and 'aria-valuenow="40"' in html
    answer = client.get("/api/v1/distributor/tasks").get_json()
    [task] = answer["tasks"]
    assert (task["progress"], task["percent"], task["reward_state"]) == (20000, 40, None)
    assert answer["invite_reward_fen"] == 500
    page = client.get("/distributor/leaderboards?board=sales&period=day")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "第 3 名" in html and "陈**（我）" in html
    board = client.get("/api/v1/distributor/leaderboards?board=invites&period=week").get_json()
    assert board["rows"][0]["score"] == 2 and board["me"] is None
    bad = client.get("/api/v1/distributor/leaderboards?board=heads")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"]


def test_opt_in_from_the_page(app, make):
    a, _b, _c = seed(make)
    client = fresh_client(app)
    with client.session_transaction() as session:
        session["_user_id"] = db.session.get(Distributor, a.id).user.get_id()
    token = csrf_token(client, "/distributor/leaderboards")
    client.post("/distributor/leaderboards/name", data={"csrf_token": token, "show": "1"})
    html = client.get("/distributor/leaderboards").get_data(as_text=True)
    assert "阿里（我）" in html


def test_who_may_see(app, client, login_as, make):
    assert client.get("/api/v1/distributor/tasks").status_code == 401
    assert client.get("/distributor/leaderboards").status_code in (302, 401)
    login_as(client, make.user())  # a customer, not a distributor
    assert client.get("/api/v1/distributor/leaderboards").status_code == 404
    assert client.get("/distributor/tasks").status_code == 302


def test_admin_creates_and_edits_a_task(app, make):
    staff = make.staff()
    client = fresh_client(app)
    login_staff(client, staff)
    token = csrf_token(client, "/admin/incentives/tasks/new")
    form = {
        "csrf_token": token,
        "name": "周末冲量",
        "target_kind": "sales_fen",
        "target_value": "200.50",
        "reward": "8.88",
        "starts_at": "2026-01-01T00:00",
        "ends_at": "2025-12-31T00:00",
        "active": "1",
    }
    bad = client.post("/admin/incentives/tasks", data=form)
    assert bad.status_code == 400 and "结束时间必须晚于开始时间" in bad.get_data(as_text=True)
    form["ends_at"] = "2026-01-08T00:00"
    assert client.post("/admin/incentives/tasks", data=form).status_code == 302
    db.session.rollback()
    task = db.session.scalar(select(Task))
    assert (task.target_value, task.reward_fen) == (20050, 888)
    assert task.starts_at.isoformat() == "2025-12-31T16:00:00+00:00"  # China time typed
    form["reward"] = "0"
    bad = client.post(f"/admin/incentives/tasks/{task.id}", data=form)
    assert bad.status_code == 400 and "奖励金额必须大于 0" in bad.get_data(as_text=True)
    assert "周末冲量" in client.get("/admin/incentives/tasks").get_data(as_text=True)


def test_periodic_pass_rebuilds_boards(app, make):
    a, _b, _c = seed(make)
    get_redis().flushdb()
    evaluate_everything(utcnow() + timedelta(seconds=1))
    assert leaderboards.from_redis("sales", "day")[0] == (a.id, 30000)
