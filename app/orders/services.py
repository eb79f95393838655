"""Placing, paying, cancelling and completing orders. Services flush; the edge commits.

Stock rule: stock is taken at placement by one conditional UPDATE per SKU
(``stock >= n``), in ascending SKU id order so concurrent orders lock rows in the same
order and cannot deadlock. It comes back exactly once: only the request that wins the
``pending_payment -> cancelled`` transition releases it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.orm import selectinload

from app.catalog.models import Product, Sku
from app.core.models import StatusChange
from app.core.sql import single_row
from app.core.status import InvalidTransition, record_creation, record_transition
from app.core.time import utcnow
from app.discounts.pricing import unit_prices
from app.extensions import db
from app.orders.limits import (
    UNPAID_ORDERS_PATH,
    limit_problems,
    lock_customer,
    unpaid_order_count,
    unpaid_orders_message,
)
from app.orders.models import (
    CANCELLED,
    COMPLETED,
    PAID,
    PENDING_PAYMENT,
    SHIPPED,
    Address,
    CartItem,
    Order,
    OrderLine,
    PaymentTransaction,
    ShopSettings,
)
from app.orders.states import ORDER_TRANSITIONS, move_order
from app.signals import order_cancelled, order_placed

MAX_LINES = 50
MAX_QUANTITY = 999


class OrderError(Exception):
    """An order request that cannot be carried out: a code for JSON and a Chinese message."""

    def __init__(self, code: str, message: str, status: int = 400, link: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.link = link  # a page that helps, e.g. the unpaid orders (a path)


@dataclass(frozen=True)
class ItemRequest:
    """One SKU and quantity the customer asks for."""

    sku_id: int
    quantity: int


# --- settings ---------------------------------------------------------------------------


def get_settings() -> ShopSettings:
    """The shop's single settings row, created with defaults on first use (race-safe)."""
    return single_row(ShopSettings)


def shipping_fee_for(items_fen: int, settings: ShopSettings) -> int:
    """Flat fee, free when the items reach the threshold (a threshold of 0 never frees)."""
    if settings.free_shipping_over_fen and items_fen >= settings.free_shipping_over_fen:
        return 0
    return settings.shipping_fee_fen


# --- placing ----------------------------------------------------------------------------


def normalise_items(items: list[ItemRequest]) -> dict[int, int]:
    """Validate the requested items and merge repeats: {sku_id: quantity}."""
    if not items:
        raise OrderError("empty_order", "请选择要购买的商品")
    merged: dict[int, int] = {}
    for item in items:
        if not isinstance(item.quantity, int) or isinstance(item.quantity, bool):
            raise OrderError("invalid_quantity", "购买数量不正确")
        if not 1 <= item.quantity <= MAX_QUANTITY:
            raise OrderError("invalid_quantity", f"购买数量需为 1-{MAX_QUANTITY} 件")
        merged[item.sku_id] = merged.get(item.sku_id, 0) + item.quantity
    if len(merged) > MAX_LINES:
        raise OrderError("too_many_items", f"一次最多购买 {MAX_LINES} 种商品")
    if any(q > MAX_QUANTITY for q in merged.values()):
        raise OrderError("invalid_quantity", f"购买数量需为 1-{MAX_QUANTITY} 件")
    return merged


def new_order_number(now: datetime) -> str:
    """A readable number: the time to the second + 8 random digits (22 digits).

    The unique key is the real guard; 10^8 per second makes a clash unlikely even at
    hundreds of orders a second (about 1 in 1,000 seconds at 400 orders/s).
    """
    return f"{now:%Y%m%d%H%M%S}{secrets.randbelow(10**8):08d}"


@dataclass(frozen=True)
class Receiver:
    """Who receives an order and where (copied onto the order at placement)."""

    name: str
    phone: str
    province: str
    city: str
    district: str
    district_code: str
    detail: str

    @classmethod
    def of(cls, address: Address) -> Receiver:
        """The receiver of a saved address."""
        return cls(
            address.name,
            address.phone,
            address.province,
            address.city,
            address.district,
            address.district_code,
            address.detail,
        )


