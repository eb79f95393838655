"""The JSON API's edges: who is asked to sign in first, whole JSON floats, long URIs and big
bodies, and an OpenAPI document that names every status a route answers."""

from __future__ import annotations

import pytest

from app.api.blueprints import MAX_URI_LENGTH, PUBLIC_ATTR
from app.catalog.models import Sku
from app.extensions import db

pytestmark = pytest.mark.postgresql  # values past PostgreSQL's column types

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def sign_in(client, login_as, user) -> dict:
    """Sign ``client`` in as ``user``; return the headers a page's fetch() sends (CSRF)."""
    login_as(client, user)
    return {"X-CSRFToken": client.get("/cart/session").get_json()["csrf_token"]}


@pytest.fixture
def bearer(runner, app_ctx) -> dict:
    """Headers with a bearer token printed by ``flask create-api-token``."""
    result = runner.invoke(args=["create-api-token", "edges"])
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {result.output.strip()}"}


def customer_write_urls(app):
    """(method, url, endpoint) of every write route of the cookie API, ids filled with 1."""
    for rule in app.url_map.iter_rules():
        path = str(rule)
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/admin/"):
            continue
        if getattr(app.view_functions[rule.endpoint], PUBLIC_ATTR, False):
            continue  # the mini-program's sign-in doors (tests/test_wxa.py): open by design
        for method in sorted(rule.methods & WRITES):
            yield method, rule.build(dict.fromkeys(rule.arguments, 1))[1], rule.endpoint


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def documented(app, client, method: str, url_rule: str) -> set[str]:
    """The statuses the OpenAPI document lists for one operation."""
    document = client.get("/api/v1/openapi.json").get_json()
    return set(document["paths"][url_rule][method.lower()]["responses"])


# --- 401 before CSRF ----------------------------------------------------------------------


def test_an_anonymous_write_is_asked_to_sign_in_before_any_csrf_check(app, client, make, login_as):
    urls = list(customer_write_urls(app))
    assert len(urls) >= 15
    for method, url, _endpoint in urls:
        for body, headers in (({}, {}), (None, {}), ({}, {"Authorization": "Bearer sk_x"})):
            response = client.open(url, method=method, json=body, headers=headers)
            assert response.status_code == 401, (method, url, response.status_code)
            assert error_code(response) == "unauthorized", (method, url)
    # Signed in, the CSRF header is still needed.
    headers = sign_in(client, login_as, make.user())
    sku = make.product(stock=5).skus[0]
    refused = client.post("/api/v1/cart/items", json={"sku_id": sku.id})
    assert refused.status_code == 400 and error_code(refused) == "csrf_failed"
    forged = client.post(
        "/api/v1/cart/items", json={"sku_id": sku.id}, headers={"X-CSRFToken": "x"}
    )
    assert forged.status_code == 400 and error_code(forged) == "csrf_failed"
    taken = client.post("/api/v1/cart/items", json={"sku_id": sku.id}, headers=headers)
    assert taken.status_code == 200


# --- whole JSON floats --------------------------------------------------------------------


def test_whole_floats_are_integers_on_the_customer_side(client, make, login_as):
    headers = sign_in(client, login_as, make.user())
    sku = make.product(stock=9).skus[0]
    body = {"sku_id": float(sku.id), "quantity": 2.0}
    added = client.post("/api/v1/cart/items", json=body, headers=headers)
    assert added.status_code == 200, added.get_json()
    assert added.get_json()["count"] == 2
    raw = f'{{"sku_id": {sku.id}, "quantity": 1e0}}'  # exponent form, as some encoders write
    more = client.post(
        "/api/v1/cart/items", data=raw, content_type="application/json", headers=headers
    )
    assert more.status_code == 200 and more.get_json()["count"] == 3
    for bad in (1.5, 0.999, "2", True):
        refused = client.post(
            "/api/v1/cart/items", json={"sku_id": sku.id, "quantity": bad}, headers=headers
        )
        assert refused.status_code == 422, bad
        assert refused.get_json()["error"]["details"][0]["field"] == "quantity"
    assert client.get("/api/v1/cart").get_json()["count"] == 3


