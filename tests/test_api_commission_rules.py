"""Open API commission rules: a product's and a SKU's own rule, read, created, changed and
removed through HTTP with a token from the real CLI, refused like the admin form refuses
them, audited like the admin form, and used by the commission simulator."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core.models import AuditLog
from app.distribution.distributors import create_distributor
from app.distribution.models import CommissionRule
from app.extensions import db
from tests.support.openapi import bearer_caller


def make_token(runner, scope: str) -> str:
    result = runner.invoke(args=["create-api-token", f"rules-{scope}", "--scope", scope])
    assert result.exit_code == 0, result.output
    return result.output.strip()


@pytest.fixture
def api(client, runner, app_ctx):
    """``api(method, path, **kwargs)`` with a write token (the default scope)."""
    token = runner.invoke(args=["create-api-token", "erp"]).output.strip()

    return bearer_caller(client, token)


@pytest.fixture
def owner_api(client, runner, app_ctx):
    """``owner_api(method, path, **kwargs)`` with an owner token: rates above the default."""
    token = make_token(runner, "owner")

    return bearer_caller(client, token)


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


def rules_in_db(product_id: int) -> dict:
    db.session.expire_all()
    return {
        r.sku_id: (r.mode, r.level1, r.level2, r.level3)
        for r in db.session.scalars(
            select(CommissionRule).where(CommissionRule.product_id == product_id)
        )
    }


def test_product_and_sku_rules_round_trip(api, make):
    product = make.product("茶叶", price_fen=10000, specs={"规格": ["小罐", "大罐"]})
    small, big = (s.id for s in product.skus)
    base = f"/products/{product.id}/commission-rule"
    sku_base = f"/products/{product.id}/skus/{small}/commission-rule"

    # None yet: the read says so, and the product shows null rules.
    error_of(api("get", base), 404, "commission_rule_not_found")
    error_of(api("get", sku_base), 404, "commission_rule_not_found")
    shown = api("get", f"/products/{product.id}").get_json()
    assert shown["commission_rule"] is None
    assert [s["commission_rule"] for s in shown["skus"]] == [None, None]

    # Create the product's rule, then one SKU's, each read back.
    made = api("put", base, json={"mode": "percent", "level1": 1000, "level2": 500})
    assert made.status_code == 200, made.get_data(as_text=True)
    assert made.get_json() == {
        "product_id": product.id,
        "sku_id": None,
        "mode": "percent",
        "level1": 1000,
        "level2": 500,
        "level3": 0,
        "description": made.get_json()["description"],
    }
    assert "10%" in made.get_json()["description"]
    assert api("get", base).get_json()["level1"] == 1000
    sku_rule = api("put", sku_base, json={"mode": "fixed", "level1": 300, "level2": 100})
    assert sku_rule.status_code == 200, sku_rule.get_data(as_text=True)
    assert sku_rule.get_json()["sku_id"] == small
    assert rules_in_db(product.id) == {
        None: ("percent", 1000, 500, 0),
        small: ("fixed", 300, 100, 0),
    }

    # The product read (and the list) carry both rules.
    shown = api("get", f"/products/{product.id}").get_json()
    assert shown["commission_rule"]["level1"] == 1000
    by_sku = {s["id"]: s["commission_rule"] for s in shown["skus"]}
    assert by_sku[small]["mode"] == "fixed" and by_sku[big] is None
    listed = api("get", "/products").get_json()["items"][0]
    assert listed["commission_rule"]["level2"] == 500

    # Change: PUT replaces; PATCH on the product changes the product's rule too.
    assert api("put", base, json={"mode": "none"}).get_json()["mode"] == "none"
    patched = api(
        "patch",
        f"/products/{product.id}",
        json={"title": "新茶", "commission_rule": {"mode": "percent", "level1": 800}},
    )
    assert patched.status_code == 200, patched.get_data(as_text=True)
    assert patched.get_json()["title"] == "新茶"
    assert patched.get_json()["commission_rule"]["level1"] == 800
    assert rules_in_db(product.id)[None] == ("percent", 800, 0, 0)

    # Remove: the SKU's by DELETE, the product's by PATCH null; a second DELETE is 404.
    assert api("delete", sku_base).status_code == 204
    error_of(api("delete", sku_base), 404, "commission_rule_not_found")
    assert (
        api("patch", f"/products/{product.id}", json={"commission_rule": None}).status_code == 200
    )
    assert rules_in_db(product.id) == {}

    # Each change was audited as the admin form's are, by the token.
    actions = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "commission_rule.save").order_by(AuditLog.id)
    ).all()
    assert len(actions) == 6
    assert all(a.actor.startswith("api:") for a in actions)
    assert all(a.subject == "commission_rule" for a in actions)
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "product.update")), (
        "the PATCH also records the product change"
    )


def test_rules_refused_like_the_admin_form(api, make):
    product = make.product("茶叶", price_fen=10000)
    other = make.product("咖啡")
    base = f"/products/{product.id}/commission-rule"

    # The service's own checks: code and Chinese message, and nothing saved.
    error = error_of(
        api("put", base, json={"mode": "percent", "level1": 10001}), 422, "out_of_range"
    )
    assert "100%" in error["message"]
    error_of(api("put", base, json={"mode": "fixed", "level2": -1}), 422, "out_of_range")
    error_of(
        api(
            "patch",
            f"/products/{product.id}",
            json={"title": "改名", "commission_rule": {"mode": "percent", "level1": 20000}},
        ),
        422,
        "out_of_range",
    )
    # The product change in the same PATCH was rolled back with the rule.
    assert api("get", f"/products/{product.id}").get_json()["title"] == "茶叶"
    # The body's shape: unknown mode, text numbers, floats, unknown fields.
    for body in (
        {"mode": "bonus"},
        {"mode": "percent", "level1": "1000"},
        {"mode": "percent", "level1": 10.5},
        {"mode": "percent", "level4": 1},
        {},
    ):
        error_of(api("put", base, json=body), 422, "validation_error")
    # A SKU of another product, an unknown product.
    error_of(
        api(
            "put",
            f"/products/{product.id}/skus/{other.skus[0].id}/commission-rule",
            json={"mode": "none"},
        ),
        404,
        "not_found",
    )
    error_of(
        api("put", "/products/987654/commission-rule", json={"mode": "none"}), 404, "not_found"
    )
    assert rules_in_db(product.id) == {}
    assert not db.session.scalar(select(AuditLog).where(AuditLog.action == "commission_rule.save"))


def test_a_read_token_cannot_change_rules(client, runner, make, app_ctx):
    product = make.product("茶叶")
    headers = {"Authorization": f"Bearer {make_token(runner, 'read')}"}
    url = f"/api/v1/admin/products/{product.id}/commission-rule"
    error_of(client.put(url, json={"mode": "none"}, headers=headers), 403, "insufficient_scope")
    error_of(client.delete(url, headers=headers), 403, "insufficient_scope")
    error_of(client.get(url, headers=headers), 404, "commission_rule_not_found")
    assert rules_in_db(product.id) == {}


def test_the_simulator_pays_by_the_rule_set_through_the_api(api, owner_api, make):
    product = make.product("茶叶", price_fen=10000)
    sku = product.skus[0]
    seller = create_distributor(make.user().id, None)
    db.session.commit()
    url = f"/products/{product.id}/skus/{sku.id}/commission-rule"
    # 12.34 per unit of ¥100 is 12.34%, above the shop default of 10%: the owner's call.
    error_of(api("put", url, json={"mode": "fixed", "level1": 1234}), 403, "rate_above_default")
    assert owner_api("put", url, json={"mode": "fixed", "level1": 1234}).status_code == 200
    body = {"sku_id": sku.id, "quantity": 2, "chain": [seller.id]}
    preview = api("post", "/distribution/simulate", json=body)
    assert preview.status_code == 200, preview.get_data(as_text=True)
    amounts = [level["amount_fen"] for level in preview.get_json()["levels_detail"]]
    assert amounts[0] == 2468  # 12.34 per unit, two units


def test_grade_rates_change_and_grades_go_through_the_api(api, owner_api, make):
    """Grades carry rates too: the Open API changes and deletes them as the admin does."""
    made = api("post", "/distribution/grades", json={"name": "金牌", "level1_bp": 800})
    assert made.status_code == 201, made.get_data(as_text=True)
    grade_id = made.get_json()["id"]
    api("post", "/distribution/grades", json={"name": "银牌"})
    url = f"/distribution/grades/{grade_id}"

    # Above the shop default of 10%: a write token is held to it like staff, the owner is not.
    error_of(api("patch", url, json={"level1_bp": 1200}), 403, "rate_above_default")
    changed = owner_api("patch", url, json={"level1_bp": 1200, "level2_bp": 300})
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert (changed.get_json()["name"], changed.get_json()["level1_bp"]) == ("金牌", 1200)
    error = error_of(api("patch", url, json={"level1_bp": 10001}), 422, "out_of_range")
    assert error["details"][0]["field"] == "level1_bp"
    error_of(api("patch", url, json={"name": "银牌"}), 409, "name_taken")
    error_of(api("patch", url, json={"level1_bp": "12"}), 422, "validation_error")
    error_of(api("patch", "/distribution/grades/987654", json={"rank": 1}), 404, "not_found")

    holder = create_distributor(make.user().id, None)
    holder.grade_id = grade_id
    db.session.commit()
    error_of(api("delete", url), 409, "grade_in_use")
    holder.grade_id = None
    db.session.commit()
    assert api("delete", url).status_code == 204
    assert [g["name"] for g in api("get", "/distribution/grades").get_json()["items"]] == ["银牌"]
    actions = db.session.scalars(
        select(AuditLog.action).where(AuditLog.subject == "grade").order_by(AuditLog.id)
    ).all()
    assert actions == ["grade.create", "grade.create", "grade.update", "grade.delete"]
