"""Catalog operations shared by the admin pages, the Open API and the demo seed.

Each function validates what it is given (messages in Chinese, naming the field), changes
rows and flushes; the caller commits. Prices are integers in fen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select, update

from app.catalog.models import Category, Product, Sku
from app.catalog.rich_text import sanitize
from app.extensions import db

MAX_PRICE_FEN = 10_000_000_00  # ¥10,000,000.00: anything above is a typo
MAX_STOCK = 10_000_000
MAX_SPECS = 3
MAX_SKUS = 200
MAX_PURCHASE_LIMIT = 999  # the most one order may hold of a SKU: a higher limit limits nothing


class CatalogError(ValueError):
    """Input the catalog refuses. ``field`` names the offending input for forms and JSON."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass
class SkuInput:
    """One SKU as a form or JSON body gives it. ``id`` set means "update that SKU"."""

    specs: dict[str, str]
    price_fen: int
    original_price_fen: int = 0
    stock: int = 0
    code: str | None = None
    id: int | None = None


@dataclass
class ProductInput:
    """A whole product as a form or JSON body gives it."""

    title: str
    skus: list[SkuInput]
    spec_names: list[str] = field(default_factory=list)
    subtitle: str = ""
    description: str = ""
    category_id: int | None = None
    on_shelf: bool = True
    featured: bool = False
    sort: int = 0
    purchase_limit: int = 0  # 限购 per customer; 0 = none


# --- categories -------------------------------------------------------------------------


