"""Orders and refunds in the admin: list, CSV, detail, ship, complete, refund review, settings.

Orders are placed and paid through the real services (and, where WeChat must answer, the
stand-in over real HTTP); the pages are driven through their real forms with CSRF tokens.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.core.models import StatusChange
from app.core.status import InvalidTransition
from app.extensions import db
from app.orders.models import Order, Refund, ShopSettings
from app.orders.refunds import request_refund
from app.orders.services import OrderError, get_settings, mark_paid
from app.orders.shipping import (
    complete_order,
    normalise_carrier,
    normalise_tracking_number,
    ship_order,
    shipping_warnings,
)
from tests.support.admin import fresh_client, post, text
from tests.support.pay import (
    fresh,
    new_order,
    pay_state,
    prepay,
    sandbox_pay,
    sandbox_settings,
    wait_until,
)

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

_tx = iter(range(1, 10**6))


@pytest.fixture
def client(app):
    """Overrides conftest's client: a fresh ``g`` per request (see FreshClient)."""
    return fresh_client(app)


@pytest.fixture
def staff_client(client, login_as, make):
    login_as(client, make.staff("clerk"))
    return client


@pytest.fixture
def owner_client(client, login_as, make):
    login_as(client, make.staff("boss", role="owner"))
    return client


def paid(make, **kwargs) -> Order:
    """An order marked paid by the real service (as a verified notice would)."""
    order, _sku = new_order(make, **kwargs)
    mark_paid(order, transaction_id=f"42000000{next(_tx):014d}", amount_fen=order.total_fen)
    db.session.commit()
    return order


def reload(order: Order) -> Order:
    return fresh(Order, order.id)


# --- the shipping service -----------------------------------------------------------------


def test_carrier_and_tracking_number_are_checked(app_ctx):
    assert normalise_carrier("SF") == "顺丰速运"
    assert normalise_carrier("zto") == "中通快递"
    assert normalise_carrier("顺丰") == "顺丰速运"
    assert normalise_carrier("极兔速递") == "极兔速递"
    assert normalise_carrier("OTHER") == "其他"
    for bad in ("", "  ", "DHL", "顺丰快递公司", None):
        with pytest.raises(OrderError) as err:
            normalise_carrier(bad)
        assert err.value.code == "invalid_carrier" and err.value.status == 422
    assert normalise_tracking_number(" sf 1234 5678 90 ") == "SF1234567890"
    for bad in ("", "12345", "1" * 41, "SF-123456", "单号123456", "=1+1234567"):
        with pytest.raises(OrderError) as err:
            normalise_tracking_number(bad)
        assert err.value.code == "invalid_tracking_number"


def test_ship_then_complete_records_history(make):
    order = paid(make)
    ship_order(order, "YTO", "yt1234567890", "staff:9")
    db.session.commit()
    order = reload(order)
    assert (order.status, order.carrier, order.tracking_number) == (
        "shipped",
        "圆通速递",
        "YT1234567890",
    )
    assert order.shipped_at is not None
    with pytest.raises(InvalidTransition):
        ship_order(order, "SF", "SF1234567890", "staff:9")  # already shipped
    complete_order(order, "staff:9")
    db.session.commit()
    order = reload(order)
    assert order.status == "completed" and order.completed_at is not None
    with pytest.raises(InvalidTransition):
        complete_order(order, "staff:9")
    changes = db.session.scalars(
        select(StatusChange)
        .where(StatusChange.subject == "order", StatusChange.subject_id == order.id)
        .order_by(StatusChange.id)
    ).all()
    assert [(c.from_status, c.to_status) for c in changes][-2:] == [
        ("paid", "shipped"),
        ("shipped", "completed"),
    ]
    assert changes[-2].actor == "staff:9" and "YT1234567890" in changes[-2].reason


def test_unpaid_order_cannot_be_shipped(make):
    order, _sku = new_order(make)
    with pytest.raises(InvalidTransition):
        ship_order(order, "SF", "SF1234567890", "staff:1")


