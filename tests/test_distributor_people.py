"""我的客户 and 我的团队: names people can tell apart, binding states in words, what each
customer bought through me, what each member sells and brings me; the pages and the JSON
API; a page costs the same number of queries for 3 customers as for 30.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app.accounts.names import display_name
from app.core.time import utcnow
from app.distribution.customers import binding_state, customer_counts, customers_page
from app.distribution.members import members_page, month_start
from app.distribution.models import Binding
from app.extensions import db
from app.ledger.balances import mask_name
from app.orders.models import Order
from tests.support.commissions import (
    configure,
    customer_of,
    distributor,
    pay,
    place,
    refund,
)
from tests.support.distribution import signed_in
from tests.support.queries import counting_statements

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def html(response) -> str:
    return response.get_data(as_text=True)


def paid_at(order: Order, moment: datetime) -> None:
    """Date an order's payment (orders in tests are all paid within the same second)."""
    db.session.execute(update(Order).where(Order.id == order.id).values(paid_at=moment))
    db.session.commit()


# --- names --------------------------------------------------------------------------------


def test_a_customer_without_a_nickname_is_told_apart_by_their_id_never_the_openid(make):
    assert display_name("小明", 7) == "小明"
    assert display_name("  ", 7) == "微信用户0007"
    assert display_name(None, 123456) == "微信用户3456"
    assert display_name("", None) == "微信用户"
    fans = [make.user(nickname="") for _ in range(3)]
    names = {fan.display_name for fan in fans}
    assert len(names) == 3
    for fan in fans:
        assert fan.display_name == f"微信用户{str(fan.id).zfill(4)[-4:]}"
        assert fan.openid[-4:] not in fan.display_name
    # The ledger's masked buyer names: the first character, or the same distinct name.
    assert mask_name("张三", 5) == "张**" and mask_name("", 5) == "微信用户0005"


# --- binding states -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires", "protected", "code", "label", "days"),
    [
        (None, NOW + timedelta(days=12), "protected", "绑定有效，保护期剩 12 天", 12),
        (None, NOW + timedelta(hours=3), "protected", "绑定有效，保护期剩 1 天", 1),
        (None, None, "permanent", "永久绑定", None),
        (None, NOW - timedelta(days=1), "permanent", "永久绑定", None),
        (NOW + timedelta(days=5), None, "expiring", "绑定有效，剩 5 天", 5),
        # Protection cannot outlast the binding: it ends when the binding does.
        (
            NOW + timedelta(days=4),
            NOW + timedelta(days=15),
            "protected",
            "绑定有效，保护期剩 4 天",
            4,
        ),
        (NOW - timedelta(seconds=1), NOW + timedelta(days=3), "lapsed", "已失效", None),
    ],
)
def test_binding_state_in_plain_words(expires, protected, code, label, days):
    state = binding_state(expires, protected, NOW)
    assert (state.code, state.label, state.days_left) == (code, label, days)
    # SQLite hands times back without a zone: the same answer.
    naive = binding_state(
        expires.replace(tzinfo=None) if expires else None,
        protected.replace(tzinfo=None) if protected else None,
        NOW,
    )
    assert naive == state


# --- customers ----------------------------------------------------------------------------


def shop_with_customers(make):
    """A seller with four customers: two without a nickname who bought, one who bought the
    most, one who never bought; plus another seller's customer and an unpaid order."""
    configure(levels=2, protection_days=15, protection_extend_days=0)
    seller, other = distributor(make, nickname="卖家"), distributor(make, nickname="别家")
    quiet = customer_of(make, seller, "")  # bought twice, one unit refunded
    first = pay(place(make, quiet, price_fen=1000))
    second = pay(place(make, quiet, price_fen=3000, quantity=2))
    refund(second, 1)
    big = customer_of(make, seller, "大客户")
    biggest = pay(place(make, big, price_fen=9000))
    anon = customer_of(make, seller, "")  # bought once, long ago
    old = pay(place(make, anon, price_fen=500))
    idle = customer_of(make, seller, "只逛不买")
    place(make, idle, price_fen=8000)  # never paid: not an order of theirs yet
    stranger = customer_of(make, other, "别家的客户")
    pay(place(make, stranger, price_fen=7000))
    paid_at(first, NOW - timedelta(days=3))
    paid_at(second, NOW - timedelta(days=2))
    paid_at(biggest, NOW - timedelta(days=5))
    paid_at(old, NOW - timedelta(days=40))
    return seller, quiet, big, anon, idle