def save_category(name: str, sort: int = 0, category: Category | None = None) -> Category:
    """Create a category, or rename/re-sort ``category``. Names are unique."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 32:
        raise CatalogError("分类名称需为 1-32 个字", "name")
    clash = db.session.scalar(select(Category).where(Category.name == name))
    if clash is not None and clash is not category:
        raise CatalogError(f"分类“{name}”已存在", "name")
    if category is None:
        category = Category()
        db.session.add(category)
    category.name = name
    category.sort = int(sort)
    db.session.flush()
    return category


def delete_category(category: Category) -> None:
    """Delete a category; its products stay, uncategorised."""
    db.session.execute(
        update(Product).where(Product.category_id == category.id).values(category_id=None)
    )
    db.session.delete(category)
    db.session.flush()


# --- products ---------------------------------------------------------------------------


def create_product(data: ProductInput) -> Product:
    """Create a product with its SKUs after validating all of it."""
    product = Product()
    _apply(product, data)
    return product


def update_product(product: Product, data: ProductInput) -> Product:
    """Replace a product's fields and SKUs with ``data``.

    SKUs in ``data`` with an ``id`` of this product are updated in place (so their ids,
    and later the orders pointing at them, stay); SKUs without an id are added; this
    product's SKUs missing from ``data`` are removed.
    """
    _apply(product, data)
    return product


def _apply(product: Product, data: ProductInput) -> None:
    # No autoflush while validating: a half-filled product must never reach the database.
    with db.session.no_autoflush:
        _fill(product, data)
    db.session.add(product)
    db.session.flush()


def _fill(product: Product, data: ProductInput) -> None:
    title = (data.title or "").strip()
    if not 1 <= len(title) <= 100:
        raise CatalogError("商品名称需为 1-100 个字", "title")
    if len(data.subtitle or "") > 200:
        raise CatalogError("副标题最多 200 个字", "subtitle")
    description = sanitize(data.description)  # rich text: app/catalog/rich_text.py
    if len(description) > 20_000:
        raise CatalogError("商品详情最多 20000 个字", "description")
    if data.category_id is not None and db.session.get(Category, data.category_id) is None:
        raise CatalogError("所选分类不存在", "category_id")
    limit = data.purchase_limit or 0
    if type(limit) is not int or not 0 <= limit <= MAX_PURCHASE_LIMIT:  # bool is no count
        message = f"限购数量需为 0-{MAX_PURCHASE_LIMIT} 件（0 表示不限购）"
        raise CatalogError(message, "purchase_limit")
    spec_names = _clean_spec_names(data.spec_names)
    skus = _clean_skus(spec_names, data.skus)

    product.title = title
    product.subtitle = (data.subtitle or "").strip()
    product.description = description
    product.category_id = data.category_id
    product.spec_names = spec_names
    product.featured = bool(data.featured)
    product.sort = int(data.sort or 0)
    product.purchase_limit = limit

    existing = {sku.id: sku for sku in product.skus if sku.id is not None}
    kept: list[Sku] = []
    for item in skus:
        if item.id is not None:
            sku = existing.get(item.id)
            if sku is None:
                raise CatalogError(f"规格 {item.id} 不属于该商品", "skus")
        else:
            sku = Sku()
        sku.specs = item.specs
        sku.price_fen = item.price_fen
        sku.original_price_fen = item.original_price_fen
        sku.stock = item.stock
        sku.code = item.code
        kept.append(sku)
    product.skus = kept  # delete-orphan removes the SKUs left out
    product.on_shelf = bool(data.on_shelf)
    _check_codes_unique(kept)


def _clean_spec_names(names: list[str]) -> list[str]:
    cleaned = [(n or "").strip() for n in names or []]
    if len(cleaned) > MAX_SPECS:
        raise CatalogError(f"规格项最多 {MAX_SPECS} 个", "spec_names")
    if any(not 1 <= len(n) <= 10 for n in cleaned):
        raise CatalogError("规格名称需为 1-10 个字", "spec_names")
    if len(set(cleaned)) != len(cleaned):
        raise CatalogError("规格名称不能重复", "spec_names")
    return cleaned


def _clean_skus(spec_names: list[str], skus: list[SkuInput]) -> list[SkuInput]:
    if not skus:
        raise CatalogError("至少需要一个规格（SKU）", "skus")
    if len(skus) > MAX_SKUS:
        raise CatalogError(f"规格组合最多 {MAX_SKUS} 个", "skus")
    if not spec_names and len(skus) > 1:
        raise CatalogError("没有规格项的商品只能有一个 SKU", "skus")
    seen: set[tuple[str, ...]] = set()
    cleaned = []
    for index, sku in enumerate(skus, start=1):
        specs = {str(k).strip(): str(v).strip() for k, v in (sku.specs or {}).items()}
        if set(specs) != set(spec_names):
            raise CatalogError(f"第 {index} 个 SKU 的规格项与商品规格不一致", "skus")
        if any(not 1 <= len(v) <= 20 for v in specs.values()):
            raise CatalogError(f"第 {index} 个 SKU 的规格值需为 1-20 个字", "skus")
        key = tuple(specs[n] for n in spec_names)
        if key in seen:
            raise CatalogError(f"规格组合“{' / '.join(key)}”重复", "skus")
        seen.add(key)
        for name, value, upper in (
            ("价格", sku.price_fen, MAX_PRICE_FEN),
            ("原价", sku.original_price_fen, MAX_PRICE_FEN),
            ("库存", sku.stock, MAX_STOCK),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= upper:
                raise CatalogError(f"第 {index} 个 SKU 的{name}不正确", "skus")
        code = (sku.code or "").strip() or None
        if code is not None and len(code) > 64:
            raise CatalogError(f"第 {index} 个 SKU 的编码最多 64 个字符", "skus")
        cleaned.append(
            SkuInput(
                specs=specs,
                price_fen=sku.price_fen,
                original_price_fen=sku.original_price_fen,
                stock=sku.stock,
                code=code,
                id=sku.id,
            )
        )
    codes = [s.code for s in cleaned if s.code]
    if len(codes) != len(set(codes)):
        raise CatalogError("SKU 编码不能重复", "skus")
    return cleaned


def _check_codes_unique(skus: list[Sku]) -> None:
    """SKU codes are unique across the shop (the unique index is the final guard)."""
    codes = [s.code for s in skus if s.code]
    if not codes:
        return
    own_ids = [s.id for s in skus if s.id is not None]
    query = select(Sku.code).where(Sku.code.in_(codes))
    if own_ids:
        query = query.where(Sku.id.not_in(own_ids))
    taken = set(db.session.scalars(query))
    for code in codes:  # report the first clash in the order the merchant typed them
        if code in taken:
            raise CatalogError(f"SKU 编码“{code}”已被其他商品使用", "skus")


def set_on_shelf(product: Product, on_shelf: bool) -> None:
    """Put a product on or off the shelf."""
    product.on_shelf = bool(on_shelf)
    db.session.flush()


def set_stock(sku: Sku, stock: int) -> None:
    """Set a SKU's stock to an absolute count (a staff stock-take)."""
    if not isinstance(stock, int) or isinstance(stock, bool) or not 0 <= stock <= MAX_STOCK:
        raise CatalogError(f"库存需为 0-{MAX_STOCK} 的整数", "stock")
    db.session.execute(update(Sku).where(Sku.id == sku.id).values(stock=stock))
    db.session.refresh(sku)


def adjust_stock(sku: Sku, delta: int) -> None:
    """Add ``delta`` (may be negative) to a SKU's stock in one conditional update.

    The WHERE clause refuses a change that would go below zero, so concurrent adjustments
    (and, later, order reservations) can never make stock negative.
    """
    if not isinstance(delta, int) or isinstance(delta, bool) or abs(delta) > MAX_STOCK:
        raise CatalogError("库存调整数量不正确", "stock")
    result = db.session.execute(
        update(Sku)
        .where(Sku.id == sku.id, Sku.stock + delta >= 0, Sku.stock + delta <= MAX_STOCK)
        .values(stock=Sku.stock + delta)
    )
    if result.rowcount != 1:
        raise CatalogError("库存不足，无法减少这么多", "stock")
    db.session.refresh(sku)


def count_products() -> int:
    """How many products exist (on or off the shelf)."""
    return db.session.scalar(select(func.count(Product.id))) or 0
