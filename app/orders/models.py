"""Orders, their lines, addresses, cart, refunds and payments (the history of every status
change is ``app.core.models.StatusChange``).

Money columns are integers in fen. Each order copies what it needs (prices, titles, the
receiver's address and district code) at placement, so later catalog edits never change a
placed order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app import regions
from app.core.time import UtcDateTime, utcnow
from app.extensions import db

# Order statuses (the state machine is in app/orders/states.py).
PENDING_PAYMENT = "pending_payment"
PAID = "paid"
SHIPPED = "shipped"
COMPLETED = "completed"
CANCELLED = "cancelled"
ORDER_STATUSES = (PENDING_PAYMENT, PAID, SHIPPED, COMPLETED, CANCELLED)

# Refund statuses.
REFUND_REQUESTED = "requested"
REFUND_APPROVED = "approved"
REFUND_REJECTED = "rejected"
REFUND_REFUNDED = "refunded"
REFUND_FAILED = "failed"
# After-sale (售后, app/orders/aftersale.py): the customer withdraws (撤销), and the return
# steps of 退货退款: the merchant agreed to take the goods back, the parcel is on its way,
# the merchant received it (then the refund is approved and asked of WeChat Pay).
REFUND_CANCELLED = "cancelled"
REFUND_RETURN_APPROVED = "return_approved"
REFUND_RETURNING = "returning"
REFUND_RECEIVED = "received"
REFUND_STATUSES = (
    REFUND_REQUESTED,
    REFUND_RETURN_APPROVED,
    REFUND_RETURNING,
    REFUND_RECEIVED,
    REFUND_APPROVED,
    REFUND_REJECTED,
    REFUND_REFUNDED,
    REFUND_FAILED,
    REFUND_CANCELLED,
)
OPEN_REFUND_STATUSES = (
    REFUND_REQUESTED,
    REFUND_RETURN_APPROVED,
    REFUND_RETURNING,
    REFUND_RECEIVED,
    REFUND_APPROVED,
)
# Refund kinds: 仅退款 and 退货退款. Each has its own transition map (app/orders/states.py).
REFUND_ONLY = "refund_only"
RETURN_REFUND = "return_refund"
REFUND_KINDS = (REFUND_ONLY, RETURN_REFUND)


class ShopSettings(db.Model):
    """The shop's order settings: one row (id 1), created with defaults when first read."""

    __tablename__ = "shop_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_name: Mapped[str] = mapped_column(String(64), default="分销商城")
    shipping_fee_fen: Mapped[int] = mapped_column(default=1000)
    free_shipping_over_fen: Mapped[int] = mapped_column(default=9900)  # 0 = never free
    # Unpaid orders hold stock (taken at placement) until paid or cancelled: a short
    # window and a cap per customer keep one customer from holding it all.
    pay_timeout_minutes: Mapped[int] = mapped_column(default=15)
    max_unpaid_orders: Mapped[int] = mapped_column(default=3, server_default="3")
    auto_complete_days: Mapped[int] = mapped_column(default=10)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class Address(db.Model):
    """A customer's delivery address; ``district_code`` is the 6-digit GB/T 2260 code."""

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str] = mapped_column(String(20))
    province: Mapped[str] = mapped_column(String(32))
    city: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(32))
    district_code: Mapped[str] = mapped_column(String(6))
    detail: Mapped[str] = mapped_column(String(200))
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @property
    def region_text(self) -> str:
        """广东省 深圳市 南山区 (``app.regions.region_text``)."""
        return regions.region_text(self.province, self.city, self.district)

    @property
    def full_text(self) -> str:
        """One line for labels: 广东省 深圳市 南山区 科技园1号."""
        return regions.address_text(self.province, self.city, self.district, self.detail)