def test_open_refunds_warn_and_a_fully_refunding_order_is_not_shipped(make):
    order = paid(make, quantity=3)
    line = order.lines[0]
    request_refund(order, line, 1, "买多了", "user:1")
    db.session.commit()
    warnings = shipping_warnings(order)
    assert len(warnings) == 1 and "1 件退款尚未完成" in warnings[0].message

    other = paid(make, quantity=2)
    request_refund(other, other.lines[0], 2, "不要了", "user:1")
    db.session.commit()
    with pytest.raises(OrderError) as err:
        ship_order(other, "SF", "SF1234567890", "staff:1")
    assert err.value.code == "nothing_to_ship" and err.value.status == 409
    db.session.rollback()
    ship_order(order, "SF", "SF1234567890", "staff:1")  # two units are still to ship
    db.session.commit()
    assert reload(order).status == "shipped"


# --- list, filters, CSV -------------------------------------------------------------------


@pytest.fixture
def shop(make):
    """Orders in several states, receivers and days."""
    alice = make.user(nickname="Alice")
    a1, _ = new_order(make, user=alice)  # pending
    a2 = paid(make, user=alice)
    bob = make.user()
    b1 = paid(make, user=bob)
    b1.receiver_name, b1.receiver_phone = "李四", "13912345678"
    b1.created_at = datetime(2025, 3, 1, 2, 0, tzinfo=UTC)  # 2025-03-01 10:00 in Beijing
    ship_order(b1, "SF", "SF0000000001", "staff:1")
    old, _ = new_order(make, user=bob)
    old.created_at = datetime(2025, 2, 28, 17, 0, tzinfo=UTC)  # 2025-03-01 01:00 in Beijing
    old.receiver_name = "李四"
    db.session.commit()
    return {"pending": a1, "paid": a2, "shipped": b1, "old": old}


def _numbers(response) -> set[str]:
    body = text(response)
    return {n for n in (o.number for o in db.session.scalars(select(Order))) if n in body}


def test_list_tabs_counts_and_filters(staff_client, shop):
    response = staff_client.get("/admin/orders")
    assert response.status_code == 200
    assert _numbers(response) == {o.number for o in shop.values()}
    body = text(response)
    assert "待发货" in body and "导出 CSV" in body

    paid_only = staff_client.get("/admin/orders?status=paid")
    assert _numbers(paid_only) == {shop["paid"].number}
    assert _numbers(staff_client.get("/admin/orders?q=李四")) == {
        shop["shipped"].number,
        shop["old"].number,
    }
    assert _numbers(staff_client.get("/admin/orders?q=1391234")) == {shop["shipped"].number}
    number = shop["pending"].number
    assert _numbers(staff_client.get(f"/admin/orders?q={number[-8:]}")) == {number}
    # Beijing calendar days: both March-1 orders, one stored on Feb 28 in UTC.
    day = staff_client.get("/admin/orders?from=2025-03-01&to=2025-03-01")
    assert _numbers(day) == {shop["shipped"].number, shop["old"].number}
    assert _numbers(staff_client.get("/admin/orders?to=2025-02-28")) == set()
    # The tab counts follow the date and keyword, not the chosen tab.
    assert 'class="tab-count">1</span>' in text(
        staff_client.get("/admin/orders?status=paid&q=李四")
    )


def test_refunding_tab_lists_orders_with_unfinished_refunds(staff_client, make):
    quiet = paid(make)
    asked = paid(make)
    request_refund(asked, asked.lines[0], 1, "不想要了", "user:1")
    db.session.commit()
    response = staff_client.get("/admin/orders?status=refunding")
    assert _numbers(response) == {asked.number}
    assert "售后中" in text(response)
    assert quiet.number in text(staff_client.get("/admin/orders?status=paid"))


