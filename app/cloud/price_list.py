"""An ordering merchant's price list by product: what 我的价格表 and 代客下单 show.

One row per product on the shelf, its SKUs folded inside, with the merchant's level price
beside retail. Searched by title (or SKU code), paged by product (``PER_PAGE``), loaded
with three queries per page whatever the number of SKUs: the products, their SKUs, and
the set prices of those SKUs. Prices come from ``pricing.level_prices``, the same rule
orders use, so the list and the order never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from app.catalog.models import Product, Sku
from app.cloud.pricing import level_prices, list_levels, set_prices
from app.extensions import db

PER_PAGE = 10
MAX_PAGE = 500
MAX_QUERY = 30


@dataclass(frozen=True)
class SkuPrice:
    """One SKU of a product row: spec text, retail, my price, stock."""

    sku: Sku
    spec: str
    retail_fen: int
    price_fen: int
    stock: int

    @property
    def margin_fen(self) -> int:
        return self.retail_fen - self.price_fen

    @property
    def sold_out(self) -> bool:
        return self.stock <= 0


@dataclass(frozen=True)
class ProductPrices:
    """A product with its SKUs at one level."""

    product: Product
    skus: list[SkuPrice]

    @property
    def price_range(self) -> tuple[int, int]:
        prices = [s.price_fen for s in self.skus]
        return min(prices), max(prices)

    @property
    def retail_range(self) -> tuple[int, int]:
        prices = [s.retail_fen for s in self.skus]
        return min(prices), max(prices)

    @property
    def stock(self) -> int:
        return sum(s.stock for s in self.skus)

    @property
    def single(self) -> bool:
        """One SKU without specifications: nothing to fold."""
        return len(self.skus) == 1 and not self.skus[0].sku.specs


@dataclass(frozen=True)
class PricePage:
    rows: list[ProductPrices]
    page: int
    has_next: bool
    q: str


def clean_query(raw: str | None) -> str:
    """What the merchant typed, trimmed and shortened (may be empty)."""
    return " ".join((raw or "").split())[:MAX_QUERY]


def price_page(level: int, q: str = "", page: int = 1, per_page: int = PER_PAGE) -> PricePage:
    """Products on the shelf matching ``q`` with their SKUs at ``level``, one page."""
    q = clean_query(q)
    page = max(1, page)
    if page > MAX_PAGE:
        return PricePage([], page, False, q)
    query = (
        select(Product)
        .where(Product.on_shelf.is_(True), Product.skus.any())
        .options(selectinload(Product.skus), selectinload(Product.images))
        .order_by(Product.sort, Product.id.desc())
    )
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        code_match = select(Sku.product_id).where(Sku.code.ilike(pattern, escape="\\"))
        query = query.where(
            or_(Product.title.ilike(pattern, escape="\\"), Product.id.in_(code_match))
        )
    products = list(db.session.scalars(query.limit(per_page + 1).offset((page - 1) * per_page)))
    has_next = len(products) > per_page
    products = products[:per_page]
    levels = list_levels()
    fixed = set_prices([s.id for p in products for s in p.skus])
    rows = []
    for product in products:
        skus = []
        for sku in product.skus:
            price = level_prices(sku.id, sku.price_fen, levels, fixed).get(level)
            if price is None:
                continue
            skus.append(SkuPrice(sku, sku.spec_text, sku.price_fen, price, sku.stock))
        if skus:
            rows.append(ProductPrices(product, skus))
    return PricePage(rows, page, has_next, q)
