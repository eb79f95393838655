"""The distributor's money in a real browser (375 px, WeChat's user agent, zh-CN): a fan
signs in through the stand-in and is a distributor with money in every state from real
orders; the centre home's figures equal sums over the ledger, the next settlement names
its date, the withdraw page lists pending money by the date it becomes withdrawable and
shows the fee before submitting, 佣金明细 filters by status and opens the masked order.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.accounts.models import User
from app.core.money import format_yuan
from app.core.time import shop_day_start, shop_today, to_shop_time
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.wechat.sandbox.state import fan_openid
from tests.support.browser import sign_in_on_stand_in
from tests.support.commissions import configure
from tests.support.money import build_shop, ledger_sum


def _fits_375(page) -> None:
    """Nothing wider than the phone: no sideways scrolling."""
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


@pytest.mark.browser
def test_centre_figures_pending_dates_and_masked_order(
    app, make, page, live_server, sandbox, artifacts
):
    base = live_server.url
    page.goto(f"{base}/distributor")
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(re.compile(r".*/distributor.*"))
    page.wait_for_load_state()
    db.session.rollback()
    user = db.session.scalar(
        select(User).where(User.openid == fan_openid(app.config["WECHAT_APPID"], "韩梅梅"))
    )
    shop = build_shop(make, seller_user=user)
    configure(withdraw_fee_bp=60, withdraw_min_fen=100)
    me = shop.seller.id

    # The centre home: every figure is a sum over the ledger.
    page.goto(f"{base}/distributor")
    start = shop_day_start(shop_today())
    month = shop_day_start(shop_today().replace(day=1))
    income = (LedgerEntry.state != "reversed", LedgerEntry.kind != "withdrawal")
    expected = {
        "[data-today]": ledger_sum(me, *income, LedgerEntry.created_at >= start),
        "[data-month]": ledger_sum(me, *income, LedgerEntry.created_at >= month),
        "[data-total]": ledger_sum(me, *income),
        "[data-pending]": ledger_sum(me, LedgerEntry.state == "pending"),
        "[data-available]": ledger_sum(me, LedgerEntry.state.in_(("settled", "withdrawn"))),
    }
    assert expected["[data-total]"] == 6500
    for selector, fen in expected.items():
        expect(page.locator(selector)).to_have_text(format_yuan(fen))
    expect(page.locator("[data-orders]")).to_have_text("4")
    expect(page.locator("[data-customers]")).to_have_text("5")
    expect(page.locator("[data-team]")).to_have_text("0")
    day = to_shop_time(shop.completed_now.completed_at).date() + timedelta(days=7)
    expect(page.locator("[data-next-text]")).to_have_text(
        f"¥20.00 将于 {day.month}月{day.day}日 起可提现，共 1 笔"
    )
    _fits_375(page)
    page.screenshot(path=str(artifacts / "money-centre.png"), full_page=True)

    # The next settlement opens the withdraw page's pending dates; the fee before submitting.
    page.locator("[data-next]").click()
    page.wait_for_url(re.compile(r".*/distributor/withdraw#pending"))
    parts = page.locator("[data-pending-part]")
    expect(parts).to_have_count(2)
    expect(parts.nth(0)).to_have_attribute("data-pending-part", day.isoformat())
    expect(parts.nth(0).locator("[data-when]")).to_contain_text(
        f"{day.month}月{day.day}日 起可提现"
    )
    expect(parts.nth(0).locator("[data-amount]")).to_have_text("¥20.00")
    expect(parts.nth(1)).to_have_attribute("data-pending-part", "unreceived")
    expect(parts.nth(1).locator("[data-when]")).to_contain_text("确认收货后 7 天可提现")
    expect(parts.nth(1).locator("[data-amount]")).to_have_text("¥15.00")
    expect(page.locator("[data-available]")).to_have_text("¥20.00")
    page.locator("[data-amount-input]").fill("10")
    expect(page.locator("[data-fee-preview]")).to_have_text("手续费 ¥0.06，实际到账 ¥9.94")
    _fits_375(page)
    page.screenshot(path=str(artifacts / "money-withdraw.png"), full_page=True)

    # 佣金明细: the status tabs, product and SKU, and the order number opens the order.
    page.goto(f"{base}/distributor/commissions")
    page.get_by_role("navigation", name="按状态筛选").get_by_role("link", name="待结算").click()
    page.wait_for_url(re.compile(r".*status=pending"))
    states = page.locator("[data-entry]").evaluate_all(
        "els => els.map(e => e.getAttribute('data-state'))"
    )
    assert states and set(states) == {"pending"}
    expect(page.locator("[data-product]").first).to_have_text("手工陶瓷茶杯 · 青瓷")
    _fits_375(page)
    page.screenshot(path=str(artifacts / "money-commissions-pending.png"), full_page=True)
    page.locator(f"[data-order='{shop.partly_refunded.number}'] [data-order-link]").click()
    page.wait_for_url(re.compile(rf".*/distributor/orders/{shop.partly_refunded.number}"))
    expect(page.locator("[data-paid]")).to_have_text("¥100.00")
    expect(page.locator("[data-refunded]")).to_have_text("¥50.00")
    expect(page.locator("[data-my-total]")).to_contain_text("¥5.00")
    expect(page.locator("[data-earning='level_2']")).to_contain_text("上**")
    body = page.locator("body").inner_text()
    assert "13800000000" not in body and "科技园" not in body
    _fits_375(page)
    page.screenshot(path=str(artifacts / "money-order.png"), full_page=True)
