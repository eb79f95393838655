"""Applying to be an ordering merchant in a real browser (375 px, WeChat's user agent),
and staff approving it in the admin (1366 px): a fan who came through an L2 merchant's
link opens 我的 › 订货商, applies (the L2's code filled in), staff approve it as an L3
under that L2, and the fan's centre shows the level and the parent. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.cloud import merchants as svc
from app.extensions import db
from tests.support.browser import sign_in_on_stand_in
from tests.support.cloud import levels, merchant


@pytest.mark.browser
def test_apply_then_staff_approve(app, make, browser, page, live_server, sandbox, artifacts):
    levels()
    top = merchant(make, 1, nickname="总代老王")
    middle = merchant(make, 2, top, nickname="省代老李")
    base = live_server.url

    # The fan arrives by the L2's link (binding), then opens 我的 › 订货商.
    page.goto(f"{base}/?ref={middle.distributor.code}")
    page.goto(f"{base}/my")
    sign_in_on_stand_in(page, sandbox, "李雷")
    page.wait_for_url(f"{base}/my")
    page.get_by_role("link", name=re.compile("订货商")).click()
    page.wait_for_url(f"{base}/merchant")
    page.locator("[data-merchant-apply]").click()
    page.wait_for_url(f"{base}/merchant/apply")
    expect(page.locator("input[name=parent_code]")).to_have_value(middle.distributor.code)
    page.locator("select[name=level]").select_option("3")
    page.fill("input[name=name]", "李雷")
    page.fill("input[name=phone]", "139 1234 5678")
    page.fill("textarea[name=reason]", "社区门店，老客户多")
    page.screenshot(path=str(artifacts / "merchant-apply.png"), full_page=True)
    page.get_by_role("button", name="提交申请").click()
    page.wait_for_url(re.compile(r".*/merchant\?done=applied"))
    expect(page.locator("[data-applying]")).to_contain_text("正在审核中")
    expect(page.locator("[data-new-order]")).to_have_count(0)

    db.session.rollback()
    applicant = db.session.scalar(
        db.select(svc.OrderingMerchant).where(svc.OrderingMerchant.status == "pending")
    )
    assert applicant.parent_id == middle.id

    make.staff("boss", password="boss-password", role="owner")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    desk = context.new_page()
    try:
        desk.goto(f"{base}/admin/cloud/merchant-applications")
        desk.fill("#username", "boss")
        desk.fill("#password", "boss-password")
        desk.get_by_role("button", name="登录").click()
        desk.wait_for_url(f"{base}/admin/cloud/merchant-applications")
        row = desk.locator(f"[data-application='{applicant.id}']")
        expect(row).to_contain_text("社区门店，老客户多")
        expect(row).to_contain_text("13912345678")
        # An L2 under an L2 is refused with the rule; then approved as asked.
        row.locator("select[name=level]").select_option("2")
        row.get_by_role("button", name="通过").click()
        expect(desk.locator(".alert-error")).to_contain_text("上级的等级需高于")
        row = desk.locator(f"[data-application='{applicant.id}']")
        row.locator("select[name=level]").select_option("3")
        desk.screenshot(path=str(artifacts / "admin-merchant-applications.png"), full_page=True)
        row.get_by_role("button", name="通过").click()
        expect(desk.locator(".alert-success")).to_contain_text("已审核通过")
        expect(desk.locator("[data-application]")).to_have_count(0)
    finally:
        context.close()

    page.goto(f"{base}/merchant")
    expect(page.locator("[data-level]")).to_have_text("市代（3级）")
    expect(page.locator("[data-parent]")).to_contain_text("省代（2级）")
    expect(page.locator("[data-new-order]")).to_be_visible()
    page.screenshot(path=str(artifacts / "merchant-approved.png"), full_page=True)