def test_each_customer_with_orders_spend_and_last_order_through_me(app, make):
    seller, quiet, big, anon, idle = shop_with_customers(make)
    rows = {r.user_id: r for r in customers_page(seller.id)}
    assert set(rows) == {quiet.id, big.id, anon.id, idle.id}
    assert (rows[quiet.id].orders_count, rows[quiet.id].spend_fen) == (2, 1000 + 6000 - 3000)
    assert (rows[big.id].orders_count, rows[big.id].spend_fen) == (1, 9000)
    assert (rows[idle.id].orders_count, rows[idle.id].spend_fen) == (0, 0)
    assert rows[idle.id].last_order_at is None
    last = rows[quiet.id].last_order_at
    assert last.replace(tzinfo=UTC) == NOW - timedelta(days=2)
    # Distinguishable names: the two customers without a nickname differ.
    assert rows[quiet.id].name != rows[anon.id].name
    assert rows[quiet.id].name.startswith("微信用户") and rows[big.id].name == "大客户"
    assert rows[big.id].state.code == "protected"
    assert rows[big.id].state.label.startswith("绑定有效，保护期剩 ")


def test_sorted_by_binding_last_order_or_spend(app, make):
    seller, quiet, big, anon, idle = shop_with_customers(make)

    def order(sort: str) -> list[int]:
        return [r.user_id for r in customers_page(seller.id, sort=sort)]

    assert order("bound") == [idle.id, anon.id, big.id, quiet.id]  # newest binding first
    assert order("recent") == [quiet.id, big.id, anon.id, idle.id]  # never ordered: last
    assert order("spend") == [big.id, quiet.id, anon.id, idle.id]
    # Pages of a sorted list follow on without repeats.
    pages = [customers_page(seller.id, sort="spend", page=p, per_page=3) for p in (1, 2)]
    assert [r.user_id for r in pages[0] + pages[1]] == order("spend")
    with pytest.raises(ValueError):
        customers_page(seller.id, sort="name")


def test_lapsed_customers_are_listed_apart(app, make):
    seller, _quiet, _big, anon, _idle = shop_with_customers(make)
    db.session.execute(
        update(Binding).where(Binding.user_id == anon.id).values(expires_at=utcnow())
    )
    db.session.commit()
    assert customer_counts(seller.id) == {"active": 3, "lapsed": 1}
    (gone,) = customers_page(seller.id, status="lapsed")
    assert gone.user_id == anon.id and gone.state.label == "已失效"
    assert gone.spend_fen == 500  # what they bought while bound stays theirs
    assert anon.id not in [r.user_id for r in customers_page(seller.id)]


def test_customers_page(app, make, login_as):
    seller, quiet, _big, anon, _idle = shop_with_customers(make)
    client = signed_in(app, login_as, seller.user)
    page = html(client.get("/distributor/customers?sort=spend"))
    assert page.index("大客户") < page.index(quiet.display_name) < page.index(anon.display_name)
    assert "成交 2 单" in page and "¥40.00" in page and "¥90.00" in page
    assert "还没有经你下单" in page and "绑定有效，保护期剩" in page
    assert "永久有效" not in page and "保护期至" not in page
    assert 'class="on" aria-current="true" data-sort="spend"' in page
    assert "别家的客户" not in page
    # An unknown sort or status is the default list, never an error.
    for query in ("?sort=%00", "?sort=name&status=x", "?page=abc"):
        assert client.get(f"/distributor/customers{query}").status_code == 200
    lapsed = html(client.get("/distributor/customers?status=lapsed"))
    assert "没有已失效的客户" in lapsed


def test_a_customers_page_costs_the_same_for_three_or_thirty(app, make, login_as):
    configure(levels=1)
    seller = distributor(make)
    client = signed_in(app, login_as, seller.user)

    def statements_per_sort() -> dict[str, int]:
        counts = {}
        for sort in ("bound", "spend", "recent"):
            with counting_statements() as statements:
                assert client.get(f"/distributor/customers?sort={sort}").status_code == 200
            counts[sort] = len(statements)
        return counts

    for i in range(3):
        pay(place(make, customer_of(make, seller, f"客{i}"), price_fen=1000))
    few = statements_per_sort()
    for i in range(27):
        pay(place(make, customer_of(make, seller, f"新{i}"), price_fen=1000 + i))
    assert statements_per_sort() == few


# --- team ---------------------------------------------------------------------------------


def team_world(make):
    """Me → m1 (level 1) → m2 (level 2), three levels at 10% / 5% / 2%."""
    configure(levels=3, level1_bp=1000, level2_bp=500, level3_bp=200)
    me = distributor(make, nickname="我")
    m1 = distributor(make, me, nickname="一级")
    m2 = distributor(make, m1, nickname="")
    return me, m1, m2


