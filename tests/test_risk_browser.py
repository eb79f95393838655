"""Risk control in a browser: the staff review queue at 1366 px (evidence, reject with a
reason, release) and the distributor's held note at 375 px."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.distribution.distributors import create_distributor
from app.extensions import db
from app.ledger.holds import HELD_NOTE
from app.wechat.sandbox.state import fan_openid
from jobs.risk import check_paid_orders
from tests.support.browser import sign_in_on_stand_in
from tests.support.risk import audits, finish_all, holds, ring


@pytest.mark.browser
def test_the_review_queue_at_1366(desk, live_server, make, artifacts):
    make.staff("clerk", password="clerk-password")
    _seller, orders = ring(make)
    check_paid_orders([o.id for o in orders])
    base = live_server.url
    desk.goto(f"{base}/admin/risk")
    desk.fill("#username", "clerk")
    desk.fill("#password", "clerk-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/risk")
    assert desk.locator("section.risk-item").count() == 3
    assert desk.evaluate("document.documentElement.scrollWidth") <= 1366
    desk.screenshot(path=str(artifacts / "risk-queue.png"), full_page=True)

    first = desk.locator("section.risk-item").first
    first.get_by_placeholder("驳回原因（必填，记入审计日志）").fill("同一收货人多账号下单")
    first.get_by_role("button", name="驳回并冲回").click()  # the confirm is accepted
    desk.wait_for_selector("text=已驳回，佣金已冲回")
    assert desk.locator("section.risk-item").count() == 2
    desk.locator("section.risk-item").first.get_by_role("button", name="放行").click()
    desk.wait_for_selector("text=已放行")
    assert desk.locator("section.risk-item").count() == 1
    assert sorted(h.state for h in holds()) == ["held", "rejected", "released"]
    assert [a.action for a in audits()] == ["risk.reject", "risk.release"]
    desk.goto(f"{base}/admin/risk?state=rejected")
    assert "同一收货人多账号下单" in desk.inner_text("main")
    desk.screenshot(path=str(artifacts / "risk-queue-rejected.png"), full_page=True)


@pytest.mark.browser
def test_the_distributor_sees_the_held_note_at_375(
    app, make, page, live_server, sandbox, artifacts
):
    base = live_server.url
    page.goto(f"{base}/distributor")
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(re.compile(r".*/distributor.*"))
    db.session.rollback()
    user = db.session.scalar(
        select(User).where(User.openid == fan_openid(app.config["WECHAT_APPID"], "韩梅梅"))
    )
    seller = create_distributor(user.id, None)
    db.session.commit()
    _seller, orders = ring(make, seller=seller)
    check_paid_orders([o.id for o in orders])
    finish_all(orders, days_ago=10)  # past the settlement date: still held

    page.goto(f"{base}/distributor/commissions")
    notes = page.locator("[data-reason]")
    assert notes.count() == 3
    assert {notes.nth(i).inner_text() for i in range(3)} == {HELD_NOTE}
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(artifacts / "risk-held-note.png"), full_page=True)