def test_bad_filters_are_a_message_not_an_error(staff_client, shop):
    for query in (
        "from=2025-13-01",
        "to=yesterday",
        "status=nonsense",
        "page=abc",
        "page=99999999999",
        "q=%25_%5C",
        "from=2025-03-02&to=2025-03-01",
    ):
        response = staff_client.get(f"/admin/orders?{query}")
        assert response.status_code == 200, query
    assert "日期格式" in text(staff_client.get("/admin/orders?from=2025-13-01"))
    assert "不能晚于" in text(staff_client.get("/admin/orders?from=2025-03-02&to=2025-03-01"))


def test_pagination(staff_client, make):
    user = make.user()
    for _ in range(21):
        paid(make, user=user)  # paid: one customer may hold only a few unpaid orders
    first = staff_client.get("/admin/orders")
    assert "共 21 条" in text(first) and "下一页" in text(first)
    assert len(_numbers(first)) == 20
    assert len(_numbers(staff_client.get("/admin/orders?page=2"))) == 1


def _csv(response) -> list[list[str]]:
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())  # the BOM Excel needs for UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_csv_export_is_excel_friendly_and_injection_safe(staff_client, make, shop):
    order = shop["paid"]
    order.remark = '=HYPERLINK("http://evil.example","点我")'
    order.receiver_name = "@SUM(1,2)"
    order.address_detail = "-2+3"
    db.session.commit()
    response = staff_client.get("/admin/orders/export.csv?status=paid")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = _csv(response)
    header, data = rows[0], rows[1:]
    assert header[:3] == ["订单号", "下单时间", "状态"]
    assert len(data) == 1
    row = dict(zip(header, data[0], strict=True))
    assert row["订单号"] == "\t" + order.number  # Excel keeps a long digit string as text
    assert row["状态"] == "待发货"
    assert row["商品金额"] == "19.90" and row["运费"] == "10.00" and row["订单金额"] == "29.90"
    assert row["实付金额"] == "29.90" and row["已退款"] == "0.00"
    assert row["买家备注"].startswith("'=HYPERLINK")
    assert row["收货人"] == "'@SUM(1,2)"
    assert row["详细地址"] == "'-2+3"
    assert row["手机号"] == "\t13800000000"
    assert "×1" in row["商品"]
    for cell in data[0]:
        assert not cell.startswith(("=", "+", "-", "@")), cell

    everything = _csv(staff_client.get("/admin/orders/export.csv"))
    assert len(everything) == 1 + len(shop)
    assert len(_csv(staff_client.get("/admin/orders/export.csv?q=李四"))) == 3


# --- detail, ship, complete ----------------------------------------------------------------


def test_detail_shows_everything(staff_client, make):
    order = paid(make, quantity=2)
    order.remark = "请周末送达"
    db.session.commit()
    request_refund(order, order.lines[0], 1, "颜色不喜欢", f"user:{order.user_id}")
    db.session.commit()
    body = text(staff_client.get(f"/admin/orders/{order.id}"))
    for expected in (
        order.number,
        "张三",
        "13800000000",
        "广东省 深圳市 南山区 科技园1号",
        "请周末送达",
        "¥39.80",  # items
        "¥10.00",  # shipping
        "¥49.80",  # total and paid
        "颜色不喜欢",
        "同意退款",
        "拒绝",
        "支付成功",
        "微信支付成功",  # history reason
        "确认发货",
        "1 件退款尚未完成",
    ):
        assert expected in body, expected
    assert staff_client.get("/admin/orders/999999").status_code == 404


