"""The agent centre (H5), the agent JSON API, the admin agent pages and the Open API:
who may see what, applying through the page and the API, staff decisions over HTTP."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.cloud import agents as svc
from app.cloud.models import RegionAgent
from app.core.models import StatusChange
from app.extensions import db
from tests.support.admin import csrf_token, fresh_client
from tests.support.cloud import (
    DONGCHENG,
    FUTIAN,
    GUANGDONG,
    NANSHAN,
    SHENZHEN,
    assigned,
    order_to,
    rates,
)
from tests.support.commissions import pay
from tests.support.openapi import bearer_caller
from tests.support.pay import fresh

CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


def html(response) -> str:
    return response.get_data(as_text=True)


def signed_in(app, login_as, user):
    client = app.test_client()
    login_as(client, user)
    return client


def page_csrf(client, path: str = "/agent/apply") -> str:
    match = CSRF_RE.search(html(client.get(path)))
    assert match, path
    return match[1]


def api_csrf(client) -> dict:
    return {"X-CSRFToken": client.get("/cart/session").get_json()["csrf_token"]}


# --- who may see what -------------------------------------------------------------------------

PAGES = ("/agent", "/agent/apply", "/agent/orders", "/agent/dividends")
API_GETS = (
    "/api/v1/agent/me",
    "/api/v1/agent/regions",
    "/api/v1/agent/orders",
    "/api/v1/agent/dividends",
)


def test_anonymous_is_sent_to_sign_in_and_the_api_answers_401(client, app_ctx):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login?next=" in response.headers["Location"], path
    for path in API_GETS:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.get_json()["error"]["code"] == "unauthorized"
    assert client.post("/api/v1/agent/apply", json={}).status_code in (400, 401)


def test_staff_get_403_in_the_agent_centre(app, make, login_as):
    client = signed_in(app, login_as, make.staff())
    assert client.get("/agent").status_code == 403


def test_an_agent_never_sees_another_agents_orders_or_dividends(app, make, login_as):
    rates()
    nanshan = assigned(make, "district", NANSHAN, "南山代理")
    futian = assigned(make, "district", FUTIAN, "福田代理")
    mine = pay(order_to(make, NANSHAN, price_fen=10000, user=make.user(nickname="赵一")))
    theirs = pay(order_to(make, FUTIAN, price_fen=20000, user=make.user(nickname="钱二")))
    client = signed_in(app, login_as, _user(nanshan))
    page = html(client.get("/agent/orders"))
    assert mine.number in page and theirs.number not in page
    assert "赵**" in page and "赵一" not in page  # the buyer is masked
    dividends = html(client.get("/agent/dividends"))
    assert mine.number in dividends and theirs.number not in dividends
    api_orders = client.get("/api/v1/agent/orders").get_json()["items"]
    assert [o["number"] for o in api_orders] == [mine.number]
    assert api_orders[0]["dividend_fen"] == 300 and api_orders[0]["buyer_name"] == "赵**"
    api_div = client.get("/api/v1/agent/dividends").get_json()["items"]
    assert [(d["order_number"], d["amount_fen"]) for d in api_div] == [(mine.number, 300)]
    assert api_div[0]["reason_not_available"] == "待确认收货"
    me = client.get("/api/v1/agent/me").get_json()
    assert (me["region_orders"], me["region_sales_fen"], me["dividends_pending_fen"]) == (
        1,
        10000,
        300,
    )
    # The other agent sees only theirs.
    other = signed_in(app, login_as, _user(futian))
    assert [o["number"] for o in other.get("/api/v1/agent/orders").get_json()["items"]] == [
        theirs.number
    ]


def _user(agent: RegionAgent):
    from app.accounts.models import User

    return db.session.get(User, agent.user_id)


def test_orders_before_the_agent_began_are_not_shown(app, make, login_as):
    rates()
    earlier = pay(order_to(make, NANSHAN))
    agent = assigned(make, "district", NANSHAN)
    later = pay(order_to(make, NANSHAN))
    client = signed_in(app, login_as, _user(agent))
    numbers = [o["number"] for o in client.get("/api/v1/agent/orders").get_json()["items"]]
    assert numbers == [later.number] and earlier.number not in numbers


def test_a_customer_without_regions_is_sent_to_apply(app, make, login_as):
    client = signed_in(app, login_as, make.user())
    response = client.get("/agent")
    assert response.status_code == 302 and response.headers["Location"].endswith("/agent/apply")
    assert client.get("/api/v1/agent/me").status_code == 404
    assert client.get("/api/v1/agent/regions").get_json() == {"items": []}


# --- applying ---------------------------------------------------------------------------------


def test_apply_through_the_page(app, make, login_as):
    user = make.user()
    client = signed_in(app, login_as, user)
    page = html(client.get("/agent/apply"))
    assert "申请区域代理" in page and "data-agent-apply" in page
    token = page_csrf(client)
    response = client.post(
        "/agent/apply", data={"csrf_token": token, "level": "city", "region_code": SHENZHEN}
    )
    assert response.status_code == 303
    centre = html(client.get("/agent?done=applied"))
    assert "广东省 深圳市" in centre and "审核中" in centre and "申请已提交" in centre
    # Taken: refused on the page, with a 409 and without the holder.
    other = signed_in(app, login_as, make.user())
    refused = other.post(
        "/agent/apply",
        data={"csrf_token": page_csrf(other), "level": "city", "region_code": SHENZHEN},
    )
    assert refused.status_code == 409 and svc.TAKEN_MESSAGE in html(refused)
    bad = other.post(
        "/agent/apply",
        data={"csrf_token": page_csrf(other), "level": "city", "region_code": NANSHAN},
    )
    assert bad.status_code == 422 and "请选择有效的城市" in html(bad)
    no_token = other.post("/agent/apply", data={"level": "city", "region_code": "440100"})
    assert no_token.status_code == 400


def test_apply_through_the_api(app, make, login_as):
    client = signed_in(app, login_as, make.user())
    headers = api_csrf(client)
    response = client.post(
        "/api/v1/agent/apply",
        json={"level": "province", "region_code": GUANGDONG},
        headers=headers,
    )
    assert response.status_code == 201, html(response)
    body = response.get_json()
    assert (body["status"], body["region_name"], body["rate_bp"]) == ("pending", "广东省", 100)
    other = signed_in(app, login_as, make.user())
    taken = other.post(
        "/api/v1/agent/apply",
        json={"level": "province", "region_code": GUANGDONG},
        headers=api_csrf(other),
    )
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "region_taken"
    for body, status in (
        ({"level": "country", "region_code": GUANGDONG}, 422),
        ({"level": "province", "region_code": "44000"}, 422),
        ({"level": "province", "region_code": 440000}, 422),
        ({"level": "district", "region_code": GUANGDONG}, 422),
    ):
        response = other.post("/api/v1/agent/apply", json=body, headers=api_csrf(other))
        assert response.status_code == status, (body, html(response))
    forged = other.post(
        "/api/v1/agent/apply",
        json={"level": "city", "region_code": SHENZHEN},
        headers={"X-CSRFToken": "forged"},
    )
    assert forged.status_code == 400


# --- admin pages ------------------------------------------------------------------------------


@pytest.fixture
def admin(app, make, login_as):
    client = fresh_client(app)
    login_as(client, make.staff("boss", role="owner"))
    return client


@pytest.mark.postgresql  # region SQL
def test_admin_region_table_with_sales(app, make, admin):
    rates()
    assigned(make, "province", GUANGDONG, "省代")
    assigned(make, "district", NANSHAN, "区代")
    svc.apply_for_region(make.user(nickname="申请人").id, "city", SHENZHEN)
    db.session.commit()
    pay(order_to(make, NANSHAN, price_fen=10000))
    pay(order_to(make, FUTIAN, price_fen=20000))
    pay(order_to(make, DONGCHENG, price_fen=40000))
    page = html(admin.get("/admin/agents"))
    rows = re.findall(r'data-region="(\d+)"', page)
    # 北京 (more sales) first, then 广东 → 深圳 → 福田 (more sales), 南山
    assert rows == ["110000", "110100", "110101", "440000", "440300", "440304", "440305"]
    assert "¥300.00" in page and "¥400.00" in page and "省代" in page and "申请人" in page
    assert "代理申请" in page


@pytest.mark.postgresql  # region SQL
def test_admin_approve_reject_assign_transfer_revoke(app, make, admin):
    token = csrf_token(admin, "/admin/agents")
    applicant = svc.apply_for_region(make.user().id, "district", NANSHAN)
    loser = svc.apply_for_region(make.user().id, "district", FUTIAN)
    db.session.commit()
    listing = html(admin.get("/admin/agents/list?status=pending"))
    assert "广东省 深圳市 南山区" in listing
    admin.post(f"/admin/agents/{applicant.id}/approve", data={"csrf_token": token})
    assert fresh(RegionAgent, applicant.id).status == "active"
    response = admin.post(f"/admin/agents/{loser.id}/reject", data={"csrf_token": token})
    assert fresh(RegionAgent, loser.id).status == "pending"  # a reason is required
    admin.post(f"/admin/agents/{loser.id}/reject", data={"csrf_token": token, "reason": "资料不全"})
    assert fresh(RegionAgent, loser.id).status == "rejected"
    # A second decision on a decided row is refused with a message, not a 500.
    response = admin.post(f"/admin/agents/{loser.id}/approve", data={"csrf_token": token})
    assert response.status_code == 302
    assert "不能进行此操作" in html(admin.get(response.headers["Location"]))
    # Assign by user id; a taken region is refused.
    newcomer = make.user(nickname="新代理")
    admin.post(
        "/admin/agents/assign",
        data={
            "csrf_token": token,
            "user": str(newcomer.id),
            "level": "city",
            "region_code": SHENZHEN,
        },
    )
    city = db.session.scalar(select(RegionAgent).where(RegionAgent.region_code == SHENZHEN))
    assert city.status == "active" and city.user_id == newcomer.id
    # Transfer the district to the newcomer, then revoke it.
    response = admin.post(
        f"/admin/agents/{applicant.id}/transfer",
        data={"csrf_token": token, "to": str(newcomer.id), "reason": "调整"},
    )
    moved = db.session.scalar(
        select(RegionAgent).where(
            RegionAgent.region_code == NANSHAN, RegionAgent.status == "active"
        )
    )
    assert moved.user_id == newcomer.id
    assert response.headers["Location"].endswith(f"/admin/agents/{moved.id}")
    detail = html(admin.get(f"/admin/agents/{applicant.id}"))
    assert "已撤销" in detail and "调整" in detail
    admin.post(f"/admin/agents/{moved.id}/revoke", data={"csrf_token": token, "reason": "违规"})
    assert fresh(RegionAgent, moved.id).status == "revoked"
    actors = set(
        db.session.scalars(select(StatusChange.actor).where(StatusChange.subject == "agent"))
    )
    assert any(a.startswith("staff:") for a in actors)


def test_admin_settings_and_product_overrides(app, make, admin):
    token = csrf_token(admin, "/admin/agents/settings")
    product = make.product("分红商品")
    admin.post(
        "/admin/agents/settings",
        data={
            "csrf_token": token,
            "agents_enabled": "on",
            "province_bp": "50",
            "city_bp": "150",
            "district_bp": "250",
        },
    )
    settings = fresh(type(svc.get_cloud_settings()), 1)
    assert (settings.province_bp, settings.city_bp, settings.district_bp) == (50, 150, 250)
    bad = admin.post(
        "/admin/agents/settings",
        data={"csrf_token": token, "province_bp": "12000", "city_bp": "1", "district_bp": "1"},
    )
    assert "0 到 10000" in html(admin.get(bad.headers["Location"]))
    assert fresh(type(settings), 1).province_bp == 50
    admin.post(
        "/admin/agents/rates",
        data={
            "csrf_token": token,
            "product_id": str(product.id),
            "level": "city",
            "rate_bp": "800",
        },
    )
    page = html(admin.get("/admin/agents/settings"))
    assert "分红商品" in page and "8%" in page
    admin.post(
        "/admin/agents/rates",
        data={"csrf_token": token, "product_id": str(product.id), "level": "city", "rate_bp": ""},
    )
    assert svc.product_rates() == []


# --- Open API ---------------------------------------------------------------------------------


@pytest.fixture
def api(client, runner, app_ctx):
    token = runner.invoke(args=["create-api-token", "erp", "--scope", "owner"]).output.strip()

    return bearer_caller(client, token)


def test_open_api_needs_a_token(client, app_ctx):
    for method, path in (
        ("get", "/agents"),
        ("post", "/agents/1/approve"),
        ("get", "/cloud/settings"),
        ("put", "/cloud/settings"),
    ):
        assert client.open(f"/api/v1/admin{path}", method=method.upper()).status_code == 401


def test_open_api_agents(app, make, api):
    user = make.user(nickname="接口代理")
    created = api(
        "post", "/agents", json={"user_id": user.id, "level": "district", "region_code": NANSHAN}
    )
    assert created.status_code == 201, html(created)
    agent_id = created.get_json()["id"]
    taken = api(
        "post",
        "/agents",
        json={"user_id": make.user().id, "level": "district", "region_code": NANSHAN},
    )
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "region_taken"
    pending = svc.apply_for_region(make.user().id, "district", FUTIAN)
    db.session.commit()
    listed = api("get", "/agents?status=pending").get_json()
    assert [a["id"] for a in listed["items"]] == [pending.id]
    assert api("post", f"/agents/{pending.id}/reject", json={"reason": ""}).status_code == 422
    assert api("post", f"/agents/{pending.id}/approve").get_json()["status"] == "active"
    again = api("post", f"/agents/{pending.id}/approve")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "invalid_transition"
    moved = api("post", f"/agents/{agent_id}/transfer", json={"to_user_id": make.user().id})
    assert moved.status_code == 200 and moved.get_json()["id"] != agent_id
    revoked = api("post", f"/agents/{moved.get_json()['id']}/revoke", json={"reason": "到期"})
    assert revoked.get_json()["status"] == "revoked"
    assert api("post", "/agents/999999/approve").status_code == 404
    history = db.session.scalars(
        select(StatusChange.actor).where(StatusChange.subject == "agent")
    ).all()
    assert all(a.startswith("api:") or a.startswith("user:") for a in history)


def test_open_api_settings_and_rates(app, make, api):
    assert api("get", "/cloud/settings").get_json()["district_bp"] == 300
    changed = api("put", "/cloud/settings", json={"district_bp": 450, "agents_enabled": False})
    assert (
        changed.get_json()["district_bp"] == 450 and changed.get_json()["agents_enabled"] is False
    )
    bad = api("put", "/cloud/settings", json={"city_bp": 10001})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_rate"
    assert api("put", "/cloud/settings", json={"city_bp": "1"}).status_code == 422
    product = make.product()
    put = api(
        "put",
        "/agents/product-rates",
        json={"product_id": product.id, "level": "city", "rate_bp": 700},
    )
    assert put.get_json()["items"] == [{"product_id": product.id, "level": "city", "rate_bp": 700}]
    gone = api(
        "put",
        "/agents/product-rates",
        json={"product_id": product.id, "level": "city", "rate_bp": None},
    )
    assert gone.get_json()["items"] == []
    missing = api(
        "put", "/agents/product-rates", json={"product_id": 999999, "level": "city", "rate_bp": 1}
    )
    assert missing.status_code == 404
