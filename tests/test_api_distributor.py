"""The distributor side of the customer JSON API (/api/v1/distributor/...).

Own data only (every endpoint tried as another distributor and as a plain customer),
401 for nobody, 4xx JSON codes for refusals, CSRF header on POSTs, withdrawals with the
minimum, the daily limit, the balance and the fee shown before submitting.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.distribution.distributors import distributor_for_user
from app.distribution.models import Withdrawal
from app.extensions import db
from tests.support.commissions import configure, customer_of, pay, place
from tests.support.distribution import (
    available_money,
    build_world,
    make_distributor,
    signed_in,
)

GETS = (
    "/api/v1/distributor/me",
    "/api/v1/distributor/ledger",
    "/api/v1/distributor/customers",
    "/api/v1/distributor/team",
    "/api/v1/distributor/team?level=2",
    "/api/v1/distributor/withdrawals",
    "/api/v1/distributor/withdrawals/fee?amount_fen=1000",
)
POSTS = (
    ("/api/v1/distributor/apply", None),
    ("/api/v1/distributor/withdrawals", {"amount_fen": 1000}),
)


def csrf(client) -> dict:
    token = client.get("/cart/session").get_json()["csrf_token"]
    return {"X-CSRFToken": token}


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def test_nobody_signed_in_gets_401(client, app_ctx):
    for path in GETS:
        response = client.get(path)
        assert response.status_code == 401, path
        assert error_code(response) == "unauthorized"


def test_posts_need_the_csrf_header(app, make, login_as):
    seller = make_distributor(make, "有人")
    client = signed_in(app, login_as, seller.user)
    for path, body in POSTS:
        response = client.post(path, json=body) if body else client.post(path)
        assert response.status_code == 400, path
        assert error_code(response) == "csrf_failed"
        forged = client.post(path, json=body, headers={"X-CSRFToken": "forged"})
        assert forged.status_code == 400 and error_code(forged) == "csrf_failed"
    assert db.session.scalar(select(func.count()).select_from(Withdrawal)) == 0


def test_a_customer_who_is_not_a_distributor_gets_404(app, make, login_as):
    client = signed_in(app, login_as, make.user())
    for path in GETS:
        response = client.get(path)
        assert response.status_code == 404, path
        assert error_code(response) == "not_distributor"


def test_apply_in_each_join_mode(app, make, login_as):
    inviter = make_distributor(make, "邀请者")
    fan = customer_of(make, inviter, "新粉丝")
    client = signed_in(app, login_as, fan)

    configure(enabled=False)
    off = client.post("/api/v1/distributor/apply", headers=csrf(client))
    assert off.status_code == 403 and error_code(off) == "distribution_disabled"

    configure(enabled=True, join_mode="threshold", join_threshold_fen=100_000)
    low = client.post("/api/v1/distributor/apply", headers=csrf(client))
    assert low.status_code == 409 and error_code(low) == "below_threshold"
    assert "累计消费满 ¥1000.00" in low.get_json()["error"]["message"]

    configure(join_mode="apply")
    applied = client.post("/api/v1/distributor/apply", headers=csrf(client))
    assert applied.status_code == 200
    body = applied.get_json()
    assert body["status"] == "pending" and body["distributor"]["parent"]["code"] == inviter.code
    # Asking again changes nothing.
    again = client.post("/api/v1/distributor/apply", headers=csrf(client)).get_json()
    assert again["distributor"]["id"] == body["distributor"]["id"]


def test_open_mode_joins_and_me_has_the_contract_fields(app, make, login_as):
    configure(join_mode="open")
    fan = make.user()
    client = signed_in(app, login_as, fan)
    body = client.post("/api/v1/distributor/apply", headers=csrf(client)).get_json()
    assert body["status"] == "active" and body["message"] == "你已成为分销员"
    me = client.get("/api/v1/distributor/me").get_json()
    code = distributor_for_user(fan.id).code
    base = app.config["PUBLIC_BASE_URL"]
    assert me["code"] == code and me["share_url"] == f"{base}/?ref={code}"
    assert me["product_share_url_template"] == f"{base}/product/{{product_id}}?ref={code}"
    for field in ("parent", "grade", "pending_fen", "available_fen", "withdrawn_fen"):
        assert field in me
    assert (me["pending_fen"], me["available_fen"], me["withdrawn_fen"]) == (0, 0, 0)


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_my_figures_ledger_customers_and_team(app, make, login_as):
    world = build_world(make)
    client = signed_in(app, login_as, world.a.user)
    me = client.get("/api/v1/distributor/me").get_json()
    assert me["pending_fen"] == 998 and me["customers_count"] == 1 and me["level1_count"] == 1

    ledger = client.get("/api/v1/distributor/ledger").get_json()
    (entry,) = ledger["items"]
    assert entry["kind"] == "level_1" and entry["amount_fen"] == 998
    assert entry["state"] == "pending" and entry["order_number"] == world.a_order.number
    assert entry["reason_not_available"] == "待确认收货" and entry["buyer_name"] == "甲**"

    customers = client.get("/api/v1/distributor/customers").get_json()
    assert customers["total"] == 1 and customers["items"][0]["name"] == "甲客户"
    assert customers["items"][0]["expires_at"] is None  # permanent by default

    team = client.get("/api/v1/distributor/team").get_json()
    assert (team["level1_count"], team["level2_count"]) == (1, 0)
    assert [m["name"] for m in team["items"]] == ["甲下线"]
    bad = client.get("/api/v1/distributor/team?level=3")
    assert bad.status_code == 422 and error_code(bad) == "validation_error"


def test_no_endpoint_shows_another_distributors_data(app, make, login_as):
    world = build_world(make)

    def texts(user) -> dict[str, str]:
        client = signed_in(app, login_as, user)
        answers = {}
        for path in GETS:
            response = client.get(path)
            assert response.status_code == 200, path
            answers[path] = json.dumps(response.get_json(), ensure_ascii=False)
        return answers

    # Another distributor: nothing of A's at all.
    for path, text in texts(world.b.user).items():
        assert world.a_order.number not in text, path
        assert world.a.code not in text and "甲客户" not in text and "998" not in text, path
    # A's own sub-distributor sees its parent's public code and masked name, never A's
    # customers, orders or money.
    for path, text in texts(world.a_sub.user).items():
        assert world.a_order.number not in text and "998" not in text, path
        if path != "/api/v1/distributor/me":
            assert world.a.code not in text and "甲客户" not in text, path
    # A plain customer has no distributor data at all.
    client = signed_in(app, login_as, make.user(nickname="甲的朋友"))
    for path in GETS:
        assert client.get(path).status_code == 404, path


def test_b_sees_only_b(app, make, login_as):
    world = build_world(make)
    client = signed_in(app, login_as, world.b.user)
    me = client.get("/api/v1/distributor/me").get_json()
    assert (me["code"], me["pending_fen"], me["level1_count"]) == (world.b.code, 300, 0)
    ledger = client.get("/api/v1/distributor/ledger").get_json()["items"]
    assert [e["order_number"] for e in ledger] == [world.b_order.number]
    names = [c["name"] for c in client.get("/api/v1/distributor/customers").get_json()["items"]]
    assert names == ["乙客户"]
    assert client.get("/api/v1/distributor/team").get_json()["items"] == []
    assert client.get("/api/v1/distributor/withdrawals").get_json()["items"] == []


# --- withdrawals --------------------------------------------------------------------------


def test_fee_is_shown_before_submitting(app, make, login_as):
    configure(levels=1, withdraw_fee_bp=60)
    seller = make_distributor(make, "看费用")
    client = signed_in(app, login_as, seller.user)
    fee = client.get("/api/v1/distributor/withdrawals/fee?amount_fen=1999").get_json()
    assert fee == {"amount_fen": 1999, "fee_fen": 11, "net_fen": 1988, "fee_bp": 60}
    bad = client.get("/api/v1/distributor/withdrawals/fee?amount_fen=abc")
    assert bad.status_code == 422


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_withdraw_through_the_api(app, make, login_as):
    configure(levels=1, withdraw_min_fen=1000, withdraw_fee_bp=100, withdraw_daily_limit=2)
    seller = make_distributor(make, "提现者")
    available_money(make, seller)  # 5000 available
    client = signed_in(app, login_as, seller.user)
    headers = csrf(client)
    url = "/api/v1/distributor/withdrawals"

    listing = client.get(url).get_json()
    assert listing["available_fen"] == 5000 and listing["withdraw_min_fen"] == 1000
    assert listing["withdraw_fee_bp"] == 100 and listing["withdraw_daily_limit"] == 2

    low = client.post(url, json={"amount_fen": 999}, headers=headers)
    assert low.status_code == 400 and error_code(low) == "below_minimum"
    too_much = client.post(url, json={"amount_fen": 5001}, headers=headers)
    assert too_much.status_code == 400 and error_code(too_much) == "insufficient_balance"
    for body in ({"amount_fen": "2000"}, {"amount_fen": 20.5}, {}, {"amount_fen": 2000, "x": 1}):
        invalid = client.post(url, json=body, headers=headers)
        assert invalid.status_code == 422, body

    made = client.post(url, json={"amount_fen": 2000}, headers=headers)
    assert made.status_code == 201
    w = made.get_json()
    assert (w["amount_fen"], w["fee_fen"], w["net_fen"], w["status"]) == (
        2000,
        20,
        1980,
        "requested",
    )
    assert w["status_label"] == "待审核" and w["confirm"] is None

    me = client.get("/api/v1/distributor/me").get_json()
    assert me["available_fen"] == 3000
    assert client.post(url, json={"amount_fen": 1000}, headers=headers).status_code == 201
    limited = client.post(url, json={"amount_fen": 1000}, headers=headers)
    assert limited.status_code == 429 and error_code(limited) == "daily_limit"
    items = client.get(url).get_json()["items"]
    assert [i["amount_fen"] for i in items] == [1000, 2000]


def test_a_pending_applicant_cannot_withdraw(app, make, login_as):
    configure(join_mode="apply")
    fan = make.user()
    client = signed_in(app, login_as, fan)
    client.post("/api/v1/distributor/apply", headers=csrf(client))
    response = client.post(
        "/api/v1/distributor/withdrawals", json={"amount_fen": 1000}, headers=csrf(client)
    )
    assert response.status_code == 403 and error_code(response) == "not_active"


@pytest.mark.parametrize("path", [p for p in GETS if "?" not in p])
def test_documented_in_openapi(client, path):
    document = client.get("/api/v1/openapi.json").get_json()
    assert path in document["paths"]
    assert "/api/v1/distributor/withdrawals" in document["paths"]
    assert "post" in document["paths"]["/api/v1/distributor/withdrawals"]


def test_customer_bound_by_ref_shows_up_for_the_right_distributor(app, make, login_as):
    a = make_distributor(make, "甲")
    b = make_distributor(make, "乙")
    fan = make.user(nickname="丙丙")
    signed_in(app, login_as, fan).get(f"/?ref={a.code}")
    pay(place(make, fan, price_fen=1000))
    a_names = signed_in(app, login_as, a.user).get("/api/v1/distributor/customers").get_json()
    b_names = signed_in(app, login_as, b.user).get("/api/v1/distributor/customers").get_json()
    assert [c["name"] for c in a_names["items"]] == ["丙丙"] and b_names["total"] == 0
