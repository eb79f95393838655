"""Customer H5 pages of the order flow: cart, checkout, addresses, pay, orders and refunds.

Thin, uncached views (every page here belongs to one visitor). They read and render;
every change goes through the JSON API (app/api/cart.py, addresses.py, orders.py) from
static/js/orders.js with the ``X-CSRFToken`` header, so the rules live in one place.
The catalog pages are cached for everybody, so they learn who is signed in (and get a
CSRF token) from ``GET /cart/session`` instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Blueprint, abort, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from sqlalchemy import func, select

from app.accounts.guards import page_customer_id
from app.accounts.oauth import safe_next
from app.catalog.models import Product, Sku
from app.core.branding import shop_name
from app.core.params import MAX_ID, bounded_int
from app.core.time import shop_time_text, utcnow
from app.discounts.pricing import unit_price
from app.extensions import db
from app.orders.addresses import default_address, list_addresses
from app.orders.aftersale import badge as aftersale_badge
from app.orders.cart import add_to_cart, cart_count, view_cart
from app.orders.limits import (
    UNPAID_ORDERS_PATH,
    bought_quantities,
    limit_problems,
    unpaid_order_count,
    unpaid_orders_message,
)
from app.orders.models import (
    OPEN_REFUND_STATUSES,
    PAID,
    PENDING_PAYMENT,
    SHIPPED,
    Address,
    Order,
    OrderLine,
    Refund,
)
from app.orders.queries import (
    REFUND_TAB,
    customer_orders,
    order_history,
    own_order_or_404,
    refunds_by_line,
)
from app.orders.refunds import refundable_quantity
from app.orders.services import MAX_QUANTITY, OrderError, get_settings, shipping_fee_for
from app.orders.states import ORDER_STATUS_LABELS, REFUND_STATUS_LABELS

bp = Blueprint("orders", __name__)

PER_PAGE = 10
# The tabs of /orders: (value of ?status=, label). "refund" lists orders with refunds.
TABS = (
    ("all", "全部"),
    (PENDING_PAYMENT, "待付款"),
    (PAID, "待发货"),
    (SHIPPED, "待收货"),
    ("completed", "已完成"),
    (REFUND_TAB, "退款"),
)
REFUND_REASONS = ("不想要了", "拍错/多拍", "商品质量问题", "商品与描述不符", "少件/漏发", "其他")


@bp.context_processor
def order_globals() -> dict:
    """Names every order template may use."""
    return {
        "shop_name": shop_name(),
        "order_labels": ORDER_STATUS_LABELS,
        "refund_labels": REFUND_STATUS_LABELS,
    }


@bp.app_context_processor
def my_order_counts_global() -> dict:
    """``my_order_counts()`` for the shop's "my" page (computed only when called)."""
    return {"my_order_counts": my_order_counts}


@bp.app_template_filter("cn_time")
def cn_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time shown in China time (the shop's customers are there)."""
    return shop_time_text(moment, fmt)


def my_order_counts() -> dict[str, int]:
    """Counts for the "my" page shortcuts: per status, and orders with an open refund."""
    person = current_user
    if not getattr(person, "is_authenticated", False) or person.is_staff:
        return {}
    counts = dict(
        db.session.execute(
            select(Order.status, func.count(Order.id))
            .where(Order.user_id == person.id)
            .group_by(Order.status)
        ).all()
    )
    counts["refund"] = db.session.scalar(
        select(func.count(func.distinct(Refund.order_id)))
        .join(Order, Order.id == Refund.order_id)
        .where(Order.user_id == person.id, Refund.status.in_(OPEN_REFUND_STATUSES))
    )
    return counts


def _customer_id() -> int:
    """The signed-in customer; staff previewing the shop have no cart or orders."""
    return page_customer_id("后再购物")


def _own_order(order_id: int) -> Order:
    return own_order_or_404(order_id, _customer_id())


def _int_arg(name: str, default: int | None = None, high: int = MAX_ID) -> int | None:
    value = bounded_int(request.args.get(name), high)
    return default if value is None else value


# --- cart -----------------------------------------------------------------------------------


@bp.get("/cart/session")
def cart_session():
    """Who is here, for cached pages: signed in?, a CSRF token, the cart count. Never cached.

    With ``?product_id=`` of a product with a purchase limit (限购), also ``purchase``:
    the limit, what the customer has bought of it, what remains and whether it is reached.
    """
    person = current_user
    if not person.is_authenticated or person.is_staff:
        body = {"signed_in": False}
        if request.args.get("intent") == "1":
            # 加入购物车 while signed out: a token for POST /cart/intent (asked only then,
            # so plain visits to the cached pages still get no session cookie).
            body["csrf_token"] = generate_csrf()
    else:
        body = {
            "signed_in": True,
            "csrf_token": generate_csrf(),
            "cart_count": view_cart(person.id).count,
        }
        product_id = _int_arg("product_id")
        product = db.session.get(Product, product_id) if product_id else None
        if product is not None and product.purchase_limit:
            limit = product.purchase_limit
            bought = bought_quantities(person.id, [product.id]).get(product.id, 0)
            body["purchase"] = {
                "limit": limit,
                "bought": bought,
                "remaining": max(0, limit - bought),
                "reached": bought >= limit,
            }
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/cart/count")
def cart_count_view():
    """Units in the cart for the tab bar's badge (static/js/cart-badge.js): the tab pages
    are cached for everybody, so the badge is filled in by the browser. Never cached."""
    person = current_user
    signed_in = person.is_authenticated and not person.is_staff
    response = jsonify(count=cart_count(person.id) if signed_in else 0)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/cart")
@login_required
def cart():
    """The cart (a tab): tick lines, 全选, 编辑 to delete several, 失效 lines apart; the
    total and 去结算 count only ticked lines that can be bought."""
    view = view_cart(_customer_id())
    return render_template("orders/cart.html", cart=view, settings=get_settings(), tab="cart")


SESSION_CART_INTENT = "cart_intent"


@bp.post("/cart/intent")
def cart_intent():
    """加入购物车 while signed out: keep the chosen SKU and quantity in the (signed)
    session and answer where to sign in; ``GET /cart/intent`` adds it once signed in.

    JSON ``{"sku_id", "quantity"}`` with the ``X-CSRFToken`` header (from
    ``/cart/session?intent=1``). Answers ``{"login_url"}``.
    """
    data = request.get_json(silent=True)
    data = data if isinstance(data, dict) else {}
    sku_id, quantity = data.get("sku_id"), data.get("quantity", 1)
    valid = all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= high
        for v, high in ((sku_id, MAX_ID), (quantity, MAX_QUANTITY))
    )
    sku = db.session.get(Sku, sku_id) if valid else None
    if sku is None or not sku.product.on_shelf:
        error = {"code": "unavailable", "message": "商品已下架或不存在"}
        return jsonify(error=error), 400 if not valid else 409
    session[SESSION_CART_INTENT] = {
        "sku_id": sku.id,
        "quantity": quantity,
        "back": url_for("shop.product", product_id=sku.product_id),
    }
    return jsonify(login_url=url_for("accounts.login", next=url_for("orders.cart_intent_replay")))


