"""Audit of product work: staff creating products, editing their SKUs' prices (adding and
removing SKUs), and taking them off the shelf, in admin and through the Open API, each
leave one row with who, what, and the values before and after."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.catalog.models import Product, Sku
from app.core.models import AuditLog
from app.extensions import db
from tests.support.admin import fresh_client, login_staff, post, text
from tests.support.catalog import product_data


@pytest.fixture
def owner(app, make):
    staff = make.staff(role="owner")
    db.session.commit()
    client = fresh_client(app)
    login_staff(client, staff)
    return staff, client


@pytest.fixture
def token(runner, app_ctx) -> tuple[int, str]:
    from app.accounts.models import ApiToken

    result = runner.invoke(args=["create-api-token", "erp"])
    assert result.exit_code == 0, result.output
    return db.session.scalar(select(func.max(ApiToken.id))), result.output.strip()


def rows(action: str) -> list[AuditLog]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_admin_create_edit_prices_and_shelf_are_audited(app_ctx, owner, make):
    staff, client = owner
    make.product("别人的商品", price_fen=100)  # an older product: never mistaken for ours
    data = product_data(
        "香薰蜡烛",
        {"香型": ["薰衣草", "柑橘"]},
        [
            {"values": ["薰衣草"], "price": "12.50", "stock": "8"},
            {"values": ["柑橘"], "price": "13.00", "stock": "5"},
        ],
    )
    response = post(client, "/admin/products/new", data)
    assert response.status_code == 302, text(response)
    product = db.session.scalar(select(Product).where(Product.title == "香薰蜡烛"))

    (created,) = rows("product.create")
    assert (created.actor, created.subject, created.subject_id) == (
        staff.get_id(),
        "product",
        str(product.id),
    )
    assert created.before == {}
    assert created.after["title"] == "香薰蜡烛"
    prices = sorted(v["price_fen"] for k, v in created.after.items() if k.startswith("sku."))
    assert prices == [1250, 1300]

    # A price change, one SKU removed: before/after carry exactly those SKUs.
    lavender, citrus = sorted(product.skus, key=lambda s: s.price_fen)
    edit = product_data(
        "香薰蜡烛",
        {"香型": ["薰衣草"]},
        [{"id": lavender.id, "values": ["薰衣草"], "price": "15.80", "stock": "8"}],
    )
    response = post(client, f"/admin/products/{product.id}/edit", edit)
    assert response.status_code == 302, text(response)
    (updated,) = rows("product.update")
    assert updated.subject_id == str(product.id) and updated.actor == staff.get_id()
    key = f"sku.{lavender.id}"
    assert updated.before[key]["price_fen"] == 1250
    assert updated.after[key]["price_fen"] == 1580
    assert f"sku.{citrus.id}" in updated.before and f"sku.{citrus.id}" not in updated.after
    assert "title" not in updated.after  # unchanged values are not kept

    response = post(client, f"/admin/products/{product.id}/shelf", {"on_shelf": "0"})
    assert response.status_code == 302
    (shelf,) = rows("product.shelf")
    assert (shelf.before["on_shelf"], shelf.after["on_shelf"]) == (True, False)


def test_refused_create_writes_nothing(app_ctx, owner):
    _, client = owner
    response = post(client, "/admin/products/new", product_data(""))  # no title
    assert response.status_code == 422
    assert rows("product.create") == []
    assert client.get("/admin/products/new").status_code == 200
    assert rows("product.create") == []


def test_open_api_create_and_price_patch_are_audited(app_ctx, client, token):
    token_id, secret = token
    headers = {"Authorization": f"Bearer {secret}"}
    body = {
        "title": "纯棉T恤",
        "spec_names": ["颜色"],
        "skus": [{"specs": {"颜色": "白"}, "price_fen": 5900, "stock": 10}],
    }
    response = client.post("/api/v1/admin/products", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    product_id = response.get_json()["id"]
    (created,) = rows("product.create")
    assert (created.actor, created.subject_id) == (f"api:{token_id}", str(product_id))
    sku_id = db.session.scalar(select(Sku.id).where(Sku.product_id == product_id))
    assert created.after[f"sku.{sku_id}"]["price_fen"] == 5900

    response = client.patch(
        f"/api/v1/admin/products/{product_id}",
        json={"skus": [{"id": sku_id, "price_fen": 6900}]},
        headers=headers,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    (updated,) = rows("product.update")
    assert updated.before[f"sku.{sku_id}"]["price_fen"] == 5900
    assert updated.after[f"sku.{sku_id}"]["price_fen"] == 6900

    bad = client.post("/api/v1/admin/products", json={"title": ""}, headers=headers)
    assert bad.status_code in (400, 422)
    assert len(rows("product.create")) == 1
