"""What the audit log reads of a product when staff change it (admin pages and Open API)."""

from __future__ import annotations

from typing import Any

from app.catalog.models import Product
from app.core.audit import created, row, snapshot


def _sku_values(product: Product) -> dict[str, Any]:
    return {f"sku.{sku.id}": snapshot(sku) for sku in product.skus}


# A product with its SKUs' prices and stock as "sku.<id>" keys.
PRODUCT_WITH_SKUS = row(Product, "product_id", extra=_sku_values)
# The product a create view adds (with its SKUs), by the same keys.
NEW_PRODUCT = created(Product, extra=_sku_values)