@bp.get("/cart/intent")
@login_required
def cart_intent_replay():
    """Back from the WeChat sign-in: add the kept SKU (once) and return to its product page,
    which then says 已加入购物车. Nothing kept: the cart."""
    user_id = _customer_id()
    intent = session.pop(SESSION_CART_INTENT, None)
    if not isinstance(intent, dict):
        return redirect(url_for("orders.cart"))
    try:
        add_to_cart(user_id, intent.get("sku_id"), intent.get("quantity"))
    except OrderError as err:
        db.session.rollback()
        abort(err.status if err.status in (400, 404, 409) else 409, description=err.message)
    db.session.commit()
    return redirect(f"{intent.get('back') or url_for('orders.cart')}?added=1")


# --- checkout -------------------------------------------------------------------------------


def _checkout_lines(user_id: int) -> tuple[list[dict], bool]:
    """The lines to buy, with current prices: (lines, from_cart).

    ``?sku_id=&quantity=`` is 立即购买 (one SKU); otherwise the cart's lines.
    """
    sku_id = _int_arg("sku_id")
    if sku_id is not None:
        quantity = _int_arg("quantity", 1, MAX_QUANTITY)
        sku = db.session.get(Sku, sku_id)
        if sku is None:
            abort(404, description="商品不存在或已下架")
        wanted = [(sku, quantity)]
        from_cart = False
    else:  # only the ticked lines (购物车 勾选)
        wanted = [
            (line.sku, line.item.quantity)
            for line in view_cart(user_id).lines
            if line.item.selected
        ]
        from_cart = True
    over_limit = limit_problems(user_id, [(sku.product, n) for sku, n in wanted])
    return [_line(sku, n, over_limit.get(sku.product_id, "")) for sku, n in wanted], from_cart


def _line(sku: Sku, quantity: int, over_limit: str = "") -> dict:
    if not sku.product.on_shelf:
        problem = "已下架"
    elif sku.stock == 0:
        problem = "已售罄"
    elif quantity > sku.stock:
        problem = f"库存不足，仅剩 {sku.stock} 件"
    else:
        problem = over_limit  # 限购: the customer's earlier orders count too
    unit = unit_price(sku).price_fen  # the one rule: app/discounts/pricing.py
    return {
        "sku": sku,
        "quantity": quantity,
        "unit_price_fen": unit,
        "amount_fen": unit * quantity,
        "problem": problem,
    }


