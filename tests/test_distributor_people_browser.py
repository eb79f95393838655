"""我的客户 and 我的团队 in a real browser (375 px, WeChat's user agent, zh-CN).

A fan signs in through the stand-in and is a distributor with customers who bought
through real paid orders (two without a nickname, one with a lapsed binding) and a team
of two levels. The customer list tells everyone apart, says each binding's state in words,
shows orders, spend and the last order, and sorts by spend; the team list shows each
member's sales and the commission they brought; 邀请好友加入 opens the share sheet with the
invite link. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from app.accounts.models import User
from app.core.time import utcnow
from app.distribution.distributors import create_distributor
from app.distribution.models import Binding
from app.extensions import db
from app.wechat.sandbox.state import fan_openid
from tests.support.browser import sign_in_on_stand_in
from tests.support.commissions import configure, customer_of, distributor, pay, place


def _fits_375(page) -> None:
    """Nothing wider than the phone: no sideways scrolling."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


@pytest.mark.browser
def test_customers_and_team_pages(app, make, page, live_server, sandbox, artifacts):
    configure(levels=3, level1_bp=1000, level2_bp=500, level3_bp=200, protection_days=15)
    base = live_server.url
    page.goto(f"{base}/distributor/customers")
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(re.compile(r".*/distributor.*"))
    page.wait_for_load_state()

    db.session.rollback()
    openid = fan_openid(app.config["WECHAT_APPID"], "韩梅梅")
    me_user = db.session.scalar(select(User).where(User.openid == openid))
    me_user.nickname = "韩梅梅"
    me = create_distributor(me_user.id, None)
    db.session.commit()

    # Customers: one with a WeChat avatar, two without a nickname, one lapsed.
    lin = customer_of(make, me, "林小雨")
    lin.avatar_url = f"{sandbox.url}/_sandbox/avatar/{lin.openid}.svg"
    db.session.commit()
    pay(place(make, lin, price_fen=12800))
    pay(place(make, lin, price_fen=6600))
    quiet = customer_of(make, me, "")
    pay(place(make, quiet, price_fen=39900))
    shy = customer_of(make, me, "")
    gone = customer_of(make, me, "老顾客")
    pay(place(make, gone, price_fen=2500))
    db.session.execute(
        update(Binding)
        .where(Binding.user_id == gone.id)
        .values(expires_at=utcnow() - timedelta(days=1))
    )
    db.session.commit()

    # Team: 周杰 (level 1) sells; 周杰 invited someone without a nickname (level 2) who sells.
    zhou = distributor(make, me, nickname="周杰")
    pay(place(make, customer_of(make, zhou, "周的客户"), price_fen=20000))
    below = distributor(make, zhou, nickname="")
    pay(place(make, customer_of(make, below, "下线的客户"), price_fen=50000))

    page.goto(f"{base}/distributor/customers")
    rows = page.locator("[data-customer]")
    expect(rows).to_have_count(3)
    names = rows.locator("[data-name]").all_inner_texts()
    assert quiet.display_name in names and shy.display_name in names
    assert quiet.display_name != shy.display_name
    lin_row = page.locator(f'[data-customer="{lin.id}"]')
    expect(lin_row.locator("img.d-ava")).to_have_attribute("src", lin.avatar_url)
    expect(lin_row.locator("[data-spend]")).to_have_text("¥194.00")
    expect(lin_row.locator("[data-orders]")).to_have_text("成交 2 单")
    expect(lin_row.locator("[data-state]")).to_have_text(re.compile(r"绑定有效，保护期剩 \d+ 天"))
    expect(page.locator(f'[data-customer="{shy.id}"] [data-last-order]')).to_have_text(
        "还没有经你下单"
    )
    _fits_375(page)
    page.screenshot(path=str(artifacts / "people-customers.png"), full_page=True)

    page.get_by_role("link", name="消费最多").click()
    page.wait_for_url(re.compile(r".*sort=spend.*"))
    expect(rows.first.locator("[data-name]")).to_have_text(quiet.display_name)
    expect(rows.first.locator("[data-spend]")).to_have_text("¥399.00")
    page.screenshot(path=str(artifacts / "people-customers-spend.png"), full_page=True)

    page.get_by_role("link", name=re.compile("已失效")).click()
    page.wait_for_url(re.compile(r".*status=lapsed.*"))
    expect(rows).to_have_count(1)
    expect(rows.first.locator("[data-state]")).to_have_text("已失效")
    expect(rows.first.locator("[data-spend]")).to_have_text("¥25.00")
    page.screenshot(path=str(artifacts / "people-customers-lapsed.png"), full_page=True)

    page.goto(f"{base}/distributor/team")
    member = page.locator(f'[data-member="{zhou.id}"]')
    expect(member.locator("[data-name]")).to_have_text("周杰")
    expect(member.locator("[data-month-sales]")).to_have_text("¥200.00")
    expect(member.locator("[data-sales]")).to_have_text("¥200.00")
    expect(member.locator("[data-brought]")).to_have_text("¥10.00")  # my 5% level 2
    _fits_375(page)
    page.screenshot(path=str(artifacts / "people-team.png"), full_page=True)

    page.get_by_role("button", name="邀请好友加入").click()
    sheet = page.get_by_role("dialog", name="邀请好友成为分销员")
    expect(sheet).to_be_visible()
    expect(sheet.locator("[data-invite-url]")).to_have_text(f"{base}/distributor?ref={me.code}")
    page.screenshot(path=str(artifacts / "people-team-invite.png"), full_page=True)
    sheet.get_by_role("button", name="关闭").click()
    expect(sheet).to_be_hidden()

    page.get_by_role("link", name=re.compile("二级成员")).click()
    page.wait_for_url(re.compile(r".*level=2.*"))
    second = page.locator(f'[data-member="{below.id}"]')
    expect(second.locator("[data-name]")).to_have_text(below.user.display_name)
    expect(second.locator("[data-brought]")).to_have_text("¥10.00")  # my 2% level 3
    page.screenshot(path=str(artifacts / "people-team-level2.png"), full_page=True)
