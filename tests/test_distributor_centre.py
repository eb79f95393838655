"""The distributor centre's H5 pages and the ``?ref=CODE`` door.

Ref capture (signed in; anonymous then WeChat sign-in through the stand-in; unknown,
disabled and self codes ignored; cached pages too), the join modes, every centre page,
and every centre URL tried as another user: nobody ever sees someone else's customers,
team or money.
"""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import func, select

from app.core.money import format_yuan
from app.distribution.binding import current_binding
from app.distribution.distributors import create_distributor, distributor_for_user
from app.distribution.joining import paid_purchases_fen
from app.distribution.models import BindingEvent, RefTouch, Withdrawal
from app.distribution.referral import PENDING_KEY
from app.extensions import db
from app.ledger.settlement import settle_due
from app.orders.models import Order
from tests.support.commissions import configure, customer_of, finish, pay, place, refund
from tests.support.distribution import (
    available_money,
    build_world,
    make_distributor,
    signed_in,
)
from tests.support.oauth import local, pick_fan, start_login
from tests.support.pay import fresh, wait_until

CENTRE_PAGES = (
    "/distributor",
    "/distributor/commissions",
    "/distributor/customers",
    "/distributor/team",
    "/distributor/team?level=2",
    "/distributor/withdraw",
    "/distributor/rules",
)
CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


def html(response) -> str:
    return response.get_data(as_text=True)


def page_csrf(client, path: str = "/distributor") -> str:
    """The CSRF token a centre page carries (what its forms post back)."""
    match = CSRF_RE.search(html(client.get(path)))
    assert match, path
    return match[1]


