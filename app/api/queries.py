"""Catalog reads behind the API: filtered, paginated product lists and single products.

Lists load SKUs and images with ``selectinload`` (a fixed number of queries per page) and
count the whole filtered set once for the pagination numbers.
"""

from __future__ import annotations

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import selectinload

from app.api.schemas import MAX_ID
from app.catalog.models import Category, Product, Sku
from app.extensions import db


def _products() -> Select:
    return select(Product).options(selectinload(Product.skus), selectinload(Product.images))


def _search(query: Select, q: str | None) -> Select:
    """Title or subtitle contains ``q``, case-insensitive; % and _ are literal characters."""
    q = " ".join((q or "").split())
    if not q:
        return query
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return query.where(
        or_(
            Product.title.ilike(pattern, escape="\\"),
            Product.subtitle.ilike(pattern, escape="\\"),
        )
    )


def list_products(
    *,
    page: int,
    per_page: int,
    category_id: int | None = None,
    q: str | None = None,
    on_shelf: bool | None = None,
) -> tuple[list[Product], int]:
    """One page of products in the merchant's order (sort, then newest) and the total count."""
    query = _products()
    if on_shelf is not None:
        query = query.where(Product.on_shelf.is_(on_shelf))
    if category_id is not None:
        query = query.where(Product.category_id == category_id)
    query = _search(query, q)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(Product.sort, Product.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), total


def get_product(product_id: int, *, on_shelf_only: bool) -> Product | None:
    """A product with its SKUs and images; None when unknown (or off the shelf if asked)."""
    if not 0 < product_id <= MAX_ID:
        return None
    query = _products().where(Product.id == product_id)
    if on_shelf_only:
        query = query.where(Product.on_shelf.is_(True))
    return db.session.scalar(query)


def get_sku(product_id: int, sku_id: int) -> Sku | None:
    """A SKU of that product, or None (unknown, or it belongs to another product)."""
    if not (0 < product_id <= MAX_ID and 0 < sku_id <= MAX_ID):
        return None
    return db.session.scalar(select(Sku).where(Sku.id == sku_id, Sku.product_id == product_id))


def list_categories() -> list[Category]:
    """Every category in the merchant's order."""
    return list(db.session.scalars(select(Category).order_by(Category.sort, Category.id)))
