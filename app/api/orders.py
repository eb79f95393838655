"""Customer orders over JSON: place, list, read, pay, cancel, confirm receipt, ask a refund.

Thin views: validate (spectree), call app.orders / app.payments services, commit once.
An ``OrderError`` or a refused transition rolls the whole request back, so nothing is
half-written (stock taken for an earlier line is given back with the transaction).

Customers only ever see their own orders: another customer's order id answers 404, the
same as an id that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Literal

import redis
from flask import current_app, g, url_for
from flask_login import current_user
from pydantic import BaseModel, Field, StrictInt
from spectree import Response
from sqlalchemy import select

from app.accounts.guards import customer_id, customer_required
from app.accounts.wxa import has_official_openid
from app.api.blueprints import bp
from app.api.present import media_url, page_meta
from app.api.schemas import MAX_ID, Body, ErrorResponse, Id, Name, PageMeta, PageQuery, Text
from app.api.spec import COOKIE, spec
from app.core.errors import ApiError
from app.core.models import StatusChange
from app.core.redis import get_redis
from app.core.status import InvalidTransition
from app.core.time import utcnow
from app.coupons.services import discount_for
from app.extensions import db
from app.orders.models import (
    PENDING_PAYMENT,
    Order,
    OrderLine,
    PaymentTransaction,
    Refund,
)
from app.orders.queries import customer_orders, order_history, refunds_by_line
from app.orders.refunds import refundable_quantity, request_refund
from app.orders.services import (
    MAX_LINES,
    MAX_QUANTITY,
    ItemRequest,
    OrderError,
    cancel_order,
    place_order,
)
from app.orders.shipping import complete_order
from app.orders.states import ORDER_STATUS_LABELS, REFUND_STATUS_LABELS
from app.payments.client import (
    PaymentError,
    close_order,
    create_prepay,
    jsapi_params,
    query_order,
    sandbox_cashier_url,
    uses_sandbox,
)
from app.payments.notices import NoticeRejected, apply_payment
from jobs.payments import enqueue_order_paid

log = logging.getLogger(__name__)

TAGS = ["orders"]
SECURITY = {COOKIE: []}
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_404": ErrorResponse}
BODY_ERRORS = {**ERRORS, "HTTP_400": ErrorResponse, "HTTP_409": ErrorResponse}
ORDER_ID = "<int:order_id>"
LINE_ID = "<int:line_id>"
SYNC_INTERVAL = 3  # seconds between two questions to WeChat about one order


# --- shared by the customer endpoints (cart and addresses use ``order_errors`` too) ---------


def actor() -> str:
    """How the history names the customer."""
    return f"user:{customer_id()}"


@contextmanager
def order_errors() -> Iterator[None]:
    """Run a change; a refused one rolls back and answers 4xx with the service's words."""
    try:
        yield
    except OrderError as exc:
        db.session.rollback()
        raise ApiError(exc.status, exc.code, exc.message, link=exc.link) from None
    except InvalidTransition:
        db.session.rollback()
        raise ApiError(409, "invalid_transition", "订单状态已变化，请刷新后重试") from None


# --- models ---------------------------------------------------------------------------------

OrderStatus = Literal["pending_payment", "paid", "shipped", "completed", "cancelled"]


class OrderItemIn(Body):
    sku_id: Id
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)


class OrderCreate(Body):
    """What the customer wants: SKUs and quantities (prices are read on the server)."""

    items: list[OrderItemIn] = Field(min_length=1, max_length=MAX_LINES)
    address_id: Id
    remark: Text = Field("", max_length=200, description="订单备注")
    coupon_id: Id | None = Field(
        None, description="使用的优惠券（GET /coupons/mine 的 id）；不传则不用券，一单一张"
    )


class OrderListQuery(PageQuery):
    status: OrderStatus | Literal["refund"] | None = Field(
        None, description="按状态筛选；refund 为有退款申请的订单"
    )


class OrderReadQuery(BaseModel):
    sync: bool = Field(False, description="待付款时向微信支付查询结果（支付页轮询用）")


class RefundCreate(Body):
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)
    reason: Name = Field(min_length=1, max_length=200)


class RefundOut(BaseModel):
    id: int
    order_line_id: int
    quantity: int
    amount_fen: int
    reason: str
    status: str
    status_text: str
    review_note: str
    created_at: datetime
    kind: str = Field("refund_only", description="refund_only 仅退款 / return_refund 退货退款")
    return_carrier: str | None = None
    return_tracking_number: str | None = None


