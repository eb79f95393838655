"""Merchant Open API for orders and refund review (bearer token; see app.api.blueprints).

Views validate (spectree), call the order services, and commit once at the end. Errors:
a refused transition (the order or refund is not in a state that allows it, or another
request moved it first) is 409 ``invalid_transition``; WeChat Pay refusing or failing a
refund is 502 ``payment_error`` with its Chinese message; bad input is 422.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from flask import g
from pydantic import BaseModel, Field, StrictStr
from spectree import Response
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from app.api.blueprints import admin_bp
from app.api.present import page_meta
from app.api.schemas import MAX_ID, Body, ErrorResponse, Name, PageMeta, PageQuery, QueryText
from app.api.spec import BEARER, spec
from app.core.audit import audited, row
from app.core.errors import ApiError
from app.core.models import StatusChange
from app.core.status import InvalidTransition
from app.extensions import db
from app.orders.models import Order, OrderLine, PaymentTransaction, Refund
from app.orders.refunds import reject_refund
from app.orders.search import FILTER_STATUSES, OrderFilter, order_query
from app.orders.services import OrderError, PaymentMismatch
from app.orders.shipping import CARRIERS, ship_order
from app.orders.states import ORDER_STATUS_LABELS, REFUND_STATUS_LABELS
from app.payments.client import PaymentError
from app.payments.refunds import approve_refund
from jobs.risk import enqueue_refund_check

ORDER_ID = "<int:order_id>"
REFUND_ID = "<int:refund_id>"
TAGS = ["admin-orders"]
SECURITY = {BEARER: []}
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_404": ErrorResponse}
BODY_ERRORS = {**ERRORS, "HTTP_400": ErrorResponse, "HTTP_415": ErrorResponse}
FilterStatus = Literal[FILTER_STATUSES]  # type: ignore[valid-type]


# --- models ---------------------------------------------------------------------------------


class AdminOrderQuery(PageQuery):
    status: FilterStatus | None = Field(
        None, description="订单状态；refunding 表示有未完结退款（待审核、退款中或退款失败）的订单"
    )
    created_from: date | None = Field(None, description="下单日期起（北京时间，含当天）")
    created_to: date | None = Field(None, description="下单日期止（北京时间，含当天）")
    q: QueryText | None = Field(None, max_length=50, description="订单号、收货人或手机号")


class AdminReceiver(BaseModel):
    name: str
    phone: str
    province: str
    city: str
    district: str
    district_code: str = Field(description="GB/T 2260 区县代码")
    detail: str


class AdminOrderLine(BaseModel):
    id: int
    product_id: int | None
    sku_id: int | None
    title: str
    spec_text: str
    unit_price_fen: int
    quantity: int
    amount_fen: int = Field(description="该行实付（折后）金额")
    refunded_quantity: int
    refunded_fen: int


class AdminOrder(BaseModel):
    id: int
    number: str
    status: str = Field(description="pending_payment / paid / shipped / completed / cancelled")
    status_label: str
    user_id: int
    items_fen: int
    shipping_fen: int
    total_fen: int
    paid_fen: int
    refunded_fen: int
    receiver: AdminReceiver
    remark: str
    carrier: str | None
    tracking_number: str | None
    transaction_id: str | None = Field(description="微信支付订单号")
    created_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    lines: list[AdminOrderLine]


class AdminStatusChange(BaseModel):
    subject: str = Field(description="order 或 refund")
    subject_id: int
    from_status: str | None
    to_status: str
    actor: str = Field(description="user:ID、staff:ID、api:ID、wechat 或 system")
    reason: str
    created_at: datetime


class AdminPayment(BaseModel):
    id: int
    kind: str = Field(description="prepay、paid、refund、refund_done 等")
    external_id: str
    amount_fen: int
    state: str
    created_at: datetime


class AdminRefund(BaseModel):
    id: int
    order_id: int
    order_line_id: int
    out_refund_no: str
    refund_id: str | None = Field(description="微信支付退款单号")
    quantity: int
    amount_fen: int
    reason: str
    status: str = Field(description="requested / approved / rejected / refunded / failed")
    status_label: str
    review_note: str
    created_at: datetime
    reviewed_at: datetime | None
    refunded_at: datetime | None


class AdminOrderDetail(AdminOrder):
    history: list[AdminStatusChange] = Field(description="订单及其退款的状态变化，按时间先后")
    payments: list[AdminPayment]
    refunds: list[AdminRefund]


class AdminOrderPage(BaseModel):
    items: list[AdminOrder]
    meta: PageMeta


class ShipBody(Body):
    carrier: StrictStr = Field(
        min_length=1,
        max_length=32,
        description="快递公司代码或名称：" + "、".join(f"{k}（{v}）" for k, v in CARRIERS.items()),
    )
    tracking_number: StrictStr = Field(
        min_length=1, max_length=64, description="快递单号，6-40 位字母或数字"
    )


class RefundRejectBody(Body):
    reason: Name = Field(min_length=1, max_length=200, description="拒绝原因，顾客可见")


# --- presenting -----------------------------------------------------------------------------


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every stored time is UTC (app.core.time).
    if moment is None or moment.tzinfo:
        return moment
    return moment.replace(tzinfo=UTC)


def _line(line: OrderLine) -> AdminOrderLine:
    return AdminOrderLine(
        id=line.id,
        product_id=line.product_id,
        sku_id=line.sku_id,
        title=line.title,
        spec_text=line.spec_text,
        unit_price_fen=line.unit_price_fen,
        quantity=line.quantity,
        amount_fen=line.amount_fen,
        refunded_quantity=line.refunded_quantity,
        refunded_fen=line.refunded_fen,
    )


def _order_fields(order: Order) -> dict:
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "status_label": ORDER_STATUS_LABELS.get(order.status, order.status),
        "user_id": order.user_id,
        "items_fen": order.items_fen,
        "shipping_fen": order.shipping_fen,
        "total_fen": order.total_fen,
        "paid_fen": order.paid_fen,
        "refunded_fen": order.refunded_fen,
        "receiver": AdminReceiver(
            name=order.receiver_name,
            phone=order.receiver_phone,
            province=order.province,
            city=order.city,
            district=order.district,
            district_code=order.district_code,
            detail=order.address_detail,
        ),
        "remark": order.remark,
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "transaction_id": order.transaction_id,
        "created_at": _aware(order.created_at),
        "paid_at": _aware(order.paid_at),
        "shipped_at": _aware(order.shipped_at),
        "completed_at": _aware(order.completed_at),
        "cancelled_at": _aware(order.cancelled_at),
        "lines": [_line(line) for line in order.lines],
    }


def present_refund(refund: Refund) -> AdminRefund:
    """A refund as the Open API shows it."""
    return AdminRefund(
        id=refund.id,
        order_id=refund.order_id,
        order_line_id=refund.order_line_id,
        out_refund_no=refund.out_refund_no,
        refund_id=refund.refund_id,
        quantity=refund.quantity,
        amount_fen=refund.amount_fen,
        reason=refund.reason,
        status=refund.status,
        status_label=REFUND_STATUS_LABELS.get(refund.status, refund.status),
        review_note=refund.review_note,
        created_at=_aware(refund.created_at),
        reviewed_at=_aware(refund.reviewed_at),
        refunded_at=_aware(refund.refunded_at),
    )


def present_detail(order: Order) -> AdminOrderDetail:
    """An order with its history, payment transactions and refunds."""
    refunds = list(
        db.session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id))
    )
    subjects = [(StatusChange.subject == "order") & (StatusChange.subject_id == order.id)]
    if refunds:
        subjects.append(
            (StatusChange.subject == "refund")
            & StatusChange.subject_id.in_([r.id for r in refunds])
        )
    history = db.session.scalars(
        select(StatusChange)
        .where(or_(*subjects))
        .order_by(StatusChange.created_at, StatusChange.id)
    )
    payments = db.session.scalars(
        select(PaymentTransaction)
        .where(PaymentTransaction.order_id == order.id)
        .order_by(PaymentTransaction.created_at, PaymentTransaction.id)
    )
    return AdminOrderDetail(
        **_order_fields(order),
        history=[
            AdminStatusChange(
                subject=c.subject,
                subject_id=c.subject_id,
                from_status=c.from_status,
                to_status=c.to_status,
                actor=c.actor,
                reason=c.reason,
                created_at=_aware(c.created_at),
            )
            for c in history
        ],
        payments=[
            AdminPayment(
                id=p.id,
                kind=p.kind,
                external_id=p.external_id,
                amount_fen=p.amount_fen,
                state=p.state,
                created_at=_aware(p.created_at),
            )
            for p in payments
        ],
        refunds=[present_refund(r) for r in refunds],
    )


# --- helpers --------------------------------------------------------------------------------


def _actor() -> str:
    return f"api:{g.api_token.id}"


def _order_or_404(order_id: int) -> Order:
    found = db.session.get(Order, order_id) if order_id <= MAX_ID else None
    if found is None:
        raise ApiError(404, "not_found", "订单不存在")
    return found


def _refund_or_404(refund_id: int) -> Refund:
    found = db.session.get(Refund, refund_id) if refund_id <= MAX_ID else None
    if found is None:
        raise ApiError(404, "not_found", "退款申请不存在")
    return found


def _conflict(err: InvalidTransition) -> ApiError:
    db.session.rollback()
    labels = ORDER_STATUS_LABELS if err.subject == "order" else REFUND_STATUS_LABELS
    what = "订单" if err.subject == "order" else "退款申请"
    current = labels.get(err.current, err.current)
    return ApiError(
        409,
        "invalid_transition",
        f"{what}当前状态为“{current}”，不能进行此操作",
        [{"field": "status", "code": err.current, "message": f"{err.current} → {err.wanted}"}],
    )


# --- endpoints ------------------------------------------------------------------------------


@admin_bp.get("/orders")
@spec.validate(
    resp=Response(HTTP_200=AdminOrderPage, HTTP_422=ErrorResponse, **ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def list_orders(query: AdminOrderQuery):
    """Orders, newest first; filter by status, creation dates (Beijing) and keyword."""
    if query.created_from and query.created_to and query.created_from > query.created_to:
        raise ApiError(422, "validation_error", "created_from 不能晚于 created_to")
    flt = OrderFilter(query.status, query.created_from, query.created_to, query.q)
    pagination = db.paginate(
        order_query(flt).options(selectinload(Order.lines)),
        page=query.page,
        per_page=query.per_page,
        error_out=False,
    )
    return AdminOrderPage(
        items=[AdminOrder(**_order_fields(o)) for o in pagination.items],
        meta=page_meta(query.page, query.per_page, pagination.total or 0),
    )


@admin_bp.get(f"/orders/{ORDER_ID}")
@spec.validate(resp=Response(HTTP_200=AdminOrderDetail, **ERRORS), tags=TAGS, security=SECURITY)
def get_order(order_id: int):
    """One order with its lines, status history, payment transactions and refunds."""
    return present_detail(_order_or_404(order_id))


@admin_bp.post(f"/orders/{ORDER_ID}/ship")
@audited("order.ship", row(Order, "order_id"))
@spec.validate(
    resp=Response(
        HTTP_200=AdminOrderDetail, HTTP_409=ErrorResponse, HTTP_422=ErrorResponse, **BODY_ERRORS
    ),
    tags=TAGS,
    security=SECURITY,
)
def ship(order_id: int, json: ShipBody):
    """Ship a paid order (待发货 → 待收货) with a carrier and tracking number."""
    order = _order_or_404(order_id)
    try:
        ship_order(order, json.carrier, json.tracking_number, _actor())
    except InvalidTransition as exc:
        raise _conflict(exc) from None
    except OrderError as exc:
        db.session.rollback()
        field = {"invalid_carrier": "carrier", "invalid_tracking_number": "tracking_number"}
        details = [{"field": field.get(exc.code, "body"), "code": exc.code, "message": exc.message}]
        raise ApiError(exc.status, exc.code, exc.message, details) from None
    db.session.commit()
    return present_detail(order)


@admin_bp.post(f"/refunds/{REFUND_ID}/approve")
@audited("refund.approve", row(Refund, "refund_id"))
@spec.validate(
    resp=Response(
        HTTP_200=AdminRefund, HTTP_409=ErrorResponse, HTTP_502=ErrorResponse, **BODY_ERRORS
    ),
    tags=TAGS,
    security=SECURITY,
)
def approve(refund_id: int):
    """Approve a refund: WeChat Pay is asked to refund it; the refund notice completes it.

    Answers the refund, usually ``approved`` (``refunded`` once WeChat's notice arrives).
    A refund that WeChat refused is ``failed`` and may be approved again.
    """
    refund = _refund_or_404(refund_id)
    try:
        approve_refund(refund, _actor())
    except InvalidTransition as exc:
        raise _conflict(exc) from None
    except PaymentError as exc:
        # approve_refund moved the refund to failed with WeChat's message: keep that.
        db.session.commit()
        raise ApiError(502, "payment_error", exc.message) from None
    except PaymentMismatch:
        db.session.rollback()
        raise ApiError(409, "refund_mismatch", "微信退款结果与退款申请不符，请人工核对") from None
    db.session.commit()
    if refund.status == "refunded":
        enqueue_refund_check(refund.order_id, refund.id)  # the risk checks, after the commit
    return present_refund(refund)


@admin_bp.post(f"/refunds/{REFUND_ID}/reject")
@audited("refund.reject", row(Refund, "refund_id"))
@spec.validate(
    resp=Response(
        HTTP_200=AdminRefund, HTTP_409=ErrorResponse, HTTP_422=ErrorResponse, **BODY_ERRORS
    ),
    tags=TAGS,
    security=SECURITY,
)
def reject(refund_id: int, json: RefundRejectBody):
    """Refuse a refund request with a reason the customer sees."""
    refund = _refund_or_404(refund_id)
    try:
        reject_refund(refund, _actor(), json.reason)
    except InvalidTransition as exc:
        raise _conflict(exc) from None
    db.session.commit()
    return present_refund(refund)
