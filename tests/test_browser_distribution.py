"""Share link → friend buys → the distributor sees the pending commission, in a real browser.

Distributor A signs in through the stand-in, joins in the centre and takes the product
share link from it. A friend opens that link in a second browser context (another
phone), signs in as another fan, buys and pays on the stand-in's cashier. A real RQ
worker (``flask --app wsgi worker --burst``) runs the commission job the payment notice
queued, and A's centre shows the pending commission with why it is not withdrawable yet.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import expect

from app.distribution.binding import current_binding
from app.distribution.distributors import active_distributor_by_code, distributor_for_user
from app.orders.models import Order
from tests.support.browser import sign_in_on_stand_in
from tests.support.commissions import configure
from tests.support.pay import fresh, wait_for_paid_follow_up
from tests.support.servers import WECHAT_ANDROID_UA

ROOT = Path(__file__).resolve().parent.parent


def run_worker(database_url: str, redis_url: str) -> None:
    env = dict(os.environ, APP_ENV="test", DATABASE_URL=database_url, REDIS_URL=redis_url)
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.browser
def test_share_link_friend_buys_distributor_sees_pending_commission(
    app, make, browser, page, live_server, sandbox, artifacts, database_url, redis_url
):
    configure(levels=2, join_mode="open", level1_bp=1000, level2_bp=500)
    product = make.product(title="手工陶瓷茶杯", price_fen=3990, stock=5, specs={"颜色": ["青瓷"]})
    product_id = product.id
    base = live_server.url

    # A: sign in, join, take the product's share link from the centre.
    page.goto(f"{base}/my")
    sign_in_on_stand_in(page, sandbox, "张小凡")
    page.wait_for_url(f"{base}/my")
    page.get_by_role("link", name=re.compile("成为分销员")).click()
    page.wait_for_url(f"{base}/distributor")
    expect(page.locator("[data-join-state]")).to_have_attribute("data-join-state", "open")
    page.screenshot(path=str(artifacts / "distribution-join.png"), full_page=True)
    page.get_by_role("button", name="立即加入").click()
    page.wait_for_url(re.compile(r".*/distributor\?done=joined"))
    expect(page.locator(".d-note.ok")).to_have_text("恭喜，你已成为分销员")
    code = page.locator("[data-code]").inner_text()
    expect(page.locator("[data-share-url]")).to_have_text(f"{base}/?ref={code}")
    share = page.locator(".d-products a.d-ptitle", has_text="手工陶瓷茶杯").get_attribute("href")
    assert share == f"{base}/product/{product_id}?ref={code}"
    page.get_by_role("button", name="复制链接").click()
    expect(page.locator("#toast")).to_be_visible()

    # The friend, on another phone: opens the link, signs in on 加入购物车, buys, pays.
    friend_context = browser.new_context(
        user_agent=WECHAT_ANDROID_UA,  # another phone (one phone would be a risk flag)
        viewport={"width": 375, "height": 812},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    friend_context.set_default_timeout(10_000)
    friend = friend_context.new_page()
    try:
        friend.goto(share)
        friend.get_by_role("button", name="加入购物车").click()
        sign_in_on_stand_in(friend, sandbox, "李雷")
        friend.wait_for_url(re.compile(rf".*/product/{product_id}.*"))
        # The sign-in kept the tap (/cart/intent): the product is in the cart once.
        expect(friend.locator("#toast")).to_have_text("已加入购物车")

        friend.goto(f"{base}/cart")
        friend.get_by_role("link", name=re.compile("去结算")).click()
        friend.wait_for_url(f"{base}/checkout")
        friend.get_by_text("＋ 添加收货地址").click()
        friend.wait_for_url(re.compile(r".*/addresses/new\?next="))
        friend.get_by_placeholder("姓名").fill("李雷")
        friend.get_by_placeholder("11 位手机号码").fill("13912345678")
        for kind, label in (("province", "广东省"), ("city", "深圳市"), ("district", "南山区")):
            select = friend.locator(f'[data-region="{kind}"]')
            expect(select.locator("option", has_text=label)).to_have_count(1)
            select.select_option(label=label)
        friend.get_by_placeholder("街道、楼牌号等").fill("科技园南区 8 栋 1201")
        friend.get_by_role("button", name="保存").click()
        friend.wait_for_url(re.compile(r".*/checkout\?address_id=\d+"))
        friend.get_by_role("button", name="提交订单").click()
        friend.wait_for_url(re.compile(r".*/orders/\d+/pay$"))
        order_id = int(re.search(r"/orders/(\d+)/pay", friend.url)[1])
        friend.get_by_role("button", name="微信支付").click()
        friend.wait_for_url(f"{sandbox.url}/sandbox/cashier?**")
        friend.get_by_role("button", name="支付").click()
        friend.wait_for_url(re.compile(rf".*/orders/{order_id}/pay\?pay_result=ok"))
        expect(friend.get_by_role("heading", name="支付成功")).to_be_visible(timeout=20_000)
    finally:
        friend_context.close()

    with app.app_context():
        order = fresh(Order, order_id)
        assert order.status == "paid"
        seller = active_distributor_by_code(code)
        assert distributor_for_user(seller.user_id).id == seller.id
        assert current_binding(order.user_id).distributor_id == seller.id

    # The payment notice queued the commission job; a real worker runs it.
    wait_for_paid_follow_up(app, order_id)
    run_worker(database_url, redis_url)

    page.goto(f"{base}/distributor")
    expect(page.locator("[data-pending]")).to_have_text("¥3.99")  # 10% of 39.90
    expect(page.locator(".d-menu")).to_contain_text("我的客户1")
    page.screenshot(path=str(artifacts / "distribution-centre.png"), full_page=True)

    page.get_by_role("link", name="佣金明细").click()
    page.wait_for_url(f"{base}/distributor/commissions")
    entry = page.locator(f'[data-order="{order.number}"]')
    expect(entry.locator("[data-amount]")).to_have_text("+¥3.99")
    expect(entry.locator("[data-reason]")).to_have_text("待确认收货")
    expect(entry).to_contain_text("一级佣金")
    page.screenshot(path=str(artifacts / "distribution-commissions.png"), full_page=True)

    page.goto(f"{base}/distributor/customers")
    expect(page.locator("[data-customer]")).to_have_count(1)
    page.screenshot(path=str(artifacts / "distribution-customers.png"), full_page=True)

    page.goto(f"{base}/distributor/withdraw")
    page.locator("[data-amount-input]").fill("1.5")
    expect(page.locator("[data-fee-preview]")).to_contain_text("实际到账 ¥1.50")
    page.screenshot(path=str(artifacts / "distribution-withdraw.png"), full_page=True)


@pytest.mark.browser
def test_confirm_receipt_of_a_wechat_withdrawal(app, make, page, live_server, sandbox, artifacts):
    from app.accounts.models import User
    from app.distribution.distributors import create_distributor
    from app.distribution.models import Withdrawal
    from app.distribution.withdrawals import approve_withdrawal, request_withdrawal
    from app.extensions import db
    from tests.support.distribution import available_money
    from tests.support.pay import wait_until

    configure(levels=1, payout_channel="wechat", withdraw_min_fen=100, withdraw_fee_bp=100)
    base = live_server.url
    page.goto(f"{base}/my")
    sign_in_on_stand_in(page, sandbox, "韩梅梅")
    page.wait_for_url(f"{base}/my")

    db.session.rollback()
    user = db.session.scalar(db.select(User).order_by(User.id.desc()))
    seller = create_distributor(user.id, None)
    db.session.commit()
    available_money(make, seller)  # ¥50.00 settled
    w = request_withdrawal(seller, 2000)
    db.session.commit()
    approve_withdrawal(w, "staff:1")  # the stand-in's bill waits for the payee
    db.session.commit()

    page.goto(f"{base}/distributor/withdraw")
    row = page.locator(f'[data-withdrawal="{w.id}"]')
    expect(row.locator(".d-st")).to_have_text("待确认收款")
    expect(row).to_contain_text("手续费 ¥0.20 · 到账 ¥19.80")
    page.screenshot(path=str(artifacts / "distribution-withdraw-confirm.png"), full_page=True)

    row.get_by_role("link", name="确认收款").click()
    page.wait_for_url(f"{sandbox.url}/sandbox/transfer-confirm?**")
    page.get_by_role("button", name="确认收款").click()
    page.wait_for_url(re.compile(r".*/distributor/withdraw\?done=transfer_ok"))
    expect(page.locator(".d-note.ok")).to_have_text("已确认收款，到账结果稍后更新")
    wait_until(lambda: db.session.get(Withdrawal, w.id, populate_existing=True).status == "paid")
    page.reload()
    expect(row.locator(".d-st")).to_have_text("已到账")
    page.screenshot(path=str(artifacts / "distribution-withdraw-paid.png"), full_page=True)
