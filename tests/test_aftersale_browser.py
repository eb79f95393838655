"""After-sale and logistics in a real browser: the customer at 375 px applies for 退货退款
with a photo, staff at 1366 px see the photo and the thread and agree, the customer
enters the return parcel and sees the timeline; 查看物流 on a shipped order.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.orders.models import Refund
from tests.support.aftersale import paid_order, photo
from tests.support.pay import fresh


def _as_customer(app, login_as, page, live_server, user) -> None:
    client = app.test_client()
    login_as(client, user)
    cookie = client.get_cookie("session")
    page.context.add_cookies([{"name": "session", "value": cookie.value, "url": live_server.url}])


@pytest.mark.browser
def test_return_request_photo_staff_page_parcel_and_timeline(
    app, make, page, desk, live_server, login_as, artifacts, tmp_path
):
    order = paid_order(make, price_fen=2990, quantity=2, shipped=True)
    order_id, line_id, user = order.id, order.lines[0].id, order.user
    make.staff("aftersale-desk", password="desk-password")
    picture = tmp_path / "broken.jpg"
    picture.write_bytes(photo("orange", size=400, fmt="JPEG").getvalue())
    base = live_server.url

    _as_customer(app, login_as, page, live_server, user)
    page.goto(f"{base}/orders/{order_id}")
    page.get_by_role("link", name="申请售后").click()
    page.wait_for_url(f"{base}/orders/{order_id}/lines/{line_id}/aftersale")
    expect(page.locator("[data-max-text]")).to_have_text("¥59.80")
    page.locator("label.as-kind", has_text="退货退款").click()
    page.select_option("[data-quantity]", "1")
    expect(page.locator("[data-max-text]")).to_have_text("¥29.90")  # follows the quantity
    expect(page.locator("[data-amount]")).to_have_value("29.90")
    page.fill("[data-amount]", "25.00")
    page.locator("label.reason", has_text="商品破损").click()
    page.fill("textarea[name=description]", "收到时杯口有裂纹")
    page.set_input_files("[data-photos]", str(picture))
    page.screenshot(path=str(artifacts / "aftersale-apply.png"), full_page=True)
    page.locator("[data-submit]").click()
    page.wait_for_url(f"{base}/aftersale/*")
    expect(page.locator("[data-refund-status]")).to_have_text("退款申请中")
    expect(page.locator("[data-amount]")).to_have_text("¥25.00")
    refund_id = db.session.scalar(select(Refund.id))

    # Staff: the photo, the words and the thread; agree to the return.
    desk.goto(f"{base}/admin/refunds/{refund_id}")
    desk.fill("#username", "aftersale-desk")
    desk.fill("#password", "desk-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/refunds/{refund_id}")
    expect(desk.locator("[data-photos] img")).to_have_count(1)
    expect(desk.locator("[data-thread] li")).to_have_count(1)
    assert desk.evaluate("document.querySelector('[data-photos] img').naturalWidth") == 400
    desk.screenshot(path=str(artifacts / "aftersale-admin-requested.png"), full_page=True)
    desk.get_by_role("button", name="同意退货").click()
    expect(desk.locator("[data-refund-status]")).to_have_text("待寄回商品")

    # Customer: the parcel, then the timeline.
    page.reload()
    expect(page.locator("[data-refund-status]")).to_have_text("待寄回商品")
    page.select_option("select[name=carrier]", "中通快递")
    page.fill("input[name=tracking_number]", "zt 7700 1234 5678")
    page.get_by_role("button", name="提交退货物流").click()
    expect(page.locator("[data-refund-status]")).to_have_text("商品寄回中")
    expect(page.locator("[data-timeline] li")).to_have_count(3)
    expect(page.locator("[data-timeline] li").first).to_contain_text("中通快递 ZT770012345678")
    page.screenshot(path=str(artifacts / "aftersale-timeline.png"), full_page=True)
    assert fresh(Refund, refund_id).status == "returning"

    desk.reload()
    expect(desk.locator("[data-return-parcel]")).to_contain_text("ZT770012345678")
    expect(desk.get_by_role("button", name="确认收货并退款")).to_be_visible()
    desk.screenshot(path=str(artifacts / "aftersale-admin-returning.png"), full_page=True)

    page.goto(f"{base}/orders")
    expect(page.locator(f'[data-order="{order_id}"] [data-aftersale-badge]')).to_have_text("售后中")
    page.screenshot(path=str(artifacts / "aftersale-order-list.png"), full_page=True)


@pytest.mark.browser
def test_logistics_page_with_copy(app, make, page, live_server, login_as, artifacts):
    order = paid_order(make, shipped=True)
    order_id, number = order.id, order.tracking_number
    _as_customer(app, login_as, page, live_server, order.user)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{live_server.url}/orders/{order_id}")
    page.get_by_role("link", name="查看物流").click()
    page.wait_for_url(f"{live_server.url}/orders/{order_id}/logistics")
    expect(page.locator("[data-carrier]")).to_have_text("顺丰速运")
    expect(page.locator("[data-number]")).to_have_text(number)
    expect(page.locator("[data-tracking] li").first).to_be_visible()
    page.get_by_role("button", name="复制").click()
    expect(page.get_by_role("button", name="已复制")).to_be_visible()
    page.screenshot(path=str(artifacts / "logistics.png"), full_page=True)
