"""GET /api/v1/openapi.json: a valid OpenAPI 3 document covering every /api/v1 route."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

HIDDEN_METHODS = {"HEAD", "OPTIONS"}


def _spec_path(rule: str) -> str:
    """Werkzeug's ``/products/<int(max=9):product_id>`` as OpenAPI's ``/products/{product_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule)


def test_document_is_valid_openapi_3(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    validate(document)


def test_document_lists_every_api_route(app, client):
    """A new /api/v1 endpoint without spectree models makes this fail."""
    document = client.get("/api/v1/openapi.json").get_json()
    documented = {
        (path, method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    routed = {
        (_spec_path(str(rule)), method)
        for rule in app.url_map.iter_rules()
        if str(rule).startswith("/api/v1/")
        for method in rule.methods - HIDDEN_METHODS
    }
    assert routed == documented


def test_security_schemes(client):
    document = client.get("/api/v1/openapi.json").get_json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    assert (schemes["cookieSession"]["type"], schemes["cookieSession"]["in"]) == (
        "apiKey",
        "cookie",
    )
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path.startswith("/api/v1/admin/"):
                assert operation["security"] == [{"bearerAuth": []}], path
    assert document["paths"]["/api/v1/me"]["get"]["security"] == [{"cookieSession": []}]


def test_request_schemas_come_from_the_validating_models(client):
    """Money is an integer, bodies refuse unknown fields: the same rules the views enforce."""
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    sku = schemas["SkuCreate"]
    assert sku["additionalProperties"] is False
    assert sku["properties"]["price_fen"]["type"] == "integer"
    assert sku["properties"]["price_fen"]["minimum"] == 0
    assert "price_fen" in sku["required"]
    assert schemas["ProductCreate"]["additionalProperties"] is False
    error = schemas["ErrorResponse"]
    assert error["required"] == ["error"]
