"""Merchant Open API: a token from the real CLI, then products and stock through HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.accounts.models import ApiToken
from app.catalog.models import Product, Sku
from app.core.time import utcnow
from app.extensions import db
from tests.support.openapi import bearer_caller


@pytest.fixture
def token(runner, app_ctx) -> str:
    """A bearer token printed by ``flask create-api-token``."""
    result = runner.invoke(args=["create-api-token", "ci"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip()
    assert secret.startswith("sk_")
    return secret


@pytest.fixture
def api(client, token):
    """Call the Open API with the token: ``api("get", "/products")``."""

    return bearer_caller(client, token)


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


def _count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


SHIRT = {
    "title": "纯棉T恤",
    "subtitle": "夏季新款",
    "description": "100% 棉",
    "spec_names": ["颜色", "尺码"],
    "skus": [
        {"specs": {"颜色": "白", "尺码": "M"}, "price_fen": 5900, "stock": 10, "code": "TS-W-M"},
        {
            "specs": {"颜色": "黑", "尺码": "M"},
            "price_fen": 6900,
            "original_price_fen": 9900,
            "stock": 5,
        },
    ],
    "featured": True,
    "sort": 3,
}


@pytest.mark.postgresql  # stock
def test_create_patch_and_stock(api, client, make):
    cat = make.category("女装")
    created = api("post", "/products", json={**SHIRT, "category_id": cat.id, "on_shelf": False})
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert created.headers["Location"].endswith(f"/api/v1/admin/products/{body['id']}")
    assert body["title"] == "纯棉T恤" and body["on_shelf"] is False and body["featured"] is True
    assert body["category_id"] == cat.id and body["min_price_fen"] == 5900 and body["stock"] == 15
    assert [s["code"] for s in body["skus"]] == ["TS-W-M", None]

    product = db.session.get(Product, body["id"])
    assert product.spec_names == ["颜色", "尺码"]
    assert [(s.specs, s.price_fen, s.stock) for s in product.skus] == [
        ({"颜色": "白", "尺码": "M"}, 5900, 10),
        ({"颜色": "黑", "尺码": "M"}, 6900, 5),
    ]
    white, black = (s["id"] for s in body["skus"])

    # Off the shelf: the admin API sees it, customers do not.
    assert api("get", f"/products/{product.id}").get_json()["id"] == product.id
    listed = api("get", "/products?on_shelf=false").get_json()
    assert [p["id"] for p in listed["items"]] == [product.id]
    assert api("get", "/products?on_shelf=true").get_json()["meta"]["total"] == 0

    # PATCH only the title and shelf: everything else stays.
    patched = api("patch", f"/products/{product.id}", json={"title": "新款T恤", "on_shelf": True})
    assert patched.status_code == 200, patched.get_data(as_text=True)
    db.session.expire_all()
    assert (product.title, product.on_shelf, product.subtitle, product.sort) == (
        "新款T恤",
        True,
        "夏季新款",
        3,
    )
    assert [s.id for s in product.skus] == [white, black]

    # PATCH skus: keep white (new price only), drop black, add red.
    patched = api(
        "patch",
        f"/products/{product.id}",
        json={
            "skus": [
                {"id": white, "price_fen": 4900},
                {"specs": {"颜色": "红", "尺码": "L"}, "price_fen": 7900, "stock": 2},
            ]
        },
    )
    assert patched.status_code == 200, patched.get_data(as_text=True)
    db.session.expire_all()
    kept, added = product.skus
    assert (kept.id, kept.price_fen, kept.stock, kept.code) == (white, 4900, 10, "TS-W-M")
    assert (added.specs, added.price_fen, added.stock) == ({"颜色": "红", "尺码": "L"}, 7900, 2)
    assert db.session.get(Sku, black) is None

    # Stock: absolute, then relative, then refused below zero.
    base = f"/products/{product.id}/skus/{white}/stock"
    assert api("put", base, json={"stock": 7}).get_json()["stock"] == 7
    assert api("post", f"{base}/adjust", json={"delta": -3}).get_json()["stock"] == 4
    _error(api("post", f"{base}/adjust", json={"delta": -5}), 409, "insufficient_stock")
    _error(api("post", f"{base}/adjust", json={"delta": 10_000_000}), 409, "stock_limit_exceeded")
    db.session.expire_all()
    assert db.session.get(Sku, white).stock == 4

    # Customers now see it on the shelf with the new price.
    customer_view = client.get(f"/api/v1/products/{product.id}").get_json()
    assert customer_view["min_price_fen"] == 4900
    assert "code" not in customer_view["skus"][0]  # merchant codes stay in the Open API


def test_token_use_is_recorded(api, token):
    assert api("get", "/products").status_code == 200
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(token)))
    db.session.refresh(row)
    assert row.last_used_at is not None


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer sk_not_a_real_token", "x" * 5000],
)
def test_missing_or_bad_token_is_401(client, header):
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/api/v1/admin/products", headers=headers)
    _error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_is_401(api, token):
    assert api("get", "/products").status_code == 200
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(token)))
    row.revoked_at = utcnow()
    db.session.commit()
    response = api("get", "/products")
    _error(response, 401, "token_revoked")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_every_admin_route_needs_a_token(app, client):
    """Including routes added later: the loop walks the URL map."""
    for rule in app.url_map.iter_rules():
        if not str(rule).startswith("/api/v1/admin/"):
            continue
        url = rule.build(dict.fromkeys(rule.arguments, 1))[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            _error(client.open(url, method=method, json={}), 401, "invalid_token")


def _sku(**overrides):
    return {"specs": {}, "price_fen": 100, **overrides}


INVALID_CREATES = [
    # (body, status, code, field of the first detail or None)
    (
        {**SHIRT, "skus": [{**SHIRT["skus"][0], "price_fen": 12.5}]},
        422,
        "validation_error",
        "skus.0.price_fen",
    ),
    ({"title": "x", "skus": [_sku(price_fen="100")]}, 422, "validation_error", "skus.0.price_fen"),
    # 12.0 is the integer 12 (JSON Schema's integer); a fraction is not.
    ({"title": "x", "skus": [_sku(price_fen=12.01)]}, 422, "validation_error", "skus.0.price_fen"),
    ({"title": "x", "skus": [_sku(price_fen=-1)]}, 422, "validation_error", "skus.0.price_fen"),
    ({"title": "x", "skus": [_sku(price_fen=10**30)]}, 422, "validation_error", "skus.0.price_fen"),
    ({"title": "x", "skus": [_sku(stock=-1)]}, 422, "validation_error", "skus.0.stock"),
    ({"title": "x", "skus": [_sku(stock=True)]}, 422, "validation_error", "skus.0.stock"),
    ({"title": "x", "skus": [_sku(colour="red")]}, 422, "validation_error", "skus.0.colour"),
    ({"title": "x", "skus": [_sku()], "price": 100}, 422, "validation_error", "price"),
    ({"title": "x", "skus": []}, 422, "validation_error", "skus"),
    ({"title": "x"}, 422, "validation_error", "skus"),
    ({"skus": [_sku()]}, 422, "validation_error", "title"),
    ({"title": "", "skus": [_sku()]}, 422, "validation_error", "title"),
    ({"title": 5, "skus": [_sku()]}, 422, "validation_error", "title"),
    ({"title": "   ", "skus": [_sku()]}, 422, "validation_error", "title"),
    ({"title": "x", "spec_names": [""], "skus": [_sku()]}, 422, "validation_error", "spec_names.0"),
    ({"title": "x", "skus": [_sku()], "on_shelf": "true"}, 422, "validation_error", "on_shelf"),
    (
        {"title": "x", "skus": [_sku()], "category_id": 99999999999},
        422,
        "validation_error",
        "category_id",
    ),
    ({"title": "x", "skus": [_sku()], "spec_names": "颜色"}, 422, "validation_error", "spec_names"),
    ({"title": "x", "skus": "many"}, 422, "validation_error", "skus"),
    # Passed the schema, refused by app.catalog.services (CatalogError → invalid_<field>).
    (
        {"title": "x", "spec_names": [" 颜色", "颜色"], "skus": [_sku(specs={"颜色": "红"})]},
        422,
        "invalid_spec_names",
        "spec_names",
    ),
    (
        {"title": "x", "skus": [_sku()], "category_id": 424242},
        422,
        "invalid_category_id",
        "category_id",
    ),
    ({"title": "x", "skus": [_sku(), _sku()]}, 422, "invalid_skus", "skus"),
    ({"title": "x", "spec_names": ["颜色"], "skus": [_sku()]}, 422, "invalid_skus", "skus"),
    (
        {"title": "x", "spec_names": ["颜色", "颜色"], "skus": [_sku()]},
        422,
        "invalid_spec_names",
        "spec_names",
    ),
]


@pytest.mark.postgresql  # values past PostgreSQL's column types
@pytest.mark.parametrize(("body", "status", "code", "field"), INVALID_CREATES)
def test_invalid_create_bodies_write_nothing(api, body, status, code, field):
    error = _error(api("post", "/products", json=body), status, code)
    if field is not None:
        assert error["details"][0]["field"] == field
    assert _count(Product) == 0 and _count(Sku) == 0


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": "", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": "[1, 2]", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": "null", "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": '"text"', "content_type": "application/json"}, 400, "invalid_json"),
        ({"data": {"title": "x"}}, 415, "unsupported_media_type"),  # a form post
        ({"data": '{"title": "x"}', "content_type": "text/plain"}, 415, "unsupported_media_type"),
        ({"data": '{"title": "x"}'}, 415, "unsupported_media_type"),  # no content type
        ({}, 400, "invalid_json"),  # no body at all
        ({"data": "[" * 100_000, "content_type": "application/json"}, 400, "invalid_json"),
        (
            {"data": '{"title": "\\ud800", "skus": []}', "content_type": "application/json"},
            422,
            "validation_error",
        ),
        (
            {
                "data": '{"title": "a\\u0000b", "skus": [{"price_fen": 1}]}',
                "content_type": "application/json",
            },
            422,
            "validation_error",
        ),
        (
            {
                "data": '{"title": "x", "skus": [{"price_fen": 1' + "0" * 5000 + "}]}",
                "content_type": "application/json",
            },
            400,
            "invalid_json",
        ),
    ],
)
def test_unreadable_bodies(api, kwargs, status, code):
    _error(api("post", "/products", **kwargs), status, code)
    assert _count(Product) == 0


@pytest.mark.postgresql  # unique constraints
def test_duplicate_sku_code_across_products(api):
    assert (
        api("post", "/products", json={"title": "a", "skus": [_sku(code="X1")]}).status_code == 201
    )
    error = _error(
        api("post", "/products", json={"title": "b", "skus": [_sku(code="X1")]}),
        422,
        "invalid_skus",
    )
    assert "X1" in error["message"]
    assert _count(Product) == 1


@pytest.mark.postgresql  # values past PostgreSQL's column types
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"title": None}, "validation_error"),
        ({"skus": None}, "validation_error"),
        ({"sort": 1.5}, "validation_error"),
        ({"nope": 1}, "validation_error"),
        ({"skus": [{"specs": {}}]}, "validation_error"),  # a new SKU needs price_fen
        ({"skus": [{"id": 999999, "price_fen": 1}]}, "invalid_skus"),  # not this product's
        ({"spec_names": ["尺码"]}, "invalid_skus"),  # existing SKUs no longer match
    ],
)
def test_invalid_patches_change_nothing(api, make, body, code):
    product = make.product("原名", price_fen=500, stock=4)
    _error(api("patch", f"/products/{product.id}", json=body), 422, code)
    db.session.expire_all()
    assert (product.title, product.spec_names, len(product.skus)) == ("原名", [], 1)
    assert (product.skus[0].price_fen, product.skus[0].stock) == (500, 4)


def test_patch_null_category_uncategorises(api, make):
    product = make.product(category=make.category())
    assert api("patch", f"/products/{product.id}", json={"category_id": None}).status_code == 200
    db.session.expire_all()
    assert product.category_id is None


@pytest.mark.postgresql  # values past PostgreSQL's column types
def test_unknown_ids_are_404(api, make):
    product = make.product()
    other = make.product()
    sku = other.skus[0].id
    _error(api("get", "/products/987654"), 404, "not_found")
    _error(api("patch", "/products/987654", json={"title": "x"}), 404, "not_found")
    _error(api("get", "/products/99999999999999999999"), 404, "not_found")
    _error(api("patch", "/products/2147483648", json={"title": "x"}), 404, "not_found")
    _error(api("put", "/products/2147483648/skus/1/stock", json={"stock": 1}), 404, "not_found")
    # A SKU of another product is not this product's SKU.
    _error(
        api("put", f"/products/{product.id}/skus/{sku}/stock", json={"stock": 1}), 404, "not_found"
    )
    _error(
        api("post", f"/products/{product.id}/skus/{sku}/stock/adjust", json={"delta": 1}),
        404,
        "not_found",
    )


@pytest.mark.postgresql  # stock
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("stock", {"stock": -1}),
        ("stock", {"stock": 1.5}),
        ("stock", {"stock": "5"}),
        ("stock", {}),
        ("stock", {"stock": 1, "delta": 1}),
        ("stock/adjust", {"delta": 0.5}),
        ("stock/adjust", {"delta": 10**12}),
        ("stock/adjust", {"stock": 1}),
    ],
)
def test_invalid_stock_bodies(api, make, path, body):
    product = make.product(stock=6)
    sku = product.skus[0].id
    method = "put" if path == "stock" else "post"
    _error(
        api(method, f"/products/{product.id}/skus/{sku}/{path}", json=body), 422, "validation_error"
    )
    db.session.expire_all()
    assert db.session.get(Sku, sku).stock == 6


def test_admin_list_filters_and_pages(api, make):
    cat = make.category()
    make.product("蓝色围巾", category=cat)
    make.product("红色围巾", on_shelf=False)
    make.product("帽子")
    assert api("get", "/products").get_json()["meta"]["total"] == 3
    assert api("get", f"/products?category_id={cat.id}").get_json()["meta"]["total"] == 1
    assert api("get", "/products?q=围巾").get_json()["meta"]["total"] == 2
    page = api("get", "/products?per_page=2&page=2").get_json()
    assert page["meta"] == {"page": 2, "per_page": 2, "total": 3, "pages": 2}
    assert len(page["items"]) == 1
    _error(api("get", "/products?on_shelf=maybe"), 422, "validation_error")
    _error(api("get", "/products?per_page=500"), 422, "validation_error")


def test_patch_needs_a_body_but_may_be_empty(api, make):
    product = make.product("原名")
    _error(api("patch", f"/products/{product.id}"), 400, "invalid_json")
    unchanged = api("patch", f"/products/{product.id}", json={})
    assert unchanged.status_code == 200
    assert unchanged.get_json()["title"] == "原名"
