"""Turn catalog rows into the API's response models (app.api.schemas)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from flask import current_app, url_for
from sqlalchemy import select

from app.api import schemas
from app.catalog.models import Category, Product, ProductImage, Sku
from app.discounts.pricing import unit_prices
from app.distribution.admin_settings import describe_rule
from app.distribution.models import CommissionRule
from app.extensions import db

# product id -> {sku id or None (the product's own rule): rule}
RuleMap = dict[int, dict[int | None, CommissionRule]]


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
    """A product with its images and SKUs, as a customer sees it: each SKU at what it
    costs now (a running timed discount included, app/discounts/pricing.py), the list
    price as its original price then, and when the discount ends."""
    prices = unit_prices(product.skus)
    ends = next((p.discount.ends_at for p in prices.values() if p.discounted), None)
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
                price_fen=prices[s.id].price_fen,
                original_price_fen=max(s.original_price_fen, s.price_fen)
                if prices[s.id].discounted
                else s.original_price_fen,
                stock=s.stock,
            )
            for s in product.skus
        ],
        discount_ends_at=ends if ends is None or ends.tzinfo else ends.replace(tzinfo=UTC),
    )


def commission_rules(product_ids: list[int]) -> RuleMap:
    """The own commission rules of these products and their SKUs, in one query."""
    found: RuleMap = {pid: {} for pid in product_ids}
    if product_ids:
        query = select(CommissionRule).where(CommissionRule.product_id.in_(product_ids))
        for rule in db.session.scalars(query):
            found.setdefault(rule.product_id, {})[rule.sku_id] = rule
    return found


def commission_rule(rule: CommissionRule | None) -> schemas.CommissionRuleOut | None:
    """A commission rule as the Open API shows it (None stays None)."""
    if rule is None:
        return None
    return schemas.CommissionRuleOut(
        product_id=rule.product_id,
        sku_id=rule.sku_id,
        mode=rule.mode,
        level1=rule.level1,
        level2=rule.level2,
        level3=rule.level3,
        description=describe_rule(rule),
    )


def admin_sku(sku: Sku, rules: RuleMap | None = None) -> schemas.AdminSkuOut:
    """A SKU with its merchant code and its own commission rule."""
    if rules is None:
        rules = commission_rules([sku.product_id])
    return schemas.AdminSkuOut(
        id=sku.id,
        specs=dict(sku.specs or {}),
        price_fen=sku.price_fen,
        original_price_fen=sku.original_price_fen,
        stock=sku.stock,
        code=sku.code,
        commission_rule=commission_rule(rules.get(sku.product_id, {}).get(sku.id)),
    )


def admin_product(product: Product, rules: RuleMap | None = None) -> schemas.AdminProduct:
    """A product as the merchant Open API shows it (on or off the shelf), with the
    commission rules of the product and its SKUs (``rules`` when a list loaded them)."""
    if rules is None:
        rules = commission_rules([product.id])
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
        skus=[admin_sku(s, rules) for s in product.skus],
        commission_rule=commission_rule(rules.get(product.id, {}).get(None)),
        created_at=_aware(product.created_at),
        updated_at=_aware(product.updated_at),
    )