def bindings_of(user_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(
        select(func.count()).select_from(BindingEvent).where(BindingEvent.user_id == user_id)
    )


# --- ?ref=CODE ----------------------------------------------------------------------------


@pytest.mark.postgresql  # binding
def test_ref_binds_a_signed_in_customer_once_per_session(app, make, login_as):
    seller = make_distributor(make, "分销员甲")
    fan = make.user(nickname="粉丝")
    client = signed_in(app, login_as, fan)

    assert client.get(f"/?ref={seller.code}").status_code == 200
    binding = current_binding(fan.id)
    assert binding.distributor_id == seller.id and binding.source == "link"
    events = bindings_of(fan.id)
    # Browsing on with the same link writes nothing more.
    assert client.get(f"/categories?ref={seller.code.lower()}").status_code == 200
    assert bindings_of(fan.id) == events == 1


def test_ref_on_a_cached_product_page(app, make, login_as, client):
    product = make.product(title="缓存商品")
    seller = make_distributor(make, "分销员乙")
    assert client.get(f"/product/{product.id}").status_code == 200  # now cached
    fan = make.user()
    fan_client = signed_in(app, login_as, fan)
    response = fan_client.get(f"/product/{product.id}?ref={seller.code}&from=singlemessage")
    assert response.status_code == 200 and "缓存商品" in html(response)
    assert current_binding(fan.id).distributor_id == seller.id


def test_anonymous_ref_is_applied_after_wechat_sign_in(app, make, client, sandbox):
    product = make.product()
    seller = make_distributor(make, "分销员丙")
    assert client.get(f"/product/{product.id}?ref={seller.code}").status_code == 200
    with client.session_transaction() as session:
        assert session[PENDING_KEY] == seller.code

    # Sign in through the stand-in; next=/my carries no ref: the session's code must bind.
    _res, authorize, _frag = start_login(client, "next=/my")
    callback = pick_fan(sandbox, authorize, "李雷")
    response = client.get(local(callback))
    assert response.status_code == 302 and response.headers["Location"] == "/my"

    with client.session_transaction() as session:
        assert PENDING_KEY not in session
        user_id = int(session["_user_id"].split(":")[1])
    binding = current_binding(user_id)
    assert binding is not None and binding.distributor_id == seller.id


def test_anonymous_ref_in_first_payment_mode_is_remembered(app, make, client, sandbox):
    configure(bind_mode="first_payment")
    seller = make_distributor(make, "分销员丁")
    client.get(f"/?ref={seller.code}")
    _res, authorize, _frag = start_login(client, "next=/")
    client.get(local(pick_fan(sandbox, authorize, "韩梅梅")))
    with client.session_transaction() as session:
        user_id = int(session["_user_id"].split(":")[1])
    db.session.rollback()
    assert current_binding(user_id) is None  # binds on the first payment
    assert db.session.get(RefTouch, user_id).distributor_id == seller.id


@pytest.mark.parametrize("code", ["NOPE2345", "x" * 40, "AB<script>", ""])
def test_unknown_or_malformed_codes_are_ignored(app, make, login_as, client, code):
    make_distributor(make, "某人")
    fan = make.user()
    fan_client = signed_in(app, login_as, fan)
    assert fan_client.get(f"/?ref={code}").status_code == 200
    assert client.get(f"/?ref={code}").status_code == 200
    with client.session_transaction() as session:
        assert PENDING_KEY not in session
    assert current_binding(fan.id) is None


def test_disabled_and_pending_codes_are_ignored(app, make, login_as, client):
    off = make_distributor(make, "停用者")
    off.status = "disabled"
    waiting = create_distributor(make.user().id, None, status="pending")
    db.session.commit()
    fan = make.user()
    fan_client = signed_in(app, login_as, fan)
    for code in (off.code, waiting.code):
        assert fan_client.get(f"/?ref={code}").status_code == 200
        client.get(f"/?ref={code}")
    assert current_binding(fan.id) is None
    with client.session_transaction() as session:
        assert PENDING_KEY not in session


def test_self_ref_and_a_parent_below_its_descendant_are_ignored(app, make, login_as):
    top = make_distributor(make, "上级")
    child = make_distributor(make, "下级", parent=top)
    top_client = signed_in(app, login_as, top.user)
    assert top_client.get(f"/?ref={top.code}").status_code == 200  # own link
    assert top_client.get(f"/?ref={child.code}").status_code == 200  # own descendant
    assert current_binding(top.user_id) is None


def test_ref_is_not_taken_from_api_or_post_requests(app, make, login_as):
    seller = make_distributor(make, "分销员戊")
    fan = make.user()
    client = signed_in(app, login_as, fan)
    client.get(f"/api/v1/products?ref={seller.code}")
    client.post(f"/logout?ref={seller.code}")
    assert current_binding(fan.id) is None


# --- joining ------------------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in_everywhere(client, app_ctx):
    for path in CENTRE_PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=/distributor"), path
    logout_form = html(client.get("/logout"))  # any page with a form gives a token
    token = re.search(r'name="csrf_token" value="([^"]+)"', logout_form)[1]
    for path, data in (("/distributor/join", {}), ("/distributor/withdraw", {"amount": "1"})):
        response = client.post(path, data={"csrf_token": token, **data})
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=/distributor"), path


def test_open_mode_joins_at_once_under_the_inviter(app, make, login_as):
    configure(join_mode="open")
    product = make.product(title="好茶")
    inviter = make_distributor(make, "邀请人")
    fan = customer_of(make, inviter, "新人")
    client = signed_in(app, login_as, fan)
    page = html(client.get("/distributor"))
    assert "立即加入" in page and "邀请人" in page
    assert "手续费" not in page and "入门费" not in page  # never a fee to join

    response = client.post("/distributor/join", data={"csrf_token": page_csrf(client)})
    assert response.status_code == 303
    joined = distributor_for_user(fan.id)
    assert joined.status == "active" and joined.parent_id == inviter.id
    centre = html(client.get(response.headers["Location"]))
    assert "恭喜，你已成为分销员" in centre and joined.code in centre
    base = app.config["PUBLIC_BASE_URL"]
    assert f"{base}/?ref={joined.code}" in centre
    assert f"{base}/product/{product.id}?ref={joined.code}" in centre


def test_join_needs_the_csrf_token(app, make, login_as):
    fan = make.user()
    client = signed_in(app, login_as, fan)
    response = client.post("/distributor/join")
    assert response.status_code == 400
    assert distributor_for_user(fan.id) is None


def test_apply_mode_shows_the_pending_state(app, make, login_as):
    configure(join_mode="apply")
    fan = make.user()
    client = signed_in(app, login_as, fan)
    assert "提交申请" in html(client.get("/distributor"))
    response = client.post("/distributor/join", data={"csrf_token": page_csrf(client)})
    assert response.status_code == 303
    assert distributor_for_user(fan.id).status == "pending"
    page = html(client.get("/distributor"))
    assert "申请审核中" in page
    # A pending applicant has no centre yet: its pages lead back to the join page.
    assert client.get("/distributor/commissions").headers["Location"] == "/distributor"
    assert "分销员申请审核中" in html(client.get("/my"))


@pytest.mark.postgresql  # binding
def test_threshold_mode_shows_progress_and_joins_when_reached(app, make, login_as):
    configure(join_mode="threshold", join_threshold_fen=10000)
    fan = make.user()
    client = signed_in(app, login_as, fan)
    pay(place(make, fan, price_fen=3000))
    page = html(client.get("/distributor"))
    # What counts is joining.paid_purchases_fen (the same figure the threshold job uses).
    assert f"累计消费 {format_yuan(paid_purchases_fen(fan.id))} / ¥100.00" in page
    refused = client.post("/distributor/join", data={"csrf_token": page_csrf(client)})
    assert refused.status_code == 409 and "累计消费满 ¥100.00" in html(refused)
    assert distributor_for_user(fan.id) is None

    pay(place(make, fan, price_fen=7000))
    db.session.rollback()
    # The commission job may already have made them one (threshold join); either way:
    client.post("/distributor/join", data={"csrf_token": page_csrf(client)})
    assert distributor_for_user(fan.id).status == "active"


def test_disabled_distribution_says_so(app, make, login_as):
    configure(enabled=False)
    client = signed_in(app, login_as, make.user())
    page = html(client.get("/distributor"))
    assert "暂未开放" in page and "立即加入" not in page
    response = client.post("/distributor/join", data={"csrf_token": page_csrf(client)})
    assert response.status_code == 403


def test_my_page_links_to_the_centre(app, make, login_as):
    seller = make_distributor(make, "老王")
    page = html(signed_in(app, login_as, seller.user).get("/my"))
    assert 'href="/distributor"' in page and "分销中心" in page


# --- the centre's pages -------------------------------------------------------------------


def test_centre_pages_show_my_figures(app, make, login_as):
    world = build_world(make)
    client = signed_in(app, login_as, world.a.user)
    home = html(client.get("/distributor"))
    assert "¥9.98" in home  # pending: 10% of 99.80
    assert f"{app.config['PUBLIC_BASE_URL']}/?ref={world.a.code}" in home

    ledger = html(client.get("/distributor/commissions"))
    assert world.a_order.number in ledger and "甲**" in ledger
    assert "一级佣金" in ledger and "+¥9.98" in ledger and "待确认收货" in ledger

    customers = html(client.get("/distributor/customers"))
    assert "甲客户" in customers and "绑定有效，保护期剩 30 天" in customers

    team = html(client.get("/distributor/team"))
    assert "甲下线" in team and "一级成员（1）" in team
    assert "二级成员（0）" in html(client.get("/distributor/team?level=2"))
    assert "佣金只来自真实付款" in html(client.get("/distributor/rules"))


def test_every_reason_not_withdrawable(app, make, login_as):
    configure(levels=1, settlement_hold_days=7)
    seller = make_distributor(make, "理由")
    waiting = pay(place(make, customer_of(make, seller, "收货"), price_fen=1000))
    held = finish(pay(place(make, customer_of(make, seller, "售后"), price_fen=2000)))
    refunding = pay(place(make, customer_of(make, seller, "退款"), price_fen=3000))
    refunded = pay(place(make, customer_of(make, seller, "已退"), price_fen=4000))
    from app.orders.refunds import request_refund

    order = fresh(Order, refunding.id)
    request_refund(order, order.lines[0], 1, "不想要了", f"user:{order.user_id}")
    db.session.commit()
    refund(refunded, 1)
    settled = finish(
        pay(place(make, customer_of(make, seller, "结算"), price_fen=5000)), days_ago=30
    )
    settle_due()
    db.session.commit()

    page = html(signed_in(app, login_as, seller.user).get("/distributor/commissions"))
    blocks = {m[1]: m[2] for m in re.finditer(r'data-order="(\w+)"(.*?)</li>', page, re.S)}
    assert "待确认收货" in blocks[waiting.number]
    assert re.search(r"售后期至 \d+月\d+日", blocks[held.number])
    assert "退款处理中" in blocks[refunding.number]
    assert "已失效: 已退款" in blocks[refunded.number]
    assert "可提现" in blocks[settled.number] and "data-reason" not in blocks[settled.number]


# --- nobody sees anybody else's -----------------------------------------------------------


def test_no_page_shows_another_distributors_data(app, make, login_as):
    world = build_world(make)
    a_money = "¥9.98"
    for who in (world.b.user, make.user(nickname="路人")):
        client = signed_in(app, login_as, who)
        for path in CENTRE_PAGES:
            response = client.get(path, follow_redirects=True)
            assert response.status_code == 200, path
            page = html(response)
            assert world.a_order.number not in page, path
            assert "甲**" not in page and a_money not in page, path
            assert world.a.code not in page, path


def test_staff_have_no_centre(app, make, login_as):
    client = signed_in(app, login_as, make.staff())
    assert client.get("/distributor").status_code == 403


# --- withdraw -----------------------------------------------------------------------------


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_withdraw_page_request_min_and_fee(app, make, login_as):
    configure(levels=1, withdraw_min_fen=1000, withdraw_fee_bp=100, withdraw_daily_limit=2)
    seller = make_distributor(make, "提现人")
    available_money(make, seller)  # ¥50.00 available
    client = signed_in(app, login_as, seller.user)
    page = html(client.get("/distributor/withdraw"))
    assert "¥50.00" in page and "单次最低提现 ¥10.00" in page
    assert "每天最多提现 2 次（今日已申请 0 次）" in page and "提现金额的 1%" in page

    token = page_csrf(client, "/distributor/withdraw")
    low = client.post("/distributor/withdraw", data={"csrf_token": token, "amount": "9.99"})
    assert low.status_code == 400 and "不能低于 ¥10.00" in html(low)
    bad = client.post("/distributor/withdraw", data={"csrf_token": token, "amount": "1.234"})
    assert bad.status_code == 400 and "两位小数" in html(bad)
    ok = client.post("/distributor/withdraw", data={"csrf_token": token, "amount": "20"})
    assert ok.status_code == 303
    page = html(client.get(ok.headers["Location"]))
    assert "提现申请已提交" in page and "待审核" in page
    assert "手续费 ¥0.20 · 到账 ¥19.80" in page and "¥30.00" in page
    w = db.session.scalar(select(Withdrawal))
    assert (w.amount_fen, w.fee_fen) == (2000, 20)


def test_awaiting_confirmation_gets_a_confirm_button(app, make, login_as, sandbox, live_server):
    from app.distribution.withdrawals import approve_withdrawal, request_withdrawal

    configure(levels=1, payout_channel="wechat", withdraw_min_fen=100)
    seller = make_distributor(make, "收款人")
    available_money(make, seller)
    w = request_withdrawal(seller, 3000)
    db.session.commit()
    approve_withdrawal(w, "staff:1")  # the WeChat bill at the stand-in waits for the payee
    db.session.commit()
    assert w.status == "awaiting_confirm"

    client = signed_in(app, login_as, seller.user)
    page = html(client.get("/distributor/withdraw"))
    assert "待确认收款" in page and "确认收款" in page
    href = re.search(r'data-confirm-transfer="[^"]*"\s+href="([^"]+)"', page)[1]
    href = href.replace("&amp;", "&")
    assert href.startswith(f"{sandbox.url}/sandbox/transfer-confirm?package=")
    assert "return_url=" in href and "mchId" in page

    # The payee confirms on the stand-in's sheet; WeChat's notice pays the withdrawal.
    from urllib.parse import parse_qs, urlsplit

    query = {k: v[0] for k, v in parse_qs(urlsplit(href).query).items()}
    answer = requests.post(
        f"{sandbox.url}/sandbox/transfer-confirm",
        data={**query, "action": "confirm"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/distributor/withdraw?transfer_result=ok")
    wait_until(lambda: fresh(Withdrawal, w.id).status == "paid")
    back = client.get("/distributor/withdraw?transfer_result=ok")
    assert back.status_code == 303
    page = html(client.get(back.headers["Location"]))
    assert "已确认收款" in page and "已到账" in page and "¥30.00" in page


def test_a_disabled_distributor_sees_its_money_but_no_share_link(app, make, login_as):
    world = build_world(make)
    world.a.status = "disabled"
    db.session.commit()
    client = signed_in(app, login_as, world.a.user)
    page = html(client.get("/distributor"))
    assert "资格已停用" in page and "¥9.98" in page
    assert f"?ref={world.a.code}" not in page
    assert world.a_order.number in html(client.get("/distributor/commissions"))