@bp.get("/checkout")
@login_required
def checkout():
    """Confirm the order: address, items at today's prices, shipping, total, remark.

    Prices shown here are read now; placing the order reads them again on the server.
    """
    user_id = _customer_id()
    settings = get_settings()
    lines, from_cart = _checkout_lines(user_id)
    buyable = [line for line in lines if not line["problem"]]
    items_fen = sum(line["amount_fen"] for line in buyable)
    shipping_fen = shipping_fee_for(items_fen, settings) if buyable else 0
    # Placing checks the cap again under a lock; this only saves a pointless tap.
    too_many_unpaid = unpaid_order_count(user_id, utcnow()) >= settings.max_unpaid_orders
    address = None
    address_id = _int_arg("address_id")
    if address_id is not None:
        address = db.session.get(Address, address_id)
        if address is not None and address.user_id != user_id:
            address = None
    address = address or default_address(user_id)

    # Where the address pages come back to: this page without its address choice.
    args = {k: v for k, v in request.args.items() if k != "address_id"}
    here = url_for("orders.checkout", **args)
    return render_template(
        "orders/checkout.html",
        lines=lines,
        buyable=buyable,
        from_cart=from_cart,
        items_fen=items_fen,
        shipping_fen=shipping_fen,
        total_fen=items_fen + shipping_fen,
        settings=settings,
        unpaid_notice=unpaid_orders_message(settings.max_unpaid_orders)
        if too_many_unpaid
        else None,
        unpaid_url=UNPAID_ORDERS_PATH,
        address=address,
        choose_url=url_for("orders.addresses", select=1, next=here),
        new_address_url=url_for("orders.new_address", next=here),
        payload=[{"sku_id": line["sku"].id, "quantity": line["quantity"]} for line in buyable],
    )


# --- addresses ------------------------------------------------------------------------------


def _next_arg() -> str | None:
    raw = request.args.get("next")
    return safe_next(raw, default="") or None if raw else None


@bp.get("/addresses")
@login_required
def addresses():
    """The address book; with ``?select=1&next=PATH`` tapping one goes back to PATH with it."""
    user_id = _customer_id()
    next_path = _next_arg()
    selecting = request.args.get("select") == "1" and next_path is not None
    choices = {}
    if selecting:
        sep = "&" if "?" in next_path else "?"
        choices = {
            a.id: f"{next_path}{sep}{urlencode({'address_id': a.id})}"
            for a in list_addresses(user_id)
        }
    return render_template(
        "orders/addresses.html",
        addresses=list_addresses(user_id),
        selecting=selecting,
        choices=choices,
        next_path=next_path,
    )


@bp.get("/addresses/new")
@login_required
def new_address():
    """Add an address with the province/city/district picker."""
    _customer_id()
    return render_template("orders/address_form.html", address=None, next_path=_next_arg())


@bp.get("/addresses/<int:address_id>/edit")
@login_required
def edit_address(address_id: int):
    """Edit one of the customer's addresses."""
    user_id = _customer_id()
    address = db.session.get(Address, address_id) if address_id <= MAX_ID else None
    if address is None or address.user_id != user_id:
        abort(404, description="地址不存在")
    return render_template("orders/address_form.html", address=address, next_path=_next_arg())


# --- orders ---------------------------------------------------------------------------------


@bp.get("/orders")
@login_required
def order_list():
    """The customer's orders with status tabs (全部/待付款/待发货/待收货/已完成/退款)."""
    user_id = _customer_id()
    status = request.args.get("status", "all")
    if status not in dict(TABS):
        status = "all"
    page = _int_arg("page", 1, 10_000)
    rows, total = customer_orders(user_id, None if status == "all" else status, page, PER_PAGE)
    by_line = refunds_by_line([o.id for o in rows])
    return render_template(
        "orders/list.html",
        orders=rows,
        badges={
            o.id: aftersale_badge([r for line in o.lines for r in by_line.get(line.id, [])])
            for o in rows
        },
        tabs=TABS,
        status=status,
        page=page,
        has_next=page * PER_PAGE < total,
    )


@bp.get("/orders/<int:order_id>")
@login_required
def order_detail(order_id: int):
    """One order: status, address, lines (with refunds), amounts, actions, timeline."""
    order = _own_order(order_id)
    refunds = refunds_by_line([order.id])
    return render_template(
        "orders/detail.html",
        order=order,
        refunds=refunds,
        refundable={
            line.id: refundable_quantity(order, line, refunds.get(line.id, []))
            for line in order.lines
        },
        history=list(reversed(order_history(order))),
        aftersale_badge=aftersale_badge([r for rs in refunds.values() for r in rs]),
    )


@bp.get("/orders/<int:order_id>/pay")
@login_required
def pay(order_id: int):
    """Pay for an order (WeixinJSBridge, or the stand-in's cashier) and wait for WeChat's word."""
    order = _own_order(order_id)
    deadline = order.pay_deadline
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    return render_template(
        "orders/pay.html",
        order=order,
        deadline_ts=int(deadline.timestamp()),
        returned=request.args.get("pay_result"),
    )


@bp.get("/orders/<int:order_id>/lines/<int:line_id>/refund")
@login_required
def refund_form(order_id: int, line_id: int):
    """Ask a refund of one line: how many, and why."""
    order = _own_order(order_id)
    line = db.session.get(OrderLine, line_id) if line_id <= MAX_ID else None
    if line is None or line.order_id != order.id:
        abort(404, description="订单中没有该商品")
    left = refundable_quantity(order, line, refunds_by_line([order.id]).get(line.id, []))
    return render_template(
        "orders/refund.html", order=order, line=line, left=left, reasons=REFUND_REASONS
    )