def place_order(
    user_id: int,
    items: list[ItemRequest],
    address_id: int,
    remark: str = "",
    *,
    actor: str | None = None,
    now: datetime | None = None,
    discount: Callable[[Order], None] | None = None,
) -> Order:
    """Create an order for ``user_id``, taking stock for every line, or raise OrderError.

    Prices come from the database, never from the request. On ``OrderError`` the caller
    must roll back: stock already taken for earlier lines is undone with the transaction.
    ``discount`` is an order-level discount (a coupon, ``app.coupons.services.discount_for``):
    see ``create_order``.
    """
    remark = check_remark(remark)
    wanted = normalise_items(items)
    address = db.session.get(Address, address_id) if isinstance(address_id, int) else None
    if address is None or address.user_id != user_id:
        raise OrderError("invalid_address", "请选择收货地址")
    order = create_order(
        user_id, wanted, Receiver.of(address), remark, actor=actor, now=now, discount=discount
    )
    # What was bought leaves the cart.
    db.session.execute(
        delete(CartItem).where(CartItem.user_id == user_id, CartItem.sku_id.in_(list(wanted)))
    )
    db.session.flush()
    return order


def check_remark(remark: str | None) -> str:
    """The remark stripped, or OrderError when too long."""
    remark = (remark or "").strip()
    if len(remark) > 200:
        raise OrderError("invalid_remark", "备注最多 200 个字")
    return remark


def create_order(
    user_id: int,
    wanted: dict[int, int],
    receiver: Receiver,
    remark: str,
    *,
    price_of: Callable[[Sku], int] | None = None,
    actor: str | None = None,
    now: datetime | None = None,
    discount: Callable[[Order], None] | None = None,
) -> Order:
    """The placement itself, for validated ``wanted`` {sku_id: quantity} (flushes).

    ``price_of`` gives a SKU's unit price (default: ``unit_prices``, the list price or a
    running timed discount's, app/discounts/pricing.py); ordering
    merchants order at their level price through it (app/cloud/merchants.py).
    The buyer's unpaid-order cap and the products' purchase limits are checked under a
    lock on the buyer (app/orders/limits.py), so concurrent checkouts cannot both pass.

    ``discount(order)``, when given, runs once the lines are built and before the totals:
    it may lower lines' ``amount_fen`` (their paid amount) and set the order's coupon
    columns. Shipping is reckoned on the goods before the discount.
    """
    now = now or utcnow()
    lock_customer(user_id)
    settings = get_settings()
    if unpaid_order_count(user_id, now) >= settings.max_unpaid_orders:
        raise OrderError(
            "too_many_unpaid_orders",
            unpaid_orders_message(settings.max_unpaid_orders),
            status=409,
            link=UNPAID_ORDERS_PATH,
        )
    skus = {
        sku.id: sku
        for sku in db.session.scalars(
            select(Sku)
            .where(Sku.id.in_(wanted))
            .options(selectinload(Sku.product).selectinload(Product.images))
        )
    }
    for sku_id in sorted(wanted):
        sku = skus.get(sku_id)
        if sku is None or not sku.product.on_shelf:
            raise OrderError("unavailable", "商品已下架或不存在", status=409)
    problems = limit_problems(user_id, [(skus[i].product, n) for i, n in wanted.items()])
    for product_id, problem in sorted(problems.items()):
        title = next(s.product.title for s in skus.values() if s.product_id == product_id)
        raise OrderError("purchase_limit_exceeded", f"“{title}”{problem}", status=409)

    # Take stock in ascending SKU id order (see module docstring).
    for sku_id in sorted(wanted):
        taken = db.session.execute(
            update(Sku)
            .where(Sku.id == sku_id, Sku.stock >= wanted[sku_id])
            .values(stock=Sku.stock - wanted[sku_id])
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            sku = skus[sku_id]
            raise OrderError("sold_out", f"“{sku.product.title}”库存不足，已售罄", status=409)

    order = Order(
        number=new_order_number(now),
        user_id=user_id,
        status=PENDING_PAYMENT,
        receiver_name=receiver.name,
        receiver_phone=receiver.phone,
        province=receiver.province,
        city=receiver.city,
        district=receiver.district,
        district_code=receiver.district_code,
        address_detail=receiver.detail,
        remark=remark,
        created_at=now,
        pay_deadline=now + timedelta(minutes=settings.pay_timeout_minutes),
    )
    # The unit price: the one rule (timed discounts included) in app/discounts/pricing.py.
    prices = unit_prices(skus.values(), now)
    for sku_id in wanted:
        sku = skus[sku_id]
        cover = sku.product.cover
        unit = prices[sku_id].price_fen if price_of is None else price_of(sku)
        exempt = price_of is None and prices[sku_id].commission_exempt
        order.lines.append(
            OrderLine(
                product_id=sku.product_id,
                sku_id=sku.id,
                title=sku.product.title,
                spec_text=sku.spec_text if sku.specs else "",
                image_filename=cover.filename if cover else None,
                unit_price_fen=unit,
                quantity=wanted[sku_id],
                amount_fen=unit * wanted[sku_id],
                commission_exempt=exempt,
            )
        )
    goods_fen = sum(line.amount_fen for line in order.lines)
    if discount is not None:
        discount(order)
    order.items_fen = sum(line.amount_fen for line in order.lines)
    order.shipping_fen = shipping_fee_for(goods_fen, settings)
    order.total_fen = order.items_fen + order.shipping_fen
    if order.total_fen <= 0:
        raise OrderError("invalid_total", "订单金额不正确")
    db.session.add(order)
    db.session.flush()
    # Who earns commission is fixed now (issue 5): the pipeline's listener records it in this
    # transaction (app/earnings/listeners.py); distribution off = no rows.
    order_placed.send(__name__, order=order)
    record_creation("order", order.id, PENDING_PAYMENT, actor or f"user:{user_id}", "下单")
    db.session.flush()
    return order


# --- cancelling and timers --------------------------------------------------------------


def _release_stock(order: Order) -> None:
    for line in sorted(order.lines, key=lambda line: line.sku_id or 0):
        if line.sku_id is not None:
            db.session.execute(
                update(Sku)
                .where(Sku.id == line.sku_id)
                .values(stock=Sku.stock + line.quantity)
                .execution_options(synchronize_session=False)
            )


def cancel_order(order: Order, actor: str, reason: str = "取消订单") -> None:
    """Cancel an unpaid order and give its stock back (exactly once), or raise."""
    if order.status != PENDING_PAYMENT:
        raise InvalidTransition("order", order.status, CANCELLED)
    move_order(order, CANCELLED, actor, reason, cancelled_at=utcnow())
    _release_stock(order)
    db.session.flush()
    order_cancelled.send(__name__, order=order)  # e.g. its coupon is given back


def due_unpaid_order_ids(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of unpaid orders whose payment deadline has passed."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(Order.id)
            .where(Order.status == PENDING_PAYMENT, Order.pay_deadline < now)
            .order_by(Order.id)
            .limit(limit)
        )
    )