class OrderLineOut(BaseModel):
    id: int
    product_id: int | None
    sku_id: int | None
    title: str
    spec_text: str
    image_url: str | None
    unit_price_fen: int
    quantity: int
    amount_fen: int
    refunded_quantity: int
    refunded_fen: int
    refundable_quantity: int = Field(description="还可申请退款的件数")
    refunds: list[RefundOut]


class ReceiverOut(BaseModel):
    name: str
    phone: str
    province: str
    city: str
    district: str
    district_code: str
    detail: str


class StatusChangeOut(BaseModel):
    from_status: str | None
    to_status: str
    reason: str
    created_at: datetime


class OrderOut(BaseModel):
    id: int
    number: str
    status: str = Field(description="pending_payment / paid / shipped / completed / cancelled")
    status_text: str
    items_fen: int
    shipping_fen: int
    total_fen: int
    coupon_fen: int = Field(0, description="优惠券抵扣（已按比例分摊进各行 amount_fen）")
    paid_fen: int
    refunded_fen: int
    remark: str
    receiver: ReceiverOut
    carrier: str | None
    tracking_number: str | None
    created_at: datetime
    pay_deadline: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    lines: list[OrderLineOut]
    history: list[StatusChangeOut] | None = Field(None, description="状态变化记录（详情接口）")


class OrderPage(BaseModel):
    items: list[OrderOut]
    meta: PageMeta


class JsapiParams(BaseModel):
    """What ``WeixinJSBridge.invoke('getBrandWCPayRequest', ...)`` takes."""

    appId: str
    timeStamp: str
    nonceStr: str
    package: str
    signType: str
    paySign: str


class PayOut(BaseModel):
    out_trade_no: str
    jsapi: JsapiParams
    cashier_url: str | None = Field(None, description="本地微信模拟器的收银台（仅开发环境）")


# --- presenting -----------------------------------------------------------------------------


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every stored time is UTC.
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def refund_out(refund: Refund) -> RefundOut:
    return RefundOut(
        id=refund.id,
        order_line_id=refund.order_line_id,
        quantity=refund.quantity,
        amount_fen=refund.amount_fen,
        reason=refund.reason,
        status=refund.status,
        status_text=REFUND_STATUS_LABELS.get(refund.status, refund.status),
        review_note=refund.review_note,
        created_at=_aware(refund.created_at),
        kind=refund.kind,
        return_carrier=refund.return_carrier,
        return_tracking_number=refund.return_tracking_number,
    )


def order_out(
    order: Order, refunds: dict[int, list[Refund]], history: list[StatusChange] | None = None
) -> OrderOut:
    """An order as its customer sees it."""
    return OrderOut(
        id=order.id,
        number=order.number,
        status=order.status,
        status_text=ORDER_STATUS_LABELS.get(order.status, order.status),
        items_fen=order.items_fen,
        shipping_fen=order.shipping_fen,
        total_fen=order.total_fen,
        coupon_fen=order.coupon_fen or 0,
        paid_fen=order.paid_fen,
        refunded_fen=order.refunded_fen,
        remark=order.remark,
        receiver=ReceiverOut(
            name=order.receiver_name,
            phone=order.receiver_phone,
            province=order.province,
            city=order.city,
            district=order.district,
            district_code=order.district_code,
            detail=order.address_detail,
        ),
        carrier=order.carrier,
        tracking_number=order.tracking_number,
        created_at=_aware(order.created_at),
        pay_deadline=_aware(order.pay_deadline),
        paid_at=_aware(order.paid_at),
        shipped_at=_aware(order.shipped_at),
        completed_at=_aware(order.completed_at),
        cancelled_at=_aware(order.cancelled_at),
        lines=[
            OrderLineOut(
                id=line.id,
                product_id=line.product_id,
                sku_id=line.sku_id,
                title=line.title,
                spec_text=line.spec_text,
                image_url=media_url(line.image_filename) if line.image_filename else None,
                unit_price_fen=line.unit_price_fen,
                quantity=line.quantity,
                amount_fen=line.amount_fen,
                refunded_quantity=line.refunded_quantity,
                refunded_fen=line.refunded_fen,
                refundable_quantity=refundable_quantity(order, line, refunds.get(line.id, [])),
                refunds=[refund_out(r) for r in refunds.get(line.id, [])],
            )
            for line in order.lines
        ],
        history=(
            None
            if history is None
            else [
                StatusChangeOut(
                    from_status=h.from_status,
                    to_status=h.to_status,
                    reason=h.reason,
                    created_at=_aware(h.created_at),
                )
                for h in history
            ]
        ),
    )


