"""The catalog: categories, products, their images and SKUs.

A product has specification names (e.g. 颜色, 尺码); each SKU is one combination of values
with its own price, original price, stock and code. Prices are integers in fen.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.time import UtcDateTime, utcnow
from app.extensions import db


class Category(db.Model):
    """A shelf section such as 女装 or 家居."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    sort: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    products: Mapped[list[Product]] = relationship(back_populates="category")


class Product(db.Model):
    """A product; what is sold is one of its SKUs."""

    __tablename__ = "products"
    __table_args__ = (Index("ix_products_shelf_sort", "on_shelf", "sort"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(100))
    subtitle: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    # Specification names in display order, e.g. ["颜色", "尺码"]; [] for a single SKU.
    spec_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    on_shelf: Mapped[bool] = mapped_column(default=True)
    featured: Mapped[bool] = mapped_column(default=False)
    sort: Mapped[int] = mapped_column(default=0)
    # 限购: at most this many units per customer over their unpaid and paid orders,
    # refunded units not counted (app/orders/limits.py); 0 = no limit.
    purchase_limit: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)

    category: Mapped[Category | None] = relationship(back_populates="products")
    images: Mapped[list[ProductImage]] = relationship(
        back_populates="product", order_by="ProductImage.sort", cascade="all, delete-orphan"
    )
    skus: Mapped[list[Sku]] = relationship(
        back_populates="product", order_by="Sku.id", cascade="all, delete-orphan"
    )

    @property
    def min_price_fen(self) -> int:
        """The lowest SKU price, shown as "from" on lists (0 with no SKU)."""
        return min((s.price_fen for s in self.skus), default=0)

    @property
    def max_original_price_fen(self) -> int:
        return max((s.original_price_fen for s in self.skus), default=0)

    @property
    def total_stock(self) -> int:
        return sum(s.stock for s in self.skus)

    @property
    def cover(self) -> ProductImage | None:
        return self.images[0] if self.images else None


class ProductImage(db.Model):
    """An image file under UPLOAD_DIR, shown in the product's gallery in ``sort`` order."""

    __tablename__ = "product_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(128))
    width: Mapped[int] = mapped_column(default=0)
    height: Mapped[int] = mapped_column(default=0)
    sort: Mapped[int] = mapped_column(default=0)

    product: Mapped[Product] = relationship(back_populates="images")


class Sku(db.Model):
    """One buyable combination of specification values, with price and stock."""

    __tablename__ = "skus"
    __table_args__ = (
        CheckConstraint("price_fen >= 0", name="price_not_negative"),
        CheckConstraint("original_price_fen >= 0", name="original_price_not_negative"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    # Values by specification name, e.g. {"颜色": "红", "尺码": "M"}; {} for a single SKU.
    specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    price_fen: Mapped[int]
    original_price_fen: Mapped[int] = mapped_column(default=0)
    stock: Mapped[int] = mapped_column(default=0)
    code: Mapped[str | None] = mapped_column(String(64), unique=True)

    product: Mapped[Product] = relationship(back_populates="skus")

    @property
    def spec_text(self) -> str:
        """Human text of the specification values in the product's order: '红 / M'."""
        names = self.product.spec_names if self.product else list(self.specs)
        return " / ".join(self.specs.get(n, "") for n in names) or "默认"


class ProductPageSettings(db.Model):
    """What every product page says besides the product: one row (id 1), owner-edited.

    ``promises`` are the service promises under the title (正品保障, 48小时发货...): the
    merchant's own words, since each one is a commitment the shop must keep. No row, or an
    empty list, shows none.
    """

    __tablename__ = "product_page_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    promises: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class StagedImage(db.Model):
    """An image uploaded for a product that is not saved yet (the new-product form).

    ``batch`` is the random id inside the form's signed staging token; saving the product
    with that token moves the batch's files into the gallery (app/catalog/staging.py).
    Rows left behind by a form that was never saved are removed after a day.
    """

    __tablename__ = "staged_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch: Mapped[str] = mapped_column(String(32), index=True)
    filename: Mapped[str] = mapped_column(String(128))
    width: Mapped[int] = mapped_column(default=0)
    height: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