def due_shipped_order_ids(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of shipped orders whose automatic receipt date has passed."""
    now = now or utcnow()
    days = get_settings().auto_complete_days
    return list(
        db.session.scalars(
            select(Order.id)
            .where(Order.status == SHIPPED, Order.shipped_at < now - timedelta(days=days))
            .order_by(Order.id)
            .limit(limit)
        )
    )


# --- paying -----------------------------------------------------------------------------


class PaymentMismatch(Exception):
    """A payment that does not match its order (amount or order); nothing was changed."""


_TRANSACTION_INSERT = insert(PaymentTransaction.__table__)  # built once: the pay notice path


def mark_paid(
    order: Order,
    *,
    transaction_id: str,
    amount_fen: int,
    paid_at: datetime | None = None,
    payload: dict | None = None,
    source: str = "wechat",
) -> bool:
    """Record WeChat's word that ``order`` was paid. Returns True only the first time.

    The order must be awaiting payment and the amount must equal its total, else
    ``PaymentMismatch``. A repeat of the same transaction returns False and changes
    nothing: the unique (kind, external_id) key and the conditional status UPDATE both
    guard it, so concurrent notices are harmless.
    """
    if amount_fen != order.total_fen:
        raise PaymentMismatch(f"amount {amount_fen} != order total {order.total_fen}")
    if order.transaction_id == transaction_id and order.status != PENDING_PAYMENT:
        return False
    if order.status != PENDING_PAYMENT:
        if order.status in (PAID, SHIPPED, COMPLETED):
            raise PaymentMismatch(f"order already paid by {order.transaction_id}")
        # Cancelled (timed out) before the money arrived: keep the record for staff.
        raise PaymentMismatch(f"order is {order.status}")
    try:
        move_order(
            order,
            PAID,
            source,
            "微信支付成功",
            paid_fen=amount_fen,
            paid_at=paid_at or utcnow(),
            transaction_id=transaction_id,
        )
    except InvalidTransition:
        db.session.refresh(order)
        if order.transaction_id == transaction_id:
            return False  # a concurrent notice won the race
        raise
    _record_paid(order.id, transaction_id, amount_fen, payload)
    return True


def _record_paid(order_id: int, transaction_id: str, amount_fen: int, payload: dict | None):
    """The ``paid`` payment transaction: a plain INSERT on the table (the row is not needed
    as an object); the unique (kind, external_id) key refuses a second one."""
    db.session.execute(
        _TRANSACTION_INSERT,
        {
            "order_id": order_id,
            "kind": "paid",
            "external_id": transaction_id,
            "amount_fen": amount_fen,
            "state": "SUCCESS",
            "payload": payload or {},
        },
    )


# The fast path of a payment notice, written once. The order's transition is the state
# machine's PENDING_PAYMENT -> PAID (checked below), guarded like ``move_order``'s
# conditional UPDATE and also by the amount, with the same history row and transaction.
_PAY_SET = (
    "UPDATE orders SET status = :to_status, paid_fen = :amount, paid_at = :paid_at, "
    "transaction_id = :transaction_id WHERE number = :number AND status = :from_status "
    "AND total_fen = :amount RETURNING *"
)
_PAY_BINDS = (
    bindparam("paid_at", type_=Order.__table__.c.paid_at.type),
    bindparam("payload", type_=PaymentTransaction.__table__.c.payload.type),
    bindparam("now", type_=StatusChange.__table__.c.created_at.type),
)
# PostgreSQL: one round trip (a data-modifying CTE); the inserts see only the paid row.
_PAY_IN_ONE = (
    select(Order)
    .from_statement(
        text(
            f"WITH paid AS ({_PAY_SET}), "  # noqa: S608 (constants only)
            "history AS (INSERT INTO status_changes "
            "(subject, subject_id, from_status, to_status, actor, reason, created_at) "
            "SELECT 'order', id, :from_status, :to_status, :actor, :reason, :now FROM paid), "
            "payment AS (INSERT INTO payment_transactions "
            "(order_id, kind, external_id, amount_fen, state, payload, note, created_at) "
            "SELECT id, 'paid', :transaction_id, :amount, 'SUCCESS', :payload, '', :now "
            "FROM paid) "
            "SELECT * FROM paid"
        )
        .bindparams(*_PAY_BINDS)
        .columns(*Order.__table__.columns)
    )
    .execution_options(populate_existing=True)
)
if PAID not in ORDER_TRANSITIONS[PENDING_PAYMENT]:  # the fast path bypasses move_order
    raise RuntimeError("the order state machine no longer allows pending_payment -> paid")
# SQLite (development, tests) has no data-modifying CTE: the UPDATE, then the two inserts.
_PAY_UPDATE = (
    select(Order)
    .from_statement(text(_PAY_SET).bindparams(*_PAY_BINDS[:1]).columns(*Order.__table__.columns))
    .execution_options(populate_existing=True)
)


def mark_paid_by_number(
    number: str,
    *,
    transaction_id: str,
    amount_fen: int,
    paid_at: datetime | None = None,
    payload: dict | None = None,
    source: str = "wechat",
) -> Order | None:
    """The fast path of a payment notice: pay order ``number`` if it awaits payment and
    its total is ``amount_fen``, with its history row and its ``paid`` transaction.

    Returns the order, now paid, or None when nothing matched (unknown order, another
    amount, already paid, cancelled); nothing was changed then, and the caller takes the
    careful path (``mark_paid``), which finds out why. One statement on PostgreSQL.
    """
    now = utcnow()
    reason = "微信支付成功"
    params = {
        "number": number,
        "amount": amount_fen,
        "paid_at": paid_at or now,
        "transaction_id": transaction_id,
        "from_status": PENDING_PAYMENT,
        "to_status": PAID,
    }
    if db.engine.dialect.name == "postgresql":
        extra = {"actor": source, "reason": reason, "now": now, "payload": payload or {}}
        return db.session.scalar(_PAY_IN_ONE, {**params, **extra})
    order = db.session.scalar(_PAY_UPDATE, params)
    if order is not None:
        record_transition("order", order.id, PENDING_PAYMENT, PAID, source, reason, now)
        _record_paid(order.id, transaction_id, amount_fen, payload)
    return order


def order_for_user(order_id: int, user_id: int) -> Order | None:
    """The order if it belongs to ``user_id`` (customers only ever see their own)."""
    order = db.session.get(Order, order_id)
    return order if order is not None and order.user_id == user_id else None
