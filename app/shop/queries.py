"""Read-only catalog queries behind the H5 shop pages.

Customers only ever see products on the shelf. List queries load SKUs and images with
``selectinload`` (two extra queries per page, never one per product), and fetch one row
more than a page to know whether a next page exists without a COUNT.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import selectinload

from app.catalog.models import Category, Product, Sku
from app.extensions import db

PER_PAGE = 20
MAX_PAGE = 500  # deeper pages are empty: nobody scrolls 10,000 products on a phone
MAX_QUERY_LENGTH = 50
FEATURED_LIMIT = 6
MAX_ID = 2**31 - 1  # larger ids cannot exist (and would overflow PostgreSQL's integer)


@dataclass
class ProductPage:
    """One page of a product list."""

    items: list[Product]
    page: int
    has_next: bool

    @property
    def is_empty(self) -> bool:
        return not self.items and self.page == 1


def _on_shelf() -> Select:
    return (
        select(Product)
        .where(Product.on_shelf.is_(True))
        .options(selectinload(Product.skus), selectinload(Product.images))
        .order_by(Product.sort, Product.id.desc())
    )


def _paginate(query: Select, page: int) -> ProductPage:
    page = max(1, page)
    if page > MAX_PAGE:
        return ProductPage([], page, False)
    rows = list(db.session.scalars(query.limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)))
    return ProductPage(rows[:PER_PAGE], page, len(rows) > PER_PAGE)


def list_products(page: int = 1, category_id: int | None = None) -> ProductPage:
    """Products on the shelf, newest first within the merchant's sort order."""
    query = _on_shelf()
    if category_id is not None:
        query = query.where(Product.category_id == category_id)
    return _paginate(query, page)


def featured_products(limit: int = FEATURED_LIMIT) -> list[Product]:
    """The merchant's featured products for the home page."""
    return list(db.session.scalars(_on_shelf().where(Product.featured.is_(True)).limit(limit)))


def clean_search_query(raw: str | None) -> str:
    """Trim and shorten what the customer typed; the result may be empty."""
    return " ".join((raw or "").split())[:MAX_QUERY_LENGTH]


def search_products(q: str, page: int = 1) -> ProductPage:
    """Products whose title or subtitle contains ``q`` (case-insensitive, wildcards literal)."""
    q = clean_search_query(q)
    if not q:
        return ProductPage([], 1, False)
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    query = _on_shelf().where(
        or_(
            Product.title.ilike(pattern, escape="\\"),
            Product.subtitle.ilike(pattern, escape="\\"),
        )
    )
    return _paginate(query, page)


def get_product(product_id: int) -> Product | None:
    """A product on the shelf with its SKUs and images, or None (unknown or off shelf)."""
    if not 0 < product_id <= MAX_ID:
        return None
    return db.session.scalar(
        select(Product)
        .where(Product.id == product_id, Product.on_shelf.is_(True))
        .options(selectinload(Product.skus), selectinload(Product.images))
    )


def get_category(category_id: int) -> Category | None:
    """A category by id, or None."""
    if not 0 < category_id <= MAX_ID:
        return None
    return db.session.get(Category, category_id)


def list_categories() -> list[Category]:
    """Every category in the merchant's order."""
    return list(db.session.scalars(select(Category).order_by(Category.sort, Category.id)))


def categories_with_counts() -> list[tuple[Category, int]]:
    """Every category with how many of its products are on the shelf (one query)."""
    query = (
        select(Category, func.count(Product.id))
        .outerjoin(Product, and_(Product.category_id == Category.id, Product.on_shelf.is_(True)))
        .group_by(Category.id)
        .order_by(Category.sort, Category.id)
    )
    return [(category, count) for category, count in db.session.execute(query)]


def sku_picker_data(product: Product) -> dict:
    """What the product page's SKU picker needs, ready to embed as JSON.

    ``specs`` lists each specification with its values in first-seen order; each SKU gives
    its values in the same order as ``specs``. Prices are fen (the page formats them).
    """
    names = list(product.spec_names or [])
    values: list[list[str]] = [[] for _ in names]
    skus = []
    for sku in product.skus:
        combo = [str(sku.specs.get(name, "")) for name in names]
        for i, value in enumerate(combo):
            if value not in values[i]:
                values[i].append(value)
        skus.append(_sku_json(sku, combo))
    return {
        "specs": [{"name": n, "values": v} for n, v in zip(names, values, strict=True)],
        "skus": skus,
        "purchase_limit": product.purchase_limit,  # 0 = none
    }


def _sku_json(sku: Sku, combo: list[str]) -> dict:
    return {
        "id": sku.id,
        "values": combo,
        "price_fen": sku.price_fen,
        "original_price_fen": sku.original_price_fen,
        "stock": sku.stock,
    }


def price_summary(product: Product) -> dict:
    """Display prices of a product: lowest price, whether it is "from", struck original."""
    prices = [s.price_fen for s in product.skus]
    low = min(prices, default=0)
    original = product.max_original_price_fen
    return {
        "price_fen": low,
        "from": len(set(prices)) > 1,
        "original_fen": original if original > low else None,
    }