def test_ship_through_the_page(staff_client, make):
    order = paid(make)
    url = f"/admin/orders/{order.id}/ship"
    token_page = f"/admin/orders/{order.id}"
    bad = post(
        staff_client, url, {"carrier": "DHL", "tracking_number": "SF1234567"}, token_from=token_page
    )
    assert bad.status_code == 422 and "请选择快递公司" in text(bad)
    bad = post(
        staff_client, url, {"carrier": "SF", "tracking_number": "12-34"}, token_from=token_page
    )
    assert bad.status_code == 422 and "6-40 位字母或数字" in text(bad)
    assert reload(order).status == "paid"

    done = post(
        staff_client,
        url,
        {"carrier": "SF", "tracking_number": "SF1234567890"},
        token_from=token_page,
    )
    assert done.status_code == 302
    page = text(staff_client.get(token_page))
    assert "已发货：顺丰速运 SF1234567890" in page
    order = reload(order)
    assert (order.status, order.carrier) == ("shipped", "顺丰速运")
    history = db.session.scalars(
        select(StatusChange).where(
            StatusChange.subject_id == order.id, StatusChange.to_status == "shipped"
        )
    ).one()
    assert history.actor.startswith("staff:")
    assert "员工 clerk" in page  # the history names who did it

    again = post(
        staff_client,
        url,
        {"carrier": "ZTO", "tracking_number": "ZT1234567890"},
        token_from=token_page,
    )
    assert again.status_code == 409 and "待收货" in text(again)
    assert reload(order).carrier == "顺丰速运"

    unpaid, _sku = new_order(make)
    refused = post(
        staff_client,
        f"/admin/orders/{unpaid.id}/ship",
        {"carrier": "SF", "tracking_number": "SF1234567890"},
        token_from=token_page,
    )
    assert refused.status_code == 409 and "待付款" in text(refused)


def test_complete_through_the_page(staff_client, make):
    order = paid(make)
    early = post(
        staff_client, f"/admin/orders/{order.id}/complete", token_from=f"/admin/orders/{order.id}"
    )
    assert early.status_code == 409 and "不能进行此操作" in text(early)
    ship_order(reload(order), "EMS", "EMS123456789", "staff:1")
    db.session.commit()
    done = post(
        staff_client, f"/admin/orders/{order.id}/complete", token_from=f"/admin/orders/{order.id}"
    )
    assert done.status_code == 302
    assert reload(order).status == "completed"


def test_a_post_without_csrf_token_is_refused(staff_client, make):
    order = paid(make)
    response = staff_client.post(
        f"/admin/orders/{order.id}/ship", data={"carrier": "SF", "tracking_number": "SF1234567890"}
    )
    assert response.status_code == 400
    assert reload(order).status == "paid"


# --- refunds ------------------------------------------------------------------------------


@pytest.fixture
def stand_in(sandbox):
    saved = sandbox_settings(sandbox)
    yield sandbox
    sandbox_settings(sandbox, **saved)


def paid_at_stand_in(make, stand_in, quantity=2) -> Order:
    """An order paid at the stand-in, its notice delivered to the live server."""
    order, _sku = new_order(make, quantity=quantity)
    prepay(order)
    sandbox_pay(stand_in, order.number)
    return wait_until(lambda: (o := fresh(Order, order.id)).status == "paid" and o)