def test_whole_floats_are_integers_in_the_open_api(client, make, bearer):
    product = make.product(stock=3)
    sku_id = product.skus[0].id
    url = f"/api/v1/admin/products/{product.id}/skus/{sku_id}/stock"
    assert client.put(url, json={"stock": 7.0}, headers=bearer).status_code == 200
    refused = client.put(url, json={"stock": 7.5}, headers=bearer)
    assert refused.status_code == 422 and error_code(refused) == "validation_error"
    adjusted = client.post(f"{url}/adjust", json={"delta": -2.0}, headers=bearer)
    assert adjusted.status_code == 200, adjusted.get_json()
    db.session.rollback()
    assert db.session.get(Sku, sku_id).stock == 5
    # Lists of integers inside a body follow the same rule.
    patched = client.patch(
        f"/api/v1/admin/products/{product.id}",
        json={"sort": 3.0, "skus": [{"id": float(sku_id), "stock": 4.0}]},
        headers=bearer,
    )
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["sort"] == 3


# --- sizes --------------------------------------------------------------------------------


def test_a_uri_too_long_is_414_in_json(client, bearer):
    long_query = "q=" + "a" * MAX_URI_LENGTH
    for url, headers in (
        (f"/api/v1/products?{long_query}", {}),
        (f"/api/v1/admin/products?{long_query}", bearer),
        (f"/api/v1/admin/products?{long_query}", {}),  # before the token check
    ):
        response = client.get(url, headers=headers)
        assert response.status_code == 414, url
        assert error_code(response) == "uri_too_long"
    anonymous_write = client.post(f"/api/v1/orders?{long_query}", json={})
    assert anonymous_write.status_code == 414
    # Just under the limit is an ordinary request (here refused by the q length check).
    fits = "q=" + "a" * (MAX_URI_LENGTH - len("/api/v1/products") - 2)
    assert client.get(f"/api/v1/products?{fits}").status_code == 422


# --- the document -------------------------------------------------------------------------


def test_every_operation_declares_the_statuses_its_checks_can_answer(client):
    document = client.get("/api/v1/openapi.json").get_json()
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            expected = {"414", "422", "503"}
            if method.upper() in WRITES:
                expected |= {"400", "401", "413", "415"}
            if "{" in path:
                expected.add("404")
            schemes = {name for entry in operation.get("security", []) for name in entry}
            if "bearerAuth" in schemes:
                expected.add("401")
                if method.upper() in WRITES:
                    expected.add("403")
            lacking = expected - set(operation["responses"])
            if lacking:
                missing.append((method.upper(), path, sorted(lacking)))
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    assert missing == []


def test_statuses_met_here_are_in_the_document(app, client, make, bearer):
    """Answers met through the real door (413 included), each found in its operation's
    responses."""
    product = make.product(stock=3)
    sku_id = product.skus[0].id
    stock_rule = "/api/v1/admin/products/{product_id}/skus/{sku_id}/stock"
    long_query = "q=" + "a" * MAX_URI_LENGTH
    seen = [
        ("POST", "/api/v1/cart/items", client.post("/api/v1/cart/items", json={})),
        ("GET", "/api/v1/products", client.get(f"/api/v1/products?{long_query}")),
        ("GET", "/api/v1/products", client.get("/api/v1/products?page=0")),
        (
            "PUT",
            stock_rule,
            client.put(
                f"/api/v1/admin/products/{product.id}/skus/{sku_id}/stock",
                data="[1]",
                content_type="text/plain",
                headers=bearer,
            ),
        ),
        (
            "PUT",
            stock_rule,
            client.put(
                f"/api/v1/admin/products/{product.id}/skus/999999/stock",
                json={"stock": 1},
                headers=bearer,
            ),
        ),
        (
            "POST",
            "/api/v1/admin/products",
            client.post(
                "/api/v1/admin/products",
                data=b"{" + b" " * app.config["MAX_CONTENT_LENGTH"] + b"}",
                content_type="application/json",
                headers=bearer,
            ),
        ),
    ]
    past_the_end = client.get("/api/v1/products?page=99")  # an empty page, not a 404
    assert past_the_end.status_code == 200 and past_the_end.get_json()["items"] == []
    statuses = set()
    for method, rule, response in seen:
        statuses.add(response.status_code)
        assert str(response.status_code) in documented(app, client, method, rule), (
            method,
            rule,
            response.status_code,
        )
    assert statuses == {401, 414, 422, 415, 404, 413}
