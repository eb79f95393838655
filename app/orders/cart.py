"""The cart: SKUs and quantities only. Prices, shelf and stock are re-read every time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import selectinload

from app.catalog.models import Product, Sku
from app.core.sql import dialect_insert
from app.discounts.pricing import unit_prices
from app.extensions import db
from app.orders.limits import limit_problems
from app.orders.models import CartItem
from app.orders.services import (
    MAX_LINES,
    MAX_QUANTITY,
    OrderError,
    get_settings,
    shipping_fee_for,
)


@dataclass
class CartLine:
    """A cart row as shown: current price, availability and the line amount."""

    item: CartItem
    sku: Sku
    available: bool  # on shelf and enough stock for the quantity
    problem: str  # why not available, in Chinese ("" when available)
    unit_price_fen: int = 0  # now (a timed discount included: app/discounts/pricing.py)

    @property
    def invalid(self) -> bool:
        """失效: off the shelf or sold out, shown apart from the lines one can still tick."""
        return not self.sku.product.on_shelf or self.sku.stock == 0

    @property
    def buyable(self) -> bool:
        """Ticked and available: what checkout from the cart takes."""
        return self.available and self.item.selected

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.item.quantity


@dataclass
class CartView:
    """The whole cart with totals over the ticked, available lines."""

    lines: list[CartLine]
    items_fen: int
    shipping_fen: int

    @property
    def total_fen(self) -> int:
        return self.items_fen + self.shipping_fen

    @property
    def count(self) -> int:
        return sum(line.item.quantity for line in self.lines)

    @property
    def valid_lines(self) -> list[CartLine]:
        return [line for line in self.lines if not line.invalid]

    @property
    def invalid_lines(self) -> list[CartLine]:
        return [line for line in self.lines if line.invalid]

    @property
    def buyable_lines(self) -> list[CartLine]:
        return [line for line in self.lines if line.buyable]

    @property
    def buyable_count(self) -> int:
        return sum(line.item.quantity for line in self.buyable_lines)

    @property
    def all_selected(self) -> bool:
        """全选 is on: every line that is not 失效 is ticked (and there is one)."""
        valid = self.valid_lines
        return bool(valid) and all(line.item.selected for line in valid)


def _check_quantity(quantity: int) -> None:
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise OrderError("invalid_quantity", "购买数量不正确")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise OrderError("invalid_quantity", f"购买数量需为 1-{MAX_QUANTITY} 件")


def _buyable_sku(sku_id: int) -> Sku:
    sku = db.session.get(Sku, sku_id) if isinstance(sku_id, int) else None
    if sku is None or not sku.product.on_shelf:
        raise OrderError("unavailable", "商品已下架或不存在", status=409)
    return sku


def add_to_cart(user_id: int, sku_id: int, quantity: int) -> CartItem:
    """Add ``quantity`` of a SKU (merging with what is there), within stock.

    One atomic upsert (``quantity = quantity + n``) so two taps at once never lose one;
    the result is checked afterwards and the caller rolls back on OrderError.
    """
    _check_quantity(quantity)
    sku = _buyable_sku(sku_id)
    lines = db.session.scalar(select(func.count(CartItem.id)).where(CartItem.user_id == user_id))
    db.session.execute(
        dialect_insert(CartItem)
        .values(user_id=user_id, sku_id=sku.id, quantity=quantity)
        .on_conflict_do_update(
            index_elements=["user_id", "sku_id"],
            # Adding a SKU again ticks it: the customer just chose it.
            set_={"quantity": CartItem.quantity + quantity, "selected": True},
        )
    )
    item = db.session.scalar(
        select(CartItem)
        .where(CartItem.user_id == user_id, CartItem.sku_id == sku.id)
        .execution_options(populate_existing=True)
    )
    if item.quantity == quantity and lines >= MAX_LINES:
        raise OrderError("too_many_items", f"购物车最多 {MAX_LINES} 种商品")
    _check_quantity(item.quantity)
    if item.quantity > sku.stock:
        raise OrderError("sold_out", f"库存不足，仅剩 {sku.stock} 件", status=409)
    _check_limit(user_id, sku)
    return item


def set_cart_quantity(user_id: int, sku_id: int, quantity: int) -> None:
    """Set a cart row's quantity (0 removes it)."""
    if quantity == 0:
        remove_from_cart(user_id, sku_id)
        return
    _check_quantity(quantity)
    item = db.session.scalar(
        select(CartItem).where(CartItem.user_id == user_id, CartItem.sku_id == sku_id)
    )
    if item is None:
        raise OrderError("not_found", "购物车里没有这件商品", status=404)
    sku = _buyable_sku(sku_id)
    if quantity > sku.stock:
        raise OrderError("sold_out", f"库存不足，仅剩 {sku.stock} 件", status=409)
    item.quantity = quantity
    db.session.flush()
    _check_limit(user_id, sku)