def order_detail(order: Order) -> OrderOut:
    return order_out(order, refunds_by_line([order.id]), order_history(order))


# --- reading --------------------------------------------------------------------------------


def own_order(order_id: int) -> Order:
    """The signed-in customer's order, or 404 (also for another customer's)."""
    order = db.session.get(Order, order_id) if order_id <= MAX_ID else None
    if order is None or order.user_id != customer_id():
        raise ApiError(404, "not_found", "订单不存在")
    return order


def sync_payment(order: Order) -> None:
    """Ask WeChat Pay about a pending order and apply a SUCCESS answer (at most every 3 s).

    The customer's page never marks an order paid: only WeChat's notice, or WeChat's own
    answer to this server-side query, applied through the same ``apply_payment`` checks.
    """
    if order.status != PENDING_PAYMENT:
        return
    prepaid = db.session.scalar(
        select(PaymentTransaction.id)
        .where(PaymentTransaction.order_id == order.id, PaymentTransaction.kind == "prepay")
        .limit(1)
    )
    if prepaid is None:
        return  # never sent to WeChat: nothing to ask
    try:
        if not get_redis().set(f"orders:pay-sync:{order.id}", 1, nx=True, ex=SYNC_INTERVAL):
            return
    except (redis.RedisError, OSError):
        pass  # no rate limit without Redis; the query itself is harmless
    try:
        answer = query_order(order.out_trade_no)
    except PaymentError as exc:
        log.warning("pay query for %s failed: %s", order.number, exc.message)
        return
    if not answer or answer.get("trade_state") != "SUCCESS":
        return
    try:
        _order, first = apply_payment(answer)
    except NoticeRejected as exc:
        db.session.rollback()
        log.error("pay query answer for %s refused: %s", order.number, exc.message)
        return
    db.session.commit()
    if first:
        enqueue_order_paid(order.id)
    db.session.refresh(order)


# --- endpoints ------------------------------------------------------------------------------


