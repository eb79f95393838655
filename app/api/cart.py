"""The customer's cart over JSON. Only SKUs and quantities are kept; every answer re-reads
prices, shelf and stock (app.orders.cart.view_cart), and totals count available lines only."""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictBool, StrictInt
from spectree import Response

from app.accounts.guards import customer_id, customer_required
from app.api.blueprints import bp
from app.api.orders import order_errors
from app.api.present import media_url
from app.api.schemas import MAX_ID, Body, ErrorResponse, Id
from app.api.spec import COOKIE, spec
from app.core.errors import ApiError
from app.extensions import db
from app.orders.cart import (
    CartView,
    add_to_cart,
    remove_from_cart,
    remove_many,
    set_cart_quantity,
    set_selected,
    view_cart,
)
from app.orders.services import MAX_LINES, MAX_QUANTITY, get_settings

TAGS = ["cart"]
SECURITY = {COOKIE: []}
ERRORS = {"HTTP_401": ErrorResponse}
BODY_ERRORS = {
    **ERRORS,
    "HTTP_400": ErrorResponse,
    "HTTP_404": ErrorResponse,
    "HTTP_409": ErrorResponse,
    "HTTP_422": ErrorResponse,
}
SKU_ID = "<int:sku_id>"


class CartItemAdd(Body):
    sku_id: Id
    quantity: StrictInt = Field(1, ge=1, le=MAX_QUANTITY, description="加入的件数（与已有的相加）")


class CartItemPatch(Body):
    quantity: StrictInt = Field(ge=0, le=MAX_QUANTITY, description="新的件数；0 表示移出购物车")


class CartSelection(Body):
    sku_ids: list[Id] | None = Field(
        None, max_length=MAX_LINES, description="要勾选或取消的 SKU；不填表示全部（全选）"
    )
    selected: StrictBool = Field(description="勾选 true，取消 false")


class CartRemove(Body):
    sku_ids: list[Id] = Field(min_length=1, max_length=MAX_LINES, description="要删除的 SKU")


class CartLineOut(BaseModel):
    sku_id: int
    product_id: int
    title: str
    spec_text: str
    image_url: str | None
    price_fen: int = Field(description="当前价格")
    quantity: int
    amount_fen: int
    stock: int
    available: bool = Field(description="在售且库存足够")
    problem: str = Field(description="不可购买的原因，如 已下架、已售罄")
    selected: bool = Field(description="已勾选（结算只算勾选且可购买的商品）")
    invalid: bool = Field(description="失效：已下架或已售罄")


class CartOut(BaseModel):
    items: list[CartLineOut]
    count: int = Field(description="购物车内商品总件数")
    selected_count: int = Field(description="勾选且可购买的件数")
    all_selected: bool = Field(description="未失效的商品是否全部勾选")
    items_fen: int = Field(description="勾选且可购买的商品合计")
    shipping_fen: int
    total_fen: int
    shipping_fee_fen: int = Field(description="运费规则：每单运费")
    free_shipping_over_fen: int = Field(description="运费规则：满多少包邮（0 表示不包邮）")


def cart_out(cart: CartView) -> CartOut:
    """The cart as the API shows it, with the shop's shipping rule."""
    settings = get_settings()
    return CartOut(
        items=[
            CartLineOut(
                sku_id=line.sku.id,
                product_id=line.sku.product_id,
                title=line.sku.product.title,
                spec_text=line.sku.spec_text if line.sku.specs else "",
                image_url=media_url(line.sku.product.cover.filename)
                if line.sku.product.cover
                else None,
                price_fen=line.unit_price_fen,
                quantity=line.item.quantity,
                amount_fen=line.amount_fen,
                stock=line.sku.stock,
                available=line.available,
                problem=line.problem,
                selected=line.item.selected,
                invalid=line.invalid,
            )
            for line in cart.lines
        ],
        count=cart.count,
        selected_count=cart.buyable_count,
        all_selected=cart.all_selected,
        items_fen=cart.items_fen,
        shipping_fen=cart.shipping_fen,
        total_fen=cart.total_fen,
        shipping_fee_fen=settings.shipping_fee_fen,
        free_shipping_over_fen=settings.free_shipping_over_fen,
    )


@bp.get("/cart")
@customer_required
@spec.validate(resp=Response(HTTP_200=CartOut, **ERRORS), tags=TAGS, security=SECURITY)
def get_cart():
    """The cart with current prices; unavailable lines are listed but not counted."""
    return cart_out(view_cart(customer_id()))


@bp.post("/cart/items")
@customer_required
@spec.validate(resp=Response(HTTP_200=CartOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def add_item(json: CartItemAdd):
    """Add a SKU (merged with what is there, within stock); answers the whole cart."""
    with order_errors():
        add_to_cart(customer_id(), json.sku_id, json.quantity)
        db.session.commit()
    return cart_out(view_cart(customer_id()))


@bp.patch(f"/cart/items/{SKU_ID}")
@customer_required
@spec.validate(resp=Response(HTTP_200=CartOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def set_item(sku_id: int, json: CartItemPatch):
    """Set a line's quantity (0 removes it); 404 when the SKU is not in the cart."""
    if sku_id > MAX_ID:
        raise ApiError(404, "not_found", "购物车里没有这件商品")
    with order_errors():
        set_cart_quantity(customer_id(), sku_id, json.quantity)
        db.session.commit()
    return cart_out(view_cart(customer_id()))


@bp.delete(f"/cart/items/{SKU_ID}")
@customer_required
@spec.validate(resp=Response(HTTP_200=CartOut, **ERRORS), tags=TAGS, security=SECURITY)
def delete_item(sku_id: int):
    """Remove a SKU from the cart (also fine when it is not there)."""
    if sku_id <= MAX_ID:
        remove_from_cart(customer_id(), sku_id)
        db.session.commit()
    return cart_out(view_cart(customer_id()))


@bp.put("/cart/selection")
@customer_required
@spec.validate(resp=Response(HTTP_200=CartOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def select_items(json: CartSelection):
    """Tick or untick lines (``sku_ids``), or all of them (全选) when ``sku_ids`` is omitted."""
    set_selected(customer_id(), json.sku_ids, json.selected)
    db.session.commit()
    return cart_out(view_cart(customer_id()))


@bp.post("/cart/remove")
@customer_required
@spec.validate(resp=Response(HTTP_200=CartOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def remove_items(json: CartRemove):
    """Remove several SKUs at once (编辑 mode); SKUs not in the cart are ignored."""
    remove_many(customer_id(), json.sku_ids)
    db.session.commit()
    return cart_out(view_cart(customer_id()))