def _in_cart(user_id: int, product_id: int) -> int:
    """Units of a product in the cart, over all its SKUs."""
    return db.session.scalar(
        select(func.coalesce(func.sum(CartItem.quantity), 0))
        .join(Sku, Sku.id == CartItem.sku_id)
        .where(CartItem.user_id == user_id, Sku.product_id == product_id)
    )


def _check_limit(user_id: int, sku: Sku) -> None:
    """Refuse a cart whose units of the product would pass its purchase limit (限购).

    A courtesy: the cart holds no stock, and placing the order checks again under a lock.
    """
    if not sku.product.purchase_limit:
        return
    wanted = _in_cart(user_id, sku.product_id)
    problem = limit_problems(user_id, [(sku.product, wanted)]).get(sku.product_id)
    if problem:
        raise OrderError("purchase_limit_exceeded", problem, status=409)


def remove_from_cart(user_id: int, sku_id: int) -> None:
    """Remove a SKU from the cart (nothing happens if it is not there)."""
    db.session.execute(
        delete(CartItem).where(CartItem.user_id == user_id, CartItem.sku_id == sku_id)
    )
    db.session.flush()


def set_selected(user_id: int, sku_ids: list[int] | None, selected: bool) -> None:
    """Tick or untick cart lines: the given SKUs, or every line (全选) when ``sku_ids`` is
    None. SKUs not in the cart are ignored."""
    statement = update(CartItem).where(CartItem.user_id == user_id)
    if sku_ids is not None:
        statement = statement.where(CartItem.sku_id.in_(sku_ids))
    db.session.execute(statement.values(selected=selected))
    db.session.flush()


def remove_many(user_id: int, sku_ids: list[int]) -> None:
    """Remove several SKUs at once (编辑 mode's 删除); others' carts are never touched."""
    if sku_ids:
        db.session.execute(
            delete(CartItem).where(CartItem.user_id == user_id, CartItem.sku_id.in_(sku_ids))
        )
        db.session.flush()


def cart_count(user_id: int) -> int:
    """Units in the cart (the tab bar's badge), without loading the lines."""
    return db.session.scalar(
        select(func.coalesce(func.sum(CartItem.quantity), 0)).where(CartItem.user_id == user_id)
    )


def view_cart(user_id: int) -> CartView:
    """The cart with current prices; totals count only ticked, available lines."""
    items = db.session.scalars(
        select(CartItem)
        .where(CartItem.user_id == user_id)
        .order_by(CartItem.id.desc())
        .options(selectinload(CartItem.sku).selectinload(Sku.product).selectinload(Product.images))
    ).all()
    over_limit = limit_problems(user_id, [(item.sku.product, item.quantity) for item in items])
    prices = unit_prices([item.sku for item in items])
    lines = []
    for item in items:
        sku = item.sku
        if not sku.product.on_shelf:
            problem = "已下架"
        elif sku.stock == 0:
            problem = "已售罄"
        elif item.quantity > sku.stock:
            problem = f"库存不足，仅剩 {sku.stock} 件"
        else:
            problem = over_limit.get(sku.product_id, "")
        lines.append(
            CartLine(
                item=item,
                sku=sku,
                available=not problem,
                problem=problem,
                unit_price_fen=prices[sku.id].price_fen,
            )
        )
    items_fen = sum(line.amount_fen for line in lines if line.buyable)
    shipping = shipping_fee_for(items_fen, get_settings()) if items_fen else 0
    return CartView(lines=lines, items_fen=items_fen, shipping_fen=shipping)