class CartItem(db.Model):
    """A SKU in a customer's cart. Prices are never stored here: checkout reads them."""

    __tablename__ = "cart_items"
    __table_args__ = (
        UniqueConstraint("user_id", "sku_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("skus.id", ondelete="CASCADE"))
    quantity: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # 勾选: checkout from the cart takes only ticked lines (new lines come ticked).
    selected: Mapped[bool] = mapped_column(default=True, server_default=sa_true())

    sku = relationship("Sku")


class Order(db.Model):
    """A placed order. ``status`` changes only through app/orders/states.py."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("total_fen >= 0", name="total_not_negative"),
        CheckConstraint("refunded_fen >= 0", name="refunded_not_negative"),
        CheckConstraint("refunded_fen <= paid_fen", name="refund_within_paid"),
        Index("ix_orders_status_created", "status", "created_at"),
        # Reports group paid orders of a date range; INCLUDE lets PostgreSQL answer the
        # sales figures from the index alone (bench/reports.py).
        Index("ix_orders_paid_at", "paid_at", postgresql_include=["paid_fen"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=PENDING_PAYMENT)

    items_fen: Mapped[int]  # sum of line amounts (after discounts)
    shipping_fen: Mapped[int] = mapped_column(default=0)
    total_fen: Mapped[int]  # what the customer pays: items + shipping
    paid_fen: Mapped[int] = mapped_column(default=0)  # set once, from the payment notice
    refunded_fen: Mapped[int] = mapped_column(default=0)

    receiver_name: Mapped[str] = mapped_column(String(32))
    receiver_phone: Mapped[str] = mapped_column(String(20))
    province: Mapped[str] = mapped_column(String(32))
    city: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(32))
    district_code: Mapped[str] = mapped_column(String(6), index=True)
    address_detail: Mapped[str] = mapped_column(String(200))
    remark: Mapped[str] = mapped_column(String(200), default="")

    carrier: Mapped[str | None] = mapped_column(String(32))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(64), unique=True)

    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    pay_deadline: Mapped[datetime] = mapped_column(UtcDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    shipped_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The coupon used (customer_coupons.id, app/coupons/): its discount is already split
    # into the lines' ``amount_fen``. No foreign key: SQLite cannot add one to an existing
    # table without batch mode (which drops the report triggers). Declared last: the pay
    # path maps ``RETURNING *`` by position.
    customer_coupon_id: Mapped[int | None] = mapped_column(index=True)
    coupon_fen: Mapped[int] = mapped_column(default=0, server_default="0")

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan"
    )
    user = relationship("User")

    @property
    def out_trade_no(self) -> str:
        """WeChat Pay's merchant order number is our order number."""
        return self.number

    @property
    def region_text(self) -> str:
        """The delivery region: 广东省 深圳市 南山区 (``app.regions.region_text``)."""
        return regions.region_text(self.province, self.city, self.district)

    @property
    def address_text(self) -> str:
        """The delivery address on one line, written as every address is."""
        return regions.address_text(self.province, self.city, self.district, self.address_detail)


class OrderLine(db.Model):
    """One SKU on an order, with the price and titles copied at placement."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("refunded_quantity <= quantity", name="refund_qty_within"),
        CheckConstraint("refunded_fen <= amount_fen", name="refund_within_amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    # Indexed: the product page counts a product's sales (已售) on every view.
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True
    )
    sku_id: Mapped[int | None] = mapped_column(
        ForeignKey("skus.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(100))
    spec_text: Mapped[str] = mapped_column(String(100), default="")
    image_filename: Mapped[str | None] = mapped_column(String(128))
    unit_price_fen: Mapped[int]
    quantity: Mapped[int]
    amount_fen: Mapped[int]  # what the customer pays for this line, after discounts
    refunded_quantity: Mapped[int] = mapped_column(default=0)
    refunded_fen: Mapped[int] = mapped_column(default=0)
    # Sold in a timed discount of a product whose discounted sales earn no commission
    # (app/discounts/pricing.py); the level calculator skips such lines.
    commission_exempt: Mapped[bool] = mapped_column(default=False, server_default=false())

    order: Mapped[Order] = relationship(back_populates="lines")


class Refund(db.Model):
    """A refund of some quantity of one order line."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        Index("ix_refunds_refunded_at", "refunded_at"),  # the refunds of a report's range
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    out_refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    refund_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # WeChat's id
    quantity: Mapped[int]
    amount_fen: Mapped[int]
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=REFUND_REQUESTED)
    review_note: Mapped[str] = mapped_column(String(200), default="")
    restock: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    refunded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # After-sale (app/orders/aftersale.py): the kind, the customer's words and photos
    # (stored file names, re-encoded like product images), and the return parcel.
    kind: Mapped[str] = mapped_column(String(16), default=REFUND_ONLY, server_default=REFUND_ONLY)
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    photos: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    return_carrier: Mapped[str | None] = mapped_column(String(32))
    return_tracking_number: Mapped[str | None] = mapped_column(String(64))

    order: Mapped[Order] = relationship()
    line: Mapped[OrderLine] = relationship()


class PaymentTransaction(db.Model):
    """One payment event (prepay, paid notice, query, refund...). Append-only.

    The unique key (kind, external_id) makes a second "paid" row for the same WeChat
    transaction impossible, whatever arrives twice.
    """

    __tablename__ = "payment_transactions"
    __table_args__ = (UniqueConstraint("kind", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # prepay, paid, refund, refund_done, closed
    external_id: Mapped[str] = mapped_column(String(64))  # prepay_id / transaction_id / refund_id
    amount_fen: Mapped[int]
    state: Mapped[str] = mapped_column(String(32), default="")
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class OrderFollowUp(db.Model):
    """A paid order whose follow-up committed: its earnings are written (jobs/commissions.py).

    Inserted in the same transaction as the earnings, so a paid order without a row is one
    whose follow-up a dead worker or a lost job left undone: the worker's recovery pass
    (``jobs.payments.resume_lost_follow_ups``) queues it again. A table of its own rather
    than a column on ``orders``: the job then never locks the order's row.
    """

    __tablename__ = "order_follow_ups"

    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    done_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
