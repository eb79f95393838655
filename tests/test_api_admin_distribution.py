"""Merchant Open API for distribution, through HTTP with a token from the real CLI:
settings, grades, distributors, ledger, withdrawals (WeChat through the stand-in), simulate."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.core.models import StatusChange
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.distribution.models import Distributor, Withdrawal
from app.distribution.withdrawals import request_withdrawal
from app.extensions import db
from app.ledger.balances import balances
from app.ledger.models import LedgerEntry
from tests.support.api import error_of
from tests.support.commissions import chain, configure, customer_of, distributor, pay, place
from tests.support.distribution import money_for
from tests.support.openapi import bearer_caller
from tests.support.pay import fresh

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


@pytest.fixture
def token(runner, app_ctx) -> str:
    result = runner.invoke(args=["create-api-token", "erp", "--scope", "owner"])
    assert result.exit_code == 0, result.output
    return result.output.strip()


@pytest.fixture
def api(client, token):
    """Call the Open API with the token: ``api("get", "/ledger")``."""

    return bearer_caller(client, token)


ENDPOINTS = [
    ("get", "/distribution/settings"),
    ("put", "/distribution/settings"),
    ("get", "/distribution/grades"),
    ("post", "/distribution/grades"),
    ("get", "/distributors"),
    ("post", "/distributors/1/approve"),
    ("post", "/distributors/1/disable"),
    ("patch", "/distributors/1"),
    ("get", "/ledger"),
    ("get", "/withdrawals"),
    ("post", "/withdrawals/1/approve"),
    ("post", "/withdrawals/1/reject"),
    ("post", "/distribution/simulate"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_token(client, method, path):
    response = client.open(f"/api/v1/admin{path}", method=method.upper(), json={})
    error_of(response, 401, "invalid_token")
    bad = client.open(
        f"/api/v1/admin{path}",
        method=method.upper(),
        json={},
        headers={"Authorization": "Bearer sk_wrong"},
    )
    error_of(bad, 401, "invalid_token")


def test_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for method, path in ENDPOINTS:
        spec_path = "/api/v1/admin" + path.replace("/1", "/{distributor_id}", 1)
        if path.startswith("/withdrawals/1"):
            spec_path = "/api/v1/admin" + path.replace("/1", "/{withdrawal_id}", 1)
        assert method in paths[spec_path], (method, spec_path)


# --- settings -------------------------------------------------------------------------------


def test_settings_read_and_change(api, app_ctx):
    got = api("get", "/distribution/settings")
    assert got.status_code == 200
    body = got.get_json()
    assert (body["levels"], body["settlement_hold_days"], body["warnings"]) == (2, 7, [])

    changed = api(
        "put",
        "/distribution/settings",
        json={"levels": 3, "level3_bp": 100, "join_mode": "threshold", "join_threshold_fen": 9900},
    )
    assert changed.status_code == 200, changed.get_json()
    body = changed.get_json()
    assert (body["levels"], body["join_mode"], body["join_threshold_fen"]) == (3, "threshold", 9900)
    assert any("三级分销" in w for w in body["warnings"])
    db.session.rollback()
    settings = get_distribution_settings()
    assert (settings.levels, settings.level3_bp, settings.level1_bp) == (3, 100, 1000)


def test_four_levels_are_refused(api, app_ctx):
    error = error_of(
        api("put", "/distribution/settings", json={"levels": 4}), 422, "too_many_levels"
    )
    assert "传销" in error["message"]
    assert error["details"][0]["field"] == "levels"
    db.session.rollback()
    assert get_distribution_settings().levels == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"levels": "2"}, 422, "validation_error"),  # strict: a string is not an integer
        ({"level1_bp": 10001}, 422, "out_of_range"),
        ({"withdraw_fee_bp": -1}, 422, "out_of_range"),
        ({"binding_days": -3}, 422, "out_of_range"),
        ({"join_mode": "pay"}, 422, "validation_error"),
        ({"join_fee_fen": 100}, 422, "validation_error"),  # there is no fee to join
        ({"enabled": 1}, 422, "validation_error"),
    ],
)
def test_bad_settings_are_422(api, body, status, code):
    error_of(api("put", "/distribution/settings", json=body), status, code)


def test_settings_need_a_json_body(api):
    error_of(
        api(
            "put",
            "/distribution/settings",
            data="levels=2",
            content_type="application/x-www-form-urlencoded",
        ),
        415,
        "unsupported_media_type",
    )


# --- grades ---------------------------------------------------------------------------------


def test_grades_list_and_create(api, app_ctx):
    created = api(
        "post",
        "/distribution/grades",
        json={"name": "金牌", "rank": 3, "level1_bp": 1500, "upgrade_direct_count": 10},
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["level1_bp"] == 1500
    error_of(api("post", "/distribution/grades", json={"name": "金牌"}), 409, "name_taken")
    error_of(
        api("post", "/distribution/grades", json={"name": "银牌", "level2_bp": 20000}),
        422,
        "out_of_range",
    )
    error_of(api("post", "/distribution/grades", json={"name": " "}), 422, "validation_error")
    listed = api("get", "/distribution/grades").get_json()["items"]
    assert [(g["name"], g["rank"], g["distributors"]) for g in listed] == [("金牌", 3, 0)]


# --- distributors ---------------------------------------------------------------------------


def test_distributors_list_with_filters(api, app_ctx, make):
    top = distributor(make, nickname="甲")
    distributor(make, top, nickname="乙")
    pending = create_distributor(make.user(nickname="丙").id, None, status="pending")
    db.session.commit()
    money_for(top, 700)
    everyone = api("get", "/distributors").get_json()
    assert everyone["meta"]["total"] == 3
    only_pending = api("get", "/distributors?status=pending").get_json()["items"]
    assert [d["id"] for d in only_pending] == [pending.id]
    found = api("get", f"/distributors?q={top.code}").get_json()["items"]
    assert len(found) == 1
    assert (found[0]["level1_count"], found[0]["team_size"], found[0]["available_fen"]) == (
        1,
        1,
        700,
    )
    error_of(api("get", "/distributors?status=nope"), 422, "validation_error")


def test_approve_disable_and_conflicts(api, app_ctx, make, token):
    pending = create_distributor(make.user().id, None, status="pending")
    db.session.commit()
    approved = api("post", f"/distributors/{pending.id}/approve")
    assert approved.status_code == 200
    assert approved.get_json()["status"] == "active"
    error_of(api("post", f"/distributors/{pending.id}/approve"), 409, "invalid_transition")
    disabled = api("post", f"/distributors/{pending.id}/disable", json={"reason": "刷单"})
    assert disabled.get_json()["status"] == "disabled"
    # the body (with an optional reason) is a JSON object, even when empty
    error_of(api("post", f"/distributors/{pending.id}/disable"), 400, "invalid_json")
    error_of(api("post", f"/distributors/{pending.id}/disable", json={}), 409, "invalid_transition")
    error_of(api("post", "/distributors/999999/approve"), 404, "not_found")
    history = db.session.scalars(
        select(StatusChange)
        .where(StatusChange.subject == "distributor")
        .order_by(StatusChange.id)  # without it PostgreSQL may return them in any order
    ).all()
    assert [(h.to_status, h.actor.startswith("api:")) for h in history] == [
        ("active", True),
        ("disabled", True),
    ]
    assert history[1].reason == "刷单"


def test_patch_parent_refuses_a_cycle(api, app_ctx, make):
    top = distributor(make)
    below = distributor(make, top)
    other = distributor(make)
    error = error_of(
        api("patch", f"/distributors/{top.id}", json={"parent_id": below.id}), 409, "cycle"
    )
    assert "循环" in error["message"]
    error_of(api("patch", f"/distributors/{top.id}", json={"parent_id": top.id}), 409, "cycle")
    error_of(api("patch", f"/distributors/{top.id}", json={"parent_id": 999999}), 404, "not_found")
    error_of(
        api("patch", f"/distributors/{top.id}", json={"parent_id": "2"}), 422, "validation_error"
    )
    moved = api("patch", f"/distributors/{below.id}", json={"parent_id": other.id})
    assert moved.status_code == 200
    assert moved.get_json()["parent_id"] == other.id
    to_top = api("patch", f"/distributors/{below.id}", json={"parent_id": None})
    assert to_top.get_json()["parent_id"] is None
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(StatusChange)
            .where(StatusChange.subject == "dist_parent")
        )
        == 2
    )


# --- ledger ---------------------------------------------------------------------------------


def test_ledger_from_a_real_paid_order(api, app_ctx, make):
    configure()
    seller, parent = chain(make, 2)
    buyer = customer_of(make, seller)
    order = pay(place(make, buyer, price_fen=10000))
    everything = api("get", "/ledger").get_json()
    assert everything["meta"]["total"] == 2 and everything["total_fen"] == 1500
    mine = api("get", f"/ledger?distributor_id={parent.id}").get_json()["items"]
    assert [(e["kind"], e["amount_fen"], e["state"], e["order_id"]) for e in mine] == [
        ("level_2", 500, "pending", order.id)
    ]
    assert mine[0]["rule_source"] == "店铺默认"
    assert api("get", "/ledger?kind=level_1&state=settled").get_json()["meta"]["total"] == 0
    assert api("get", f"/ledger?order_id={order.id}&kind=level_1").get_json()["total_fen"] == 1000
    error_of(api("get", "/ledger?kind=bonus"), 422, "validation_error")
    error_of(
        api("get", "/ledger?created_from=2025-02-01&created_to=2025-01-01"), 422, "validation_error"
    )


# --- withdrawals ----------------------------------------------------------------------------


def test_withdrawal_approve_over_wechat_goes_to_the_stand_in(api, app_ctx, make, sandbox):
    configure(payout_channel="wechat")
    d = distributor(make)
    money_for(d, 5000)
    w = request_withdrawal(d, 5000)
    db.session.commit()
    listed = api("get", "/withdrawals?status=requested").get_json()["items"]
    assert [x["id"] for x in listed] == [w.id]
    answer = api("post", f"/withdrawals/{w.id}/approve")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "awaiting_confirm"
    assert body["transfer_bill_no"]
    error_of(
        api("post", f"/withdrawals/{w.id}/reject", json={"reason": "晚了"}),
        409,
        "invalid_transition",
    )


def test_withdrawal_reject_and_manual_mark_paid(api, app_ctx, make):
    configure(payout_channel="manual")
    d = distributor(make)
    money_for(d, 6000)
    first = request_withdrawal(d, 3000)
    db.session.commit()
    second = request_withdrawal(d, 3000)
    db.session.commit()
    error_of(api("post", f"/withdrawals/{first.id}/reject", json={}), 422, "validation_error")
    rejected = api("post", f"/withdrawals/{first.id}/reject", json={"reason": "账户信息有误"})
    assert rejected.get_json()["status"] == "rejected"
    assert rejected.get_json()["review_note"] == "账户信息有误"
    assert api("post", f"/withdrawals/{second.id}/approve").get_json()["status"] == "approved"
    paid = api("post", f"/withdrawals/{second.id}/mark-paid", json={"reason": "银行转账"})
    assert paid.get_json()["status"] == "paid"
    assert fresh(Withdrawal, second.id).paid_at is not None
    money = balances(d.id)
    assert (money.available_fen, money.withdrawn_fen) == (3000, 3000)
    error_of(api("post", "/withdrawals/999999/approve"), 404, "not_found")


# --- simulator ------------------------------------------------------------------------------


def test_simulate_matches_the_engine_and_writes_nothing(api, app_ctx, make):
    configure()
    seller, parent = chain(make, 2)
    buyer = customer_of(make, seller)
    product = make.product(price_fen=4321, stock=100)
    sku = product.skus[0]
    entries_before = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    answer = api(
        "post",
        "/distribution/simulate",
        json={"sku_id": sku.id, "quantity": 3, "buyer_id": buyer.id},
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries_before
    assert [(x["level"], x["distributor_id"], x["amount_fen"]) for x in body["levels_detail"]] == [
        (1, seller.id, 1296),
        (2, parent.id, 648),
    ]
    assert body["total_fen"] + body["merchant_keeps_fen"] == 12963

    order = pay(place(make, buyer, quantity=3, product=product))
    written = db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.order_id == order.id).order_by(LedgerEntry.kind)
    ).all()
    assert [(e.distributor_id, e.amount_fen, e.rule_source, e.note) for e in written] == [
        (x["distributor_id"], x["amount_fen"], x["rule_source"], x["explanation"])
        for x in body["levels_detail"]
    ]


def test_simulate_shows_price_differences_under_each_precedence(api, client, app_ctx, make):
    """Through L3 → L2 → L1 (retail ¥100, ¥80 / ¥70 / ¥60): the same 级差 rows as the admin
    simulator and the engine, and commissions as the precedence pays them."""
    from tests.support.cloud import differences, levels, precedence, three_level_chain

    configure(levels=2)
    levels()
    top, middle, low = three_level_chain(make)
    buyer = customer_of(make, low.distributor)
    product = make.product(price_fen=10000, stock=100)
    body = {"sku_id": product.skus[0].id, "buyer_id": buyer.id}

    def simulated() -> dict:
        answer = api("post", "/distribution/simulate", json=body)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    got = simulated()  # default precedence: 级差 only
    pd = got["price_differences"]
    assert (pd["precedence"], pd["commissions"], pd["price_differences"]) == (
        "price_difference",
        False,
        True,
    )
    assert pd["merchant_id"] == low.id
    assert [
        (r["merchant_id"], r["distributor_id"], r["level"], r["level_name"]) for r in pd["rows"]
    ] == [
        (low.id, low.distributor_id, 3, "市代"),
        (middle.id, middle.distributor_id, 2, "省代"),
        (top.id, top.distributor_id, 1, "总代"),
    ]
    assert [r["amount_fen"] for r in pd["rows"]] == [2000, 1000, 1000]
    assert pd["rows"][0]["explanation"] == "零售价 ¥100.00 − 市代价 ¥80.00 = ¥20.00 × 1 件"
    assert (pd["total_fen"], pd["headquarters_unit_fen"]) == (4000, 6000)
    assert pd["note"] in got["notes"] and "级差优先" in pd["note"]
    assert [r["amount_fen"] for r in got["levels_detail"]] == [0, 0]
    assert (got["total_fen"], got["price_difference_fen"], got["merchant_keeps_fen"]) == (
        0,
        4000,
        6000,
    )
    order = pay(place(make, buyer, product=product))  # the engine agrees
    assert differences(order.id) == {r["distributor_id"]: r["amount_fen"] for r in pd["rows"]}

    precedence("commission")
    got = simulated()
    assert got["price_differences"]["precedence"] == "commission"
    assert [r["amount_fen"] for r in got["price_differences"]["rows"]] == [0, 0, 0]
    assert [r["amount_fen"] for r in got["levels_detail"]] == [1000, 500]
    assert (got["total_fen"], got["price_difference_fen"], got["merchant_keeps_fen"]) == (
        1500,
        0,
        8500,
    )

    precedence("both")
    got = simulated()
    assert got["price_differences"]["precedence"] == "both"
    assert got["price_differences"]["total_fen"] == 4000
    assert (got["total_fen"], got["price_difference_fen"], got["merchant_keeps_fen"]) == (
        1500,
        4000,
        4500,
    )

    plain = distributor(make)  # not an ordering merchant: no 级差 block
    got = api(
        "post", "/distribution/simulate", json={"sku_id": body["sku_id"], "chain": [plain.id]}
    ).get_json()
    assert got["price_differences"] is None and got["price_difference_fen"] == 0

    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    out = next(v for k, v in schemas.items() if k.startswith("SimulationOut"))
    assert {"price_differences", "price_difference_fen"} <= set(out["properties"])


def test_simulate_previews_and_refusals(api, app_ctx, make):
    configure()
    seller = distributor(make)
    sku = make.product(price_fen=10000).skus[0]
    preview = api(
        "post",
        "/distribution/simulate",
        json={
            "sku_id": sku.id,
            "chain": [seller.id],
            "default_bp": [2500, 0, 0],
            "rule": {"mode": "fixed", "values": [300, 0, 0], "scope": "sku"},
        },
    ).get_json()
    assert preview["levels_detail"][0]["amount_fen"] == 300
    assert preview["levels_detail"][0]["rule_source"] == "SKU 规则（预览）"
    no_rule = api(
        "post",
        "/distribution/simulate",
        json={"sku_id": sku.id, "chain": [seller.id], "default_bp": [2500, 0, 0]},
    ).get_json()
    assert no_rule["levels_detail"][0]["amount_fen"] == 2500
    error_of(
        api("post", "/distribution/simulate", json={"sku_id": sku.id}), 422, "validation_error"
    )
    error_of(
        api(
            "post",
            "/distribution/simulate",
            json={"sku_id": sku.id, "chain": [seller.id], "buyer_id": seller.user_id},
        ),
        422,
        "validation_error",
    )
    error_of(
        api(
            "post",
            "/distribution/simulate",
            json={"sku_id": sku.id, "chain": [seller.id], "levels": 5},
        ),
        422,
        "too_many_levels",
    )
    error_of(
        api(
            "post",
            "/distribution/simulate",
            json={"sku_id": sku.id, "chain": [seller.id], "default_bp": [20000, 0, 0]},
        ),
        422,
        "out_of_range",
    )
    error_of(
        api("post", "/distribution/simulate", json={"sku_id": 999999, "chain": [seller.id]}),
        404,
        "not_found",
    )
    error_of(
        api("post", "/distribution/simulate", json={"sku_id": sku.id, "chain": [999999]}),
        404,
        "not_found",
    )
    assert db.session.scalar(select(func.count()).select_from(Distributor)) == 1
