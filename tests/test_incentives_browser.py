"""The distributor centre's 任务奖励 and 排行榜 pages in a real browser (375 px, WeChat's
user agent, zh-CN): a fan signs in through the stand-in, is a distributor with sales from
real paid orders, and sees the task's progress bar and time left, the board tabs, their
own rank, and the other distributors' names masked unless they opted in.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.accounts.models import User
from app.core.time import utcnow
from app.distribution.distributors import create_distributor
from app.extensions import db
from app.incentives import leaderboards
from app.wechat.sandbox.state import fan_openid
from tests.support.browser import sign_in_on_stand_in
from tests.support.commissions import configure, customer_of, distributor, pay, place
from tests.support.incentives import make_task


def _fits_375(page) -> None:
    """Nothing wider than the phone: no sideways scrolling."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


@pytest.mark.browser
def test_task_progress_and_leaderboard_in_the_centre(
    app, make, browser, page, live_server, sandbox, artifacts
):
    configure(levels=2, level1_bp=1000, level2_bp=500)
    base = live_server.url
    page.goto(f"{base}/distributor/tasks")
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(re.compile(r".*/distributor.*"))

    page.wait_for_load_state()
    db.session.rollback()
    openid = fan_openid(app.config["WECHAT_APPID"], "韩梅梅")
    me_user = db.session.scalar(select(User).where(User.openid == openid))
    me_user.nickname = "韩梅梅"  # as the profile (snsapi_userinfo) would have given it
    me = create_distributor(me_user.id, None)
    db.session.commit()
    # Two other distributors: 王大锤 keeps the default mask, 赵灵儿 shows her name.
    big = distributor(make, nickname="王大锤")
    shown = distributor(make, nickname="赵灵儿")
    leaderboards.set_opt_in(shown.id, True)
    db.session.commit()
    make_task(
        target=50_000,
        reward=2_000,
        name="双十二冲刺：本周推广销售满 ¥500 即得奖励",
        ends_at=utcnow() + timedelta(days=3, hours=5),
    )
    for seller, price in ((big, 39_900), (me, 12_800), (me, 6_600), (shown, 9_900)):
        pay(place(make, customer_of(make, seller, "顾客"), price_fen=price))

    page.goto(f"{base}/distributor/tasks")
    task = page.locator("[data-task]")
    expect(task).to_have_count(1)
    expect(task.locator(".block-title")).to_have_text("双十二冲刺：本周推广销售满 ¥500 即得奖励")
    expect(task.locator("[data-progress]")).to_have_text("¥194.00")  # 128 + 66 yuan
    bar = task.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", "38")  # 19,400 of 50,000 fen
    width = bar.locator("rect").evaluate("el => el.getBoundingClientRect().width")
    full = bar.evaluate("el => el.getBoundingClientRect().width")
    assert 0.3 * full < width < 0.45 * full
    expect(task.locator("[data-left]")).to_contain_text(re.compile(r"剩余 3 天 [45] 小时"))
    _fits_375(page)
    page.screenshot(path=str(artifacts / "incentives-tasks.png"), full_page=True)

    page.goto(f"{base}/distributor/leaderboards")
    tabs = page.get_by_role("navigation", name="榜单")
    expect(tabs.locator("[aria-current=page]")).to_have_text("销售榜")
    expect(page.locator("[data-my-rank]")).to_have_text("我的排名：第 2 名 · ¥194.00")
    rows = page.locator("[data-row]")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("[data-name]")).to_have_text("王**")  # masked
    expect(rows.nth(1)).to_have_class("me")
    expect(rows.nth(1).locator("[data-name]")).to_have_text(re.compile(r"韩.*（我）"))
    expect(rows.nth(2).locator("[data-name]")).to_have_text("赵灵儿")  # opted in
    assert "王大锤" not in page.content()
    _fits_375(page)
    page.screenshot(path=str(artifacts / "incentives-leaderboard-sales.png"), full_page=True)

    tabs.get_by_role("link", name=re.compile("佣金")).click()
    page.wait_for_url(re.compile(r".*board=commission.*"))
    expect(tabs.locator("[aria-current=page]")).to_contain_text("佣金")
    expect(page.locator("[data-my-rank]")).to_have_text("我的排名：第 2 名 · ¥19.40")
    page.get_by_role("navigation", name="时间").get_by_role("link", name="本月").click()
    page.wait_for_url(re.compile(r".*period=month.*"))
    expect(page.locator("[data-row]")).to_have_count(3)
    _fits_375(page)
    page.screenshot(path=str(artifacts / "incentives-leaderboard-commission.png"), full_page=True)