@bp.post("/orders")
@customer_required
@spec.validate(
    resp=Response(HTTP_201=OrderOut, HTTP_422=ErrorResponse, **BODY_ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def create_order(json: OrderCreate):
    """Place an order: stock is taken now; 409 ``sold_out`` (售罄) when there is not enough,
    ``purchase_limit_exceeded`` past a product's 限购, ``too_many_unpaid_orders`` when the
    customer already holds the shop's maximum of unpaid orders (``link`` is their list)."""
    items = [ItemRequest(item.sku_id, item.quantity) for item in json.items]
    user_id = customer_id()
    coupon = discount_for(json.coupon_id, user_id) if json.coupon_id is not None else None
    with order_errors():
        order = place_order(
            user_id, items, json.address_id, json.remark, actor=actor(), discount=coupon
        )
        db.session.commit()
    location = url_for("api.get_order", order_id=order.id)
    return order_detail(order), 201, {"Location": location}


@bp.get("/orders")
@customer_required
@spec.validate(
    resp=Response(HTTP_200=OrderPage, HTTP_401=ErrorResponse), tags=TAGS, security=SECURITY
)
def list_orders(query: OrderListQuery):
    """The customer's own orders, newest first; ``status`` picks one tab."""
    rows, total = customer_orders(customer_id(), query.status, query.page, query.per_page)
    refunds = refunds_by_line([o.id for o in rows])
    return OrderPage(
        items=[order_out(o, refunds) for o in rows],
        meta=page_meta(query.page, query.per_page, total),
    )


@bp.get(f"/orders/{ORDER_ID}")
@customer_required
@spec.validate(resp=Response(HTTP_200=OrderOut, **ERRORS), tags=TAGS, security=SECURITY)
def get_order(order_id: int, query: OrderReadQuery):
    """One of the customer's orders with lines, refunds and history; others' are 404."""
    order = own_order(order_id)
    if query.sync:
        sync_payment(order)
    return order_detail(order)


@bp.post(f"/orders/{ORDER_ID}/pay")
@customer_required
@spec.validate(
    resp=Response(HTTP_200=PayOut, HTTP_502=ErrorResponse, **BODY_ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def pay_order(order_id: int):
    """Create the JSAPI prepay; answer the parameters for ``getBrandWCPayRequest``.

    With the local stand-in, ``cashier_url`` is its pay sheet, which comes back to the
    order's pay page afterwards.
    """
    order = own_order(order_id)
    if order.status != PENDING_PAYMENT:
        raise ApiError(409, "not_payable", "订单当前状态不能支付")
    if _aware(order.pay_deadline) < utcnow():
        raise ApiError(409, "order_expired", "订单已超时关闭，请重新下单")
    appid, openid = _payer()
    try:
        prepay_id = create_prepay(order, openid, appid)
        params = jsapi_params(prepay_id, appid)
    except PaymentError as exc:
        db.session.rollback()
        raise ApiError(exc.status, exc.code.lower(), exc.message) from None
    db.session.commit()
    cashier = None
    if uses_sandbox():
        back = current_app.config["PUBLIC_BASE_URL"] + url_for("orders.pay", order_id=order.id)
        cashier = sandbox_cashier_url(prepay_id, back)
    return PayOut(out_trade_no=order.out_trade_no, jsapi=JsapiParams(**params), cashier_url=cashier)


def _payer() -> tuple[str | None, str]:
    """(appid, openid) of who pays: signed in from the mini-program (a ``wxa`` bearer
    token), its appid and openid, for ``wx.requestPayment``; else the official account's."""
    token = g.get("customer_token")
    if token is not None and token.channel == "wxa":
        if not current_app.config.get("WECHAT_MINIAPP_APPID"):
            raise ApiError(503, "miniapp_not_configured", "小程序未配置")
        if not current_user.wxa_openid:
            raise ApiError(400, "no_openid", "请在小程序中重新登录后再支付")
        return current_app.config["WECHAT_MINIAPP_APPID"], current_user.wxa_openid
    if not has_official_openid(current_user):
        raise ApiError(400, "no_openid", "请在微信中打开并登录后再支付")
    return None, current_user.openid


@bp.post(f"/orders/{ORDER_ID}/cancel")
@customer_required
@spec.validate(
    resp=Response(HTTP_200=OrderOut, HTTP_502=ErrorResponse, **BODY_ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def cancel(order_id: int):
    """Cancel an unpaid order; its stock comes back once.

    If WeChat already has a prepay for it, the WeChat order is closed first, so money
    cannot arrive for an order we cancelled; WeChat saying it is already paid wins.
    """
    order = own_order(order_id)
    if order.status != PENDING_PAYMENT:
        raise ApiError(409, "invalid_transition", "订单当前状态不能取消")
    prepaid = db.session.scalar(
        select(PaymentTransaction.id)
        .where(PaymentTransaction.order_id == order.id, PaymentTransaction.kind == "prepay")
        .limit(1)
    )
    if prepaid is not None:
        try:
            close_order(order.out_trade_no)
        except PaymentError as exc:
            if exc.code == "ORDERPAID":
                sync_payment(order)
                raise ApiError(409, "order_paid", "订单已支付，不能取消") from None
            raise ApiError(exc.status, exc.code.lower(), exc.message) from None
    with order_errors():
        cancel_order(order, actor(), "买家取消订单")
        db.session.commit()
    return order_detail(order)


@bp.post(f"/orders/{ORDER_ID}/confirm-receipt")
@customer_required
@spec.validate(resp=Response(HTTP_200=OrderOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def confirm_receipt(order_id: int):
    """The customer says the parcel arrived: shipped → completed."""
    order = own_order(order_id)
    with order_errors():
        complete_order(order, actor(), "买家确认收货")  # also dates its pending money
        db.session.commit()
    return order_detail(order)


@bp.post(f"/orders/{ORDER_ID}/lines/{LINE_ID}/refund")
@customer_required
@spec.validate(
    resp=Response(HTTP_201=RefundOut, HTTP_422=ErrorResponse, **BODY_ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def refund_line(order_id: int, line_id: int, json: RefundCreate):
    """Ask to refund ``quantity`` units of one line, with a reason; staff review it."""
    order = own_order(order_id)
    line = db.session.get(OrderLine, line_id) if line_id <= MAX_ID else None
    if line is None or line.order_id != order.id:
        raise ApiError(404, "not_found", "订单中没有该商品")
    with order_errors():
        refund = request_refund(order, line, json.quantity, json.reason, actor())
        db.session.commit()
    return refund_out(refund), 201
