"""Helpers for the admin catalogue tests."""

from __future__ import annotations


def product_data(title="纯棉T恤", specs=None, rows=None, **fields) -> dict:
    """The product form as the page posts it. ``rows``: dicts of values/price/... per SKU."""
    data = {
        "title": title,
        "subtitle": "",
        "category_id": "0",
        "description": "",
        "on_shelf": "y",
        "sort": "0",
        "action": "save",
    }
    for i, (name, values) in enumerate((specs or {}).items()):
        data[f"spec_name_{i}"] = name
        data[f"spec_values_{i}"] = "，".join(values)
    for i, row in enumerate([{"price": "19.90"}] if rows is None else rows):
        for k, value in enumerate(row.get("values", [])):
            data[f"sku-{i}-v{k}"] = value
        data[f"sku-{i}-id"] = str(row.get("id", ""))
        data[f"sku-{i}-price"] = row.get("price", "")
        data[f"sku-{i}-original"] = row.get("original", "")
        data[f"sku-{i}-stock"] = str(row.get("stock", "0"))
        data[f"sku-{i}-code"] = row.get("code", "")
    data.update(fields)
    return data
