"""What one customer may hold and buy: the unpaid-order cap and per-product limits (限购).

Stock is taken when an order is placed and comes back only when it is cancelled, so an
unpaid order holds stock for the pay window. Two rules keep one customer from holding a
product's whole stock:

- at most ``ShopSettings.max_unpaid_orders`` unpaid orders per customer at a time;
- ``Product.purchase_limit`` (限购 N, 0 = none): the units of that product one customer
  has in unpaid and paid orders (paid, shipped, completed) plus the new order's may not
  pass N. Cancelled orders do not count. Refunded units do not count either (as Youzan
  does): a refund gives the unit back to the shop, so it frees the customer's limit too;
  a refund still under review counts until the money has gone back.

The checks are reads; the placement makes them safe under concurrency by locking the
customer's row first (``lock_customer``), so two checkouts of one customer run one after
the other and the second one sees the first's order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, update

from app.accounts.models import User
from app.catalog.models import Product
from app.extensions import db
from app.orders.models import CANCELLED, PENDING_PAYMENT, Order, OrderLine

UNPAID_ORDERS_PATH = "/orders?status=pending_payment"  # the 待付款 tab of the order list


def lock_customer(user_id: int) -> None:
    """Serialise this customer's placements until the transaction ends.

    PostgreSQL: a row lock on the user; a second checkout of the same customer waits
    here, then reads the first one's committed order. ``FOR NO KEY UPDATE`` rather than
    ``FOR UPDATE``: rows that merely reference the user (cart, addresses) take a key-share
    lock, which it leaves alone.

    SQLite has no row locks, and Python's driver begins a transaction only at the first
    write, so the counts read next would be read outside it; a no-op write on the user
    row begins it and takes the database's one write lock first (a second checkout waits
    for it, up to the busy timeout, and then reads the first one's order).
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(nickname=User.nickname)
            .execution_options(synchronize_session=False)
        )
    else:
        db.session.execute(
            select(User.id).where(User.id == user_id).with_for_update(key_share=True)
        )


def unpaid_order_count(user_id: int, now: datetime) -> int:
    """The customer's unpaid orders still inside their pay window.

    One whose window has passed is about to be cancelled by the order timer and can no
    longer be paid from the shop, so it does not block a new one.
    """
    return db.session.scalar(
        select(func.count(Order.id)).where(
            Order.user_id == user_id,
            Order.status == PENDING_PAYMENT,
            Order.pay_deadline >= now,
        )
    )


def unpaid_orders_message(limit: int) -> str:
    """The refusal shown when the customer already holds ``limit`` unpaid orders."""
    return f"您已有 {limit} 笔待付款订单，请先完成付款或取消后再下单"


def bought_quantities(user_id: int, product_ids: Iterable[int]) -> dict[int, int]:
    """Units of each product the customer has in orders that are not cancelled, less the
    units refunded: {product_id: units} (products never bought are absent)."""
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        select(
            OrderLine.product_id,
            func.sum(OrderLine.quantity - OrderLine.refunded_quantity),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            Order.user_id == user_id,
            Order.status != CANCELLED,
            OrderLine.product_id.in_(ids),
        )
        .group_by(OrderLine.product_id)
    )
    return {product_id: int(units or 0) for product_id, units in rows}


def limit_problem(product: Product, bought: int, wanted: int) -> str:
    """Why ``wanted`` more units of ``product`` would pass its limit ("" when they fit)."""
    limit = product.purchase_limit
    if not limit or bought + wanted <= limit:
        return ""
    if bought >= limit:
        return f"每人限购 {limit} 件，您已购买 {bought} 件，已达限购"
    if bought:
        return f"每人限购 {limit} 件，您已购买 {bought} 件，最多还能买 {limit - bought} 件"
    return f"每人限购 {limit} 件"


def limit_problems(user_id: int, wanted: Iterable[tuple[Product, int]]) -> dict[int, str]:
    """Per product id, why the customer may not buy the wanted units (only problems).

    ``wanted`` may name a product several times (one entry per SKU): its units add up.
    """
    units: dict[int, int] = {}
    products: dict[int, Product] = {}
    for product, quantity in wanted:
        if product.purchase_limit:
            units[product.id] = units.get(product.id, 0) + quantity
            products[product.id] = product
    if not units:
        return {}
    bought = bought_quantities(user_id, units)
    problems = {}
    for product_id, quantity in units.items():
        problem = limit_problem(products[product_id], bought.get(product_id, 0), quantity)
        if problem:
            problems[product_id] = problem
    return problems


def held_by_unpaid(sku_ids: Iterable[int]) -> bool:
    """Whether unpaid orders hold some stock of these SKUs (it comes back if they are not
    paid in time): a sold-out product page says so instead of a plain 售罄."""
    ids = sorted(set(sku_ids))
    if not ids:
        return False
    return (
        db.session.scalar(
            select(OrderLine.id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.sku_id.in_(ids), Order.status == PENDING_PAYMENT)
            .limit(1)
        )
        is not None
    )
