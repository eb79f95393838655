"""Turn catalog rows into the API's response models (app.api.schemas)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from flask import current_app, url_for

from app.api import schemas
from app.catalog.models import Category, Product, ProductImage, Sku


def media_url(filename: str) -> str:
    """Absolute URL of an uploaded file: a mini-program cannot resolve relative paths."""
    return current_app.config["PUBLIC_BASE_URL"] + url_for("core.media", filename=filename)


def page_meta(page: int, per_page: int, total: int) -> schemas.PageMeta:
    """Pagination numbers for a list answer."""
    return schemas.PageMeta(
        page=page, per_page=per_page, total=total, pages=math.ceil(total / per_page)
    )


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC (app.core.time).
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def category(row: Category) -> schemas.CategoryOut:
    return schemas.CategoryOut(id=row.id, name=row.name, sort=row.sort)


def _image(row: ProductImage) -> schemas.ImageOut:
    return schemas.ImageOut(url=media_url(row.filename), width=row.width, height=row.height)


def _summary_fields(product: Product) -> dict:
    cheapest = min(product.skus, key=lambda s: (s.price_fen, s.id), default=None)
    return {
        "id": product.id,
        "title": product.title,
        "subtitle": product.subtitle,
        "category_id": product.category_id,
        "min_price_fen": cheapest.price_fen if cheapest else 0,
        "original_price_fen": cheapest.original_price_fen if cheapest else 0,
        "cover_url": media_url(product.cover.filename) if product.cover else None,
        "stock": product.total_stock,
    }


def product_summary(product: Product) -> schemas.ProductSummary:
    """A product in a customer list."""
    return schemas.ProductSummary(**_summary_fields(product))


def product_detail(product: Product) -> schemas.ProductDetail:
    """A product with its images and SKUs, as a customer sees it."""
    return schemas.ProductDetail(
        **_summary_fields(product),
        description=product.description,
        purchase_limit=product.purchase_limit,
        spec_names=list(product.spec_names or []),
        images=[_image(i) for i in product.images],
        skus=[
            schemas.SkuOut(
                id=s.id,
                specs=dict(s.specs or {}),
                price_fen=s.price_fen,
                original_price_fen=s.original_price_fen,
                stock=s.stock,
            )
            for s in product.skus
        ],
    )


def admin_sku(sku: Sku) -> schemas.AdminSkuOut:
    """A SKU with its merchant code."""
    return schemas.AdminSkuOut(
        id=sku.id,
        specs=dict(sku.specs or {}),
        price_fen=sku.price_fen,
        original_price_fen=sku.original_price_fen,
        stock=sku.stock,
        code=sku.code,
    )


def admin_product(product: Product) -> schemas.AdminProduct:
    """A product as the merchant Open API shows it (on or off the shelf)."""
    return schemas.AdminProduct(
        id=product.id,
        title=product.title,
        subtitle=product.subtitle,
        description=product.description,
        category_id=product.category_id,
        spec_names=list(product.spec_names or []),
        on_shelf=product.on_shelf,
        featured=product.featured,
        purchase_limit=product.purchase_limit,
        sort=product.sort,
        min_price_fen=product.min_price_fen,
        stock=product.total_stock,
        images=[_image(i) for i in product.images],
        skus=[admin_sku(s) for s in product.skus],
        created_at=_aware(product.created_at),
        updated_at=_aware(product.updated_at),
    )
