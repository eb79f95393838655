"""Helpers for driving the merchant Open API from its own OpenAPI models: the smallest
request body each route's pydantic model accepts, so a sweep reaches the handler."""

from __future__ import annotations

import re
from typing import Any

EXAMPLE_TEXT = {r"^\d{6}$": "440305"}  # region codes (GB/T 2260)


def _resolve(schema: dict, defs: dict) -> dict:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def example(schema: dict, defs: dict) -> Any:
    """A value the JSON schema ``schema`` accepts (required fields only)."""
    schema = _resolve(schema, defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, defs).get("type") != "null"]
            return example(options[0], defs) if options else None
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {
            name: example(props[name], defs) for name in schema.get("required", []) if name in props
        }
    if kind == "array":
        return [example(schema.get("items", {}), defs) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(schema.get("minimum", 1), 1) if schema.get("maximum", 1) >= 1 else 0
    if kind == "number":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "string":
        if schema.get("pattern") in EXAMPLE_TEXT:
            return EXAMPLE_TEXT[schema["pattern"]]
        return "x" * max(schema.get("minLength", 1), 1)
    return None


def spec_path(rule: str) -> str:
    """Werkzeug's ``/products/<int:product_id>`` as OpenAPI's ``/products/{product_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([A-Za-z_][A-Za-z0-9_]*)>", r"{\1}", rule)


def example_body(document: dict, rule, method: str) -> dict | None:
    """The smallest JSON body the OpenAPI ``document`` says ``method rule`` accepts
    (None when the operation takes no body)."""
    operation = document["paths"][spec_path(str(rule))][method.lower()]
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    schemas = document["components"]["schemas"]
    return example(content["application/json"]["schema"], schemas)


def with_ids(value: Any, number: int) -> Any:
    """``value`` with every integer field whose name ends in ``_id`` set to ``number``."""
    if isinstance(value, dict):
        return {
            k: number if k.endswith("_id") and isinstance(v, int) else with_ids(v, number)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [with_ids(v, number) for v in value]
    return value


def bearer_caller(client, token: str):
    """``call(method, path, **kwargs)``: ``client.open`` on ``/api/v1/admin{path}`` with
    ``token`` as the bearer (extra ``headers`` given to a call are added to it)."""

    def call(method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return client.open(f"/api/v1/admin{path}", method=method.upper(), headers=headers, **kwargs)

    return call
