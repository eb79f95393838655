"""Issue 17, the merchant admin: pickers instead of ids (the staff people search), people
named on the simulator, the order page's attribution and earnings, the readable audit log,
the message log's recipients, the customers pages and the reports overview."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.core.audit import record
from app.distribution.binding import bind
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.wechat.models import OutboundMessage
from tests.support.admin import fresh_client, post, text
from tests.support.commissions import chain, configure, customer_of, pay, place, refund
from tests.support.factories import address


def _staff_client(app, login_as, make, role="staff"):
    client = fresh_client(app)
    staff = make.staff(role=role)
    login_as(client, staff)
    return client, staff


# --- the people search ---------------------------------------------------------------------


def test_people_search_needs_staff(app, login_as, make):
    client = fresh_client(app)
    anonymous = client.get("/api/v1/staff/people?q=a")
    assert anonymous.status_code == 401
    assert anonymous.get_json()["error"]["code"] == "unauthorized"
    login_as(client, make.user(nickname="顾客甲"))
    refused = client.get("/api/v1/staff/people?q=a")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"


@pytest.mark.postgresql  # search SQL
def test_people_search_by_nickname_phone_code_and_kind(app, login_as, make):
    configure()
    seller, _parent = chain(make, 2)
    seller.user.nickname = "演示·小美"
    db.session.commit()
    buyer = customer_of(make, seller, nickname="王小二")
    address(buyer, phone="13912345678")
    client, _staff = _staff_client(app, login_as, make)

    by_name = client.get("/api/v1/staff/people?q=小美").get_json()["items"]
    assert [p["user_id"] for p in by_name] == [seller.user_id]
    assert by_name[0]["label"] == "演示·小美（分销员）" and by_name[0]["id"] == seller.user_id

    by_phone = client.get("/api/v1/staff/people?q=12345678").get_json()["items"]
    assert [p["user_id"] for p in by_phone] == [buyer.id]
    assert by_phone[0]["phone"] == "13912345678" and by_phone[0]["label"] == "王小二（顾客）"

    by_code = client.get(f"/api/v1/staff/people?q={seller.code.lower()}&kind=distributor")
    items = by_code.get_json()["items"]
    assert [p["id"] for p in items] == [seller.id]  # the id of the kind asked for

    # A customer is no distributor: the distributor picker does not offer them.
    assert client.get("/api/v1/staff/people?q=王小二&kind=distributor").get_json()["items"] == []
    # LIKE wildcards are text, not patterns.
    assert client.get("/api/v1/staff/people?q=%25").get_json()["items"] == []
    assert client.get("/api/v1/staff/people?q=").get_json()["items"] == []
    too_long = client.get("/api/v1/staff/people?q=" + "x" * 40)
    assert too_long.status_code == 422
    assert client.get("/api/v1/staff/people?q=a&kind=boss").status_code == 422


def test_forms_carry_pickers_and_take_the_picked_id(app, login_as, make):
    configure()
    (seller,) = chain(make, 1)
    buyer = make.user(nickname="被绑定的客户")
    client, _staff = _staff_client(app, login_as, make)
    for path in (
        "/admin/distribution/simulator",
        "/admin/distribution/bindings",
        f"/admin/distributors/{seller.id}",
        "/admin/cloud/merchants",
        "/admin/agents",
    ):
        html = client.get(path).get_data(as_text=True)
        assert "data-picker" in html and "/api/v1/staff/people" in html, path
        assert "admin-picker.js" in html
    agents = client.get("/admin/agents").get_data(as_text=True)
    assert "data-region-picker" in agents
    # The manual binding form posts the ids the pickers chose.
    done = post(
        client,
        "/admin/distribution/bindings",
        {"user_id": str(buyer.id), "distributor": str(seller.id)},
        token_from="/admin/distribution/bindings",
    )
    assert done.status_code == 302
    page = text(client.get(f"/admin/customers/{buyer.id}"))
    assert "被绑定的客户" in page and "分销员" in page


def test_simulator_names_people(app, login_as, make):
    configure(levels=2)
    seller, parent = chain(make, 2)
    seller.user.nickname = "演示·小美"
    parent.user.nickname = "演示·大刘"
    db.session.commit()
    buyer = customer_of(make, seller, nickname="买家老王")
    sku = make.product("模拟商品", price_fen=10000).skus[0]
    client, _staff = _staff_client(app, login_as, make)
    page = client.get(
        f"/admin/distribution/simulator?sku_id={sku.id}&who=buyer&buyer_id={buyer.id}"
    ).get_data(as_text=True)
    assert "演示·小美（分销员）" in page and "演示·大刘（分销员）" in page
    assert "买家老王（顾客）" in page  # the picker shows whom it picked
    by_chain = client.get(
        f"/admin/distribution/simulator?sku_id={sku.id}&who=chain"
        f"&chain1={parent.id}&chain2={seller.id}"
    )
    html = by_chain.get_data(as_text=True)
    assert by_chain.status_code == 200
    rows = re.findall(r"<td>(一|二)级</td>\s*<td>([^<]+)</td>", html)
    assert rows == [("一", "演示·大刘（分销员）"), ("二", "演示·小美（分销员）")]
    assert "代理 #" not in html and "分销员 #" not in html


# --- order detail ---------------------------------------------------------------------------


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_order_page_shows_chain_and_earnings(app, login_as, make):
    configure(levels=2)
    seller, parent = chain(make, 2)
    seller.user.nickname = "一级小美"
    parent.user.nickname = "二级大刘"
    db.session.commit()
    buyer = customer_of(make, seller)
    order = pay(place(make, buyer, price_fen=10000))
    client, _staff = _staff_client(app, login_as, make)
    html = client.get(f"/admin/orders/{order.id}").get_data(as_text=True)
    section = html[html.index('id="attribution"') :]
    assert "一级：" in section and "一级小美" in section and "二级大刘" in section
    assert "一级佣金" in section and "¥10.00" in section  # 10% of 100.00
    assert "二级佣金" in section and "¥5.00" in section
    assert "待结算" in section
    assert f"/admin/distribution/ledger?order={order.id}" in section
    # The ledger link narrows the ledger to this order.
    ledger = text(client.get(f"/admin/distribution/ledger?order={order.id}"))
    entries = db.session.scalars(select(LedgerEntry).where(LedgerEntry.order_id == order.id))
    assert len(list(entries)) == 2 and f"仅此订单 #{order.id}" in ledger
    other = pay(place(make, customer_of(make, seller, nickname="别人")))
    assert other.number not in ledger


def test_order_page_without_distributor(app, login_as, make):
    order = place(make, make.user(nickname="自然客户"))
    client, _staff = _staff_client(app, login_as, make)
    html = text(client.get(f"/admin/orders/{order.id}"))
    assert "此订单没有归属分销员" in html


# --- customers ------------------------------------------------------------------------------


@pytest.mark.postgresql  # search SQL
def test_customers_list_search_and_detail(app, login_as, make):
    configure()
    (seller,) = chain(make, 1)
    seller.user.nickname = "推广员小美"
    db.session.commit()
    buyer = customer_of(make, seller, nickname="常客老王")
    first = pay(place(make, buyer, price_fen=5000))
    pay(place(make, buyer, price_fen=3000))
    place(make, buyer, price_fen=1000)  # not paid: counted as an order, not as spend
    address(buyer, phone="13687654321", is_default=True)  # the default address's phone
    refund(first, 1)
    make.user(nickname="路人甲")
    client, _staff = _staff_client(app, login_as, make)

    listing = client.get("/admin/customers").get_data(as_text=True)
    row = listing[listing.index(f'data-customer="{buyer.id}"') :]
    row = row[: row.index("</tr>")]
    assert "常客老王" in row and "13687654321" in row and "推广员小美" in row
    assert "3（2）" in row
    # Spend is what was paid (shipping included); the refund shows apart.
    paid = first.paid_fen + 3000 + (first.paid_fen - 5000)
    assert f"¥{paid // 100}.{paid % 100:02d}" in row and "¥50.00" in row

    found = text(client.get("/admin/customers?q=87654"))
    assert "常客老王" in found and "路人甲" not in found
    by_code = text(client.get(f"/admin/customers?q={seller.code}"))
    assert "常客老王" in by_code and "路人甲" not in by_code
    nobody = client.get("/admin/customers?q=没有这个人")
    assert nobody.status_code == 200 and "没有找到" in text(nobody)
    assert client.get("/admin/customers?page=abc").status_code == 200

    detail = client.get(f"/admin/customers/{buyer.id}")
    page = text(detail)
    assert detail.status_code == 200
    assert first.number in page and "不想要了" in page and "已退款" in page
    assert "推广链接" in page and "推广员小美" in page  # the binding history
    assert client.get("/admin/customers/2147483648").status_code == 404
    assert client.get("/admin/customers/99999999").status_code == 404


def test_customers_pages_are_staff_only(app, login_as, make):
    buyer = make.user()
    client = fresh_client(app)
    assert client.get("/admin/customers").status_code == 302
    login_as(client, buyer)
    assert client.get("/admin/customers").status_code == 403
    assert client.get(f"/admin/customers/{buyer.id}").status_code == 403


def test_customer_list_pages(app, login_as, make):
    for n in range(35):
        make.user(nickname=f"分页客户{n:02d}")
    client, _staff = _staff_client(app, login_as, make)
    first = text(client.get("/admin/customers?q=分页客户"))
    second = text(client.get("/admin/customers?q=分页客户&page=2"))
    assert "分页客户34" in first and "分页客户00" not in first
    assert "分页客户00" in second and "共 35 条" in first


# --- audit log and message log --------------------------------------------------------------


def test_audit_log_reads_in_chinese(app, login_as, make):
    client, owner = _staff_client(app, login_as, make, role="owner")
    record(
        f"staff:{owner.id}",
        "distribution_settings.update",
        "distribution_settings",
        1,
        {"level1_bp": 1000, "self_purchase": False, "withdraw_min_fen": 100},
        {"level1_bp": 1250, "self_purchase": True, "withdraw_min_fen": 100},
    )
    db.session.commit()
    html = client.get("/admin/audit").get_data(as_text=True)
    assert f"{owner.username}（店主）" in html and f">staff:{owner.id}<" not in html
    assert "一级比例" in html and "10%" in html and "12.5%" in html
    assert "自购返佣" in html and "否" in html and "是" in html
    assert "最低提现金额" in html and "¥1.00" in html
    assert "分销设置" in html and "时间（北京）" in html
    filtered = client.get(f"/admin/audit?actor=staff:{owner.id}").get_data(as_text=True)
    assert f'<option value="staff:{owner.id}" selected>' in filtered
    assert "一级比例" in filtered
    none = client.get("/admin/audit?actor=staff:999999").get_data(as_text=True)
    assert "没有符合条件的记录" in none


def test_message_log_names_recipients(app, login_as, make):
    fan = make.user(nickname="收消息的人")
    db.session.add(OutboundMessage(dedupe_key="t:1", kind="order_paid", openid=fan.openid))
    db.session.add(OutboundMessage(dedupe_key="t:2", kind="order_paid", openid="o-gone"))
    db.session.commit()
    client, _staff = _staff_client(app, login_as, make)
    html = client.get("/admin/wechat/messages").get_data(as_text=True)
    assert "收消息的人（顾客）" in html and f'title="openid：{fan.openid}"' in html
    assert "未知用户" in html and 'title="openid：o-gone"' in html


# --- reports --------------------------------------------------------------------------------


def test_reports_overview_first_tables_folded(app, login_as, make):
    client, _staff = _staff_client(app, login_as, make)
    html = client.get("/admin/reports").get_data(as_text=True)
    assert "data-funnel" in html and "推广漏斗" in html
    assert html.index("report-cards") < html.index("data-funnel") < html.index("report-grid")
    assert html.count('<details class="report-details">') == html.count('class="report panel')
    assert "明细表" in html


def test_binding_by_staff_shows_operator_name(app, login_as, make):
    (seller,) = chain(make, 1)
    buyer = make.user(nickname="改绑客户")
    client, staff = _staff_client(app, login_as, make)
    bind(buyer.id, seller, "staff", actor=f"staff:{staff.id}")
    db.session.commit()
    page = text(client.get(f"/admin/customers/{buyer.id}"))
    assert f"{staff.username}（员工）" in page
