"""The admin dashboard's 后台任务 card against a real ``flask worker`` process: the worker's
ticker records the heartbeat, and the page served over HTTP says 运行中; a heartbeat from
long ago says 未运行 with when it was last heard of."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from playwright.sync_api import expect

from app.core.redis import redis_for
from app.core.time import utcnow
from jobs.maintenance import HEARTBEAT_KEY
from tests.support.admin import CSRF_RE
from tests.support.processes import app_env, start_worker, stop, wait_for


def _signed_in(base_url: str, username: str) -> requests.Session:
    """A browser-like session signed in through the real admin login form."""
    session = requests.Session()
    token = CSRF_RE.search(session.get(f"{base_url}/admin/login").text).group(1)
    response = session.post(
        f"{base_url}/admin/login",
        data={"csrf_token": token, "username": username, "password": "password123"},
    )
    assert response.status_code == 200 and "/admin/login" not in response.url
    return session


def _worker_card(session: requests.Session, base_url: str) -> str:
    page = session.get(f"{base_url}/admin/")
    assert page.status_code == 200
    card = re.search(r"后台任务</span>(.*?)</div>", page.text, re.S)
    assert card, page.text[:500]
    return " ".join(re.sub(r"<[^>]+>", " ", card.group(1)).split())


def test_dashboard_says_running_while_a_real_worker_runs(
    app, make, live_server, sandbox, database_url, redis_url, tmp_path
):
    make.staff("clerk")
    session = _signed_in(live_server.url, "clerk")
    assert _worker_card(session, live_server.url).startswith("未运行")

    log = tmp_path / "worker.log"
    worker = start_worker(app_env(database_url, redis_url, sandbox.url), log)
    try:
        assert wait_for(lambda: redis_for(app).get(HEARTBEAT_KEY) is not None, 60), log.read_text()
        first = redis_for(app).get(HEARTBEAT_KEY)
        card = _worker_card(session, live_server.url)
        assert card.startswith("运行中") and "最近心跳" in card and "刚刚" in card, card
        # Every tick (1 s here) writes it again, not only the first.
        assert wait_for(lambda: redis_for(app).get(HEARTBEAT_KEY) != first, 10)
    finally:
        stop(worker)
    assert "Traceback" not in log.read_text()


def test_dashboard_says_stopped_when_the_heartbeat_is_old(app, make, live_server):
    make.staff("clerk")
    old = utcnow() - timedelta(minutes=5)
    redis_for(app).set(HEARTBEAT_KEY, old.isoformat())
    card = _worker_card(_signed_in(live_server.url, "clerk"), live_server.url)
    assert card.startswith("未运行") and "5 分钟前" in card and "最近心跳" in card, card
    assert "运行中" not in card


@pytest.mark.browser
def test_dashboard_worker_card_in_a_browser(
    app, make, desk, live_server, sandbox, database_url, redis_url, tmp_path, artifacts
):
    make.staff("clerk", password="clerk-password")
    worker = start_worker(app_env(database_url, redis_url, sandbox.url), tmp_path / "worker.log")
    try:
        assert wait_for(lambda: redis_for(app).get(HEARTBEAT_KEY) is not None, 60)
        desk.goto(f"{live_server.url}/admin/")
        desk.fill("#username", "clerk")
        desk.fill("#password", "clerk-password")
        desk.click("button[type=submit]")
        desk.wait_for_url(f"{live_server.url}/admin/")
        expect(desk.locator("[data-worker]")).to_have_text("运行中")
        desk.screenshot(path=str(artifacts / "admin-dashboard-worker.png"), full_page=True)
    finally:
        stop(worker)