def test_members_with_their_sales_and_the_commission_they_brought_me(app, make):
    me, m1, m2 = team_world(make)
    now = utcnow()
    this_month = pay(place(make, customer_of(make, m1), price_fen=10000))
    last_month = pay(place(make, customer_of(make, m1), price_fen=5000))
    paid_at(last_month, month_start(now) - timedelta(hours=1))
    partly = pay(place(make, customer_of(make, m1), price_fen=2000, quantity=2))
    refund(partly, 1)  # my level-2 entry of 200 gets a -100 reversal
    gone = pay(place(make, customer_of(make, m1), price_fen=3000))
    refund(gone, 1)  # fully refunded before settlement: my entry lapses, counts nothing
    pay(place(make, customer_of(make, m2), price_fen=20000))
    pay(place(make, customer_of(make, me), price_fen=40000))  # my own sale: nobody's doing
    assert this_month.status == "paid"

    (first,) = members_page(me.id, 1, now=now)
    assert (first.name, first.level) == ("一级", 1)
    assert first.sales_fen == 10000 + 5000 + 2000
    assert first.month_sales_fen == 10000 + 2000
    assert first.brought_fen == 500 + 250 + (200 - 100)  # my level-2 commission
    (second,) = members_page(me.id, 2, now=now)
    assert second.name == display_name("", m2.user_id) and second.level == 2
    assert (second.sales_fen, second.month_sales_fen) == (20000, 20000)
    assert second.brought_fen == 400  # my level-3 commission
    # m1 sees m2 with m1's own level-2 commission from m2's sale.
    (below,) = members_page(m1.id, 1, now=now)
    assert below.brought_fen == 1000
    with pytest.raises(ValueError):
        members_page(me.id, 3)


def test_team_page_and_invite(app, make, login_as):
    me, m1, m2 = team_world(make)
    pay(place(make, customer_of(make, m1), price_fen=10000))
    client = signed_in(app, login_as, me.user)
    page = html(client.get("/distributor/team"))
    assert "一级" in page and "本月销售" in page and "为我带来佣金" in page
    assert "¥100.00" in page and "¥5.00" in page and "加入于" in page
    invite = f"{app.config['PUBLIC_BASE_URL']}/distributor?ref={me.code}"
    assert f'data-share-link="{invite}"' in page and "邀请好友加入" in page
    share = re.search(r'<script type="application/json" id="share-data">(.*?)</script>', page)
    assert json.loads(share[1])["path"] == "/distributor"
    level2 = html(client.get("/distributor/team?level=2"))
    assert display_name("", m2.user_id) in level2
    empty = html(signed_in(app, login_as, m2.user).get("/distributor/team"))
    assert "还没有成员" in empty and "邀请好友加入" in empty


# --- the JSON API -------------------------------------------------------------------------


def test_customers_api_fields_and_sort(app, make, login_as):
    seller, quiet, big, _anon, _idle = shop_with_customers(make)
    client = signed_in(app, login_as, seller.user)
    body = client.get("/api/v1/distributor/customers?sort=spend&per_page=2").get_json()
    assert (body["total"], body["lapsed_total"], body["sort"]) == (4, 0, "spend")
    assert [c["customer_id"] for c in body["items"]] == [big.id, quiet.id]
    assert body["meta"]["has_next"] is True
    top = body["items"][0]
    assert (top["name"], top["orders_count"], top["spend_fen"]) == ("大客户", 1, 9000)
    assert top["binding_state"]["code"] == "protected"
    assert (
        top["binding_state"]["label"]
        == f"绑定有效，保护期剩 {top['binding_state']['days_left']} 天"
    )
    assert top["last_order_at"].startswith("2026-12-02")
    assert "openid" not in json.dumps(body) and quiet.openid not in json.dumps(body)
    for bad in ("sort=name", "status=gone", "per_page=0"):
        response = client.get(f"/api/v1/distributor/customers?{bad}")
        assert response.status_code == 422, bad
        assert response.get_json()["error"]["code"] == "validation_error"


def test_team_api_fields(app, make, login_as):
    me, _m1, m2 = team_world(make)
    pay(place(make, customer_of(make, m2), price_fen=20000))
    body = signed_in(app, login_as, me.user).get("/api/v1/distributor/team?level=2").get_json()
    assert body["invite_url"] == f"{app.config['PUBLIC_BASE_URL']}/distributor?ref={me.code}"
    (member,) = body["items"]
    assert member["distributor_id"] == m2.id and member["name"].startswith("微信用户")
    assert (member["sales_fen"], member["month_sales_fen"], member["brought_fen"]) == (
        20000,
        20000,
        400,
    )


def test_openapi_documents_the_new_fields(client):
    document = client.get("/api/v1/openapi.json").get_json()
    customers = document["paths"]["/api/v1/distributor/customers"]["get"]
    params = {p["name"] for p in customers["parameters"]}
    assert {"sort", "status", "page", "per_page"} <= params
    schemas = json.dumps(document["components"]["schemas"], ensure_ascii=False)
    for field in ("spend_fen", "orders_count", "last_order_at", "binding_state", "brought_fen"):
        assert field in schemas
    assert "month_sales_fen" in schemas and "invite_url" in schemas


# --- words --------------------------------------------------------------------------------


def test_one_word_for_the_role_everywhere_a_distributor_reads():
    """分销员 in pages, WeChat replies, template messages and transfer notes: never 推广员."""
    root = Path(__file__).resolve().parent.parent
    sources = [*(root / "app").rglob("*.py"), *(root / "templates").rglob("*.html")]
    sources += [*(root / "static").rglob("*.js"), *(root / "demo").rglob("*.py")]
    found = [str(p.relative_to(root)) for p in sources if "推广员" in p.read_text("utf-8")]
    assert found == []