def test_approve_sends_the_refund_to_wechat_and_the_notice_completes_it(
    staff_client, make, live_server, stand_in
):
    sandbox_settings(stand_in, refund_delay=0.2)
    order = paid_at_stand_in(make, stand_in)
    refund = request_refund(order, order.lines[0], 1, "尺码不合适", f"user:{order.user_id}")
    db.session.commit()
    response = post(
        staff_client, f"/admin/refunds/{refund.id}/approve", token_from=f"/admin/orders/{order.id}"
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/orders/{order.id}")
    refund = fresh(Refund, refund.id)
    assert refund.status in ("approved", "refunded")
    assert refund.refund_id
    record = pay_state(stand_in).refunds[refund.out_refund_no]  # it reached "WeChat"
    assert record.refund == refund.amount_fen == 1990
    assert record.out_trade_no == order.number

    done = wait_until(lambda: (r := fresh(Refund, refund.id)).status == "refunded" and r)
    assert done.refunded_at is not None
    assert reload(order).refunded_fen == 1990
    page = text(staff_client.get(f"/admin/orders/{order.id}"))
    assert "已退款" in page and "退款成功" in page


def test_wechat_refusing_a_refund_is_shown_and_can_be_retried(staff_client, make, stand_in):
    order = paid(make)  # never paid at the stand-in: WeChat does not know the order
    refund = request_refund(order, order.lines[0], 1, "不想要了", f"user:{order.user_id}")
    db.session.commit()
    response = post(
        staff_client,
        f"/admin/refunds/{refund.id}/approve",
        {"back": "refunds"},
        token_from="/admin/refunds",
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/refunds")
    page = text(staff_client.get("/admin/refunds"))
    assert "微信退款失败" in page
    assert "重新退款" in page
    assert fresh(Refund, refund.id).status == "failed"


def test_reject_needs_a_reason_and_happens_once(staff_client, make):
    order = paid(make)
    refund = request_refund(order, order.lines[0], 1, "不想要了", f"user:{order.user_id}")
    db.session.commit()
    url = f"/admin/refunds/{refund.id}/reject"
    page = f"/admin/orders/{order.id}"
    missing = post(staff_client, url, {"reason": "  "}, token_from=page)
    assert missing.status_code == 302
    assert "请填写拒绝原因" in text(staff_client.get(page))
    assert fresh(Refund, refund.id).status == "requested"

    post(staff_client, url, {"reason": "商品已拆封，不支持无理由退货"}, token_from=page)
    refund = fresh(Refund, refund.id)
    assert (refund.status, refund.review_note) == ("rejected", "商品已拆封，不支持无理由退货")
    body = text(staff_client.get(page))
    assert "商品已拆封，不支持无理由退货" in body and "退款已拒绝" in body

    post(staff_client, url, {"reason": "再拒一次"}, token_from=page)
    assert "退款当前状态为“退款已拒绝”" in text(staff_client.get(page))
    approve = post(staff_client, f"/admin/refunds/{refund.id}/approve", token_from=page)
    assert approve.status_code == 302
    assert fresh(Refund, refund.id).status == "rejected"


def test_refund_list_puts_requests_first(staff_client, make):
    first = paid(make)
    old = request_refund(first, first.lines[0], 1, "早先的申请", "user:1")
    db.session.commit()
    from app.orders.refunds import reject_refund

    reject_refund(old, "staff:1", "不支持")
    db.session.commit()
    second = paid(make)
    request_refund(second, second.lines[0], 1, "新的申请", "user:1")
    db.session.commit()
    body = text(staff_client.get("/admin/refunds"))
    assert body.index("新的申请") < body.index("早先的申请")
    only = text(staff_client.get("/admin/refunds?status=requested"))
    assert "新的申请" in only and "早先的申请" not in only
    assert staff_client.get("/admin/refunds?status=bogus&page=x").status_code == 200


# --- settings and dashboard -----------------------------------------------------------------


def _settings_form(**values) -> dict:
    data = {
        "shipping_fee": "8",
        "free_shipping_over": "88.5",
        "pay_timeout_minutes": "15",
        "max_unpaid_orders": "5",
        "auto_complete_days": "7",
    }
    data.update(values)
    return data


def test_owner_saves_order_settings(owner_client, app_ctx):
    page = owner_client.get("/admin/settings/orders")
    assert page.status_code == 200 and 'value="10.00"' in text(page)
    response = post(
        owner_client,
        "/admin/settings/orders",
        _settings_form(),
        token_from="/admin/settings/orders",
    )
    assert response.status_code == 302
    db.session.expire_all()
    settings = db.session.get(ShopSettings, 1)
    assert (
        settings.shipping_fee_fen,
        settings.free_shipping_over_fen,
        settings.pay_timeout_minutes,
        settings.max_unpaid_orders,
        settings.auto_complete_days,
    ) == (800, 8850, 15, 5, 7)
    assert 'value="88.50"' in text(owner_client.get("/admin/settings/orders"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("shipping_fee", "-1", "不能为负数"),
        ("shipping_fee", "abc", "金额格式不正确"),
        ("shipping_fee", "1.234", "最多两位小数"),
        ("shipping_fee", "5000", "不能超过 ¥1000.00"),
        ("free_shipping_over", "", "金额格式不正确"),
        ("pay_timeout_minutes", "0", "5-1440"),
        ("pay_timeout_minutes", "abc", "不是有效的整数"),
        ("auto_complete_days", "61", "1-60"),
        ("max_unpaid_orders", "21", "1-20"),
        ("max_unpaid_orders", "", "请填写每人未付款订单上限"),
    ],
)
def test_order_settings_are_validated(owner_client, app_ctx, field, value, message):
    response = post(
        owner_client,
        "/admin/settings/orders",
        _settings_form(**{field: value}),
        token_from="/admin/settings/orders",
    )
    assert response.status_code == 422
    assert message in text(response)
    db.session.expire_all()
    assert get_settings().shipping_fee_fen == 1000  # nothing saved


def test_plain_staff_cannot_change_settings(staff_client, app_ctx):
    assert staff_client.get("/admin/settings/orders").status_code == 403
    response = post(staff_client, "/admin/settings/orders", _settings_form())
    assert response.status_code == 403
    assert db.session.get(ShopSettings, 1) is None or get_settings().shipping_fee_fen == 1000


def test_dashboard_counts_todays_orders(staff_client, make):
    paid(make)
    paid(make)
    new_order(make)
    yesterday, _ = new_order(make)
    yesterday.created_at = datetime.now(UTC) - timedelta(days=2)
    db.session.commit()
    body = text(staff_client.get("/admin/"))
    assert "今日订单" in body and "今日收款" in body and "待发货" in body
    assert "¥59.80" in body  # two paid orders of ¥29.90


# --- in a real browser ----------------------------------------------------------------------


@pytest.mark.browser
def test_order_detail_in_a_browser(desk, live_server, make, artifacts):
    from app.orders.services import ItemRequest, place_order

    make.staff("clerk", password="clerk-password")
    user = make.user(nickname="小林")
    shirt = make.product("纯棉圆领T恤 夏季新款", price_fen=5900, specs={"颜色": ["白色", "黑色"]})
    mug = make.product("陶瓷马克杯", price_fen=3500)
    address = make.address(
        user,
        name="王小明",
        phone="13912345678",
        province="浙江省",
        city="杭州市",
        district="西湖区",
        district_code="330106",
        detail="文三路 90 号东部软件园 3 号楼 501",
    )
    order = place_order(
        user.id,
        [ItemRequest(shirt.skus[0].id, 2), ItemRequest(mug.skus[0].id, 1)],
        address.id,
        "请下午送货，谢谢",
    )
    db.session.commit()
    mark_paid(order, transaction_id="4200000000202503010001", amount_fen=order.total_fen)
    db.session.commit()
    request_refund(order, order.lines[1], 1, "杯子有裂纹", f"user:{user.id}")
    db.session.commit()

    base = live_server.url
    desk.goto(f"{base}/admin/orders/{order.id}")
    desk.fill("#username", "clerk")
    desk.fill("#password", "clerk-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/orders/{order.id}")
    assert "杯子有裂纹" in desk.content()
    desk.screenshot(path=str(artifacts / "admin-order-detail.png"), full_page=True)

    desk.select_option("#carrier", "SF")
    desk.fill("#tracking_number", "SF1402237788901")
    desk.click("text=确认发货")
    desk.wait_for_selector("text=已发货：顺丰速运 SF1402237788901")
    desk.screenshot(path=str(artifacts / "admin-order-shipped.png"), full_page=True)
    desk.goto(f"{base}/admin/orders")
    desk.screenshot(path=str(artifacts / "admin-orders.png"), full_page=True)
    assert order.number in desk.content()
    desk.goto(f"{base}/admin/refunds")
    desk.screenshot(path=str(artifacts / "admin-refunds.png"), full_page=True)
    desk.fill("input[name=reason]", "裂纹为运输造成，已补发新杯子")
    desk.click(".reject-form button")
    desk.wait_for_selector("text=已拒绝退款申请")
    desk.goto(f"{base}/admin/")
    desk.screenshot(path=str(artifacts / "admin-dashboard-orders.png"), full_page=True)
