"""Ordering merchants over JSON.

Customer side (session cookie, ``/api/v1/merchant/...``): my level and money, my price
list, my orders (placed by me or by my bound customers) with tracking, and placing an
order for a customer at my level price. Every endpoint reads the merchant of the
signed-in user, never an id from the request, so a merchant only ever sees its own.

Merchant Open API (bearer token): ``/api/v1/admin/merchant-levels`` (levels with their
SKU prices, replaced and validated together) and ``/api/v1/admin/merchants`` (list,
create or approve, PATCH parent/level). A refused change answers the service's code and
Chinese message (422, or 409 for a cycle or a level in use).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Literal

from flask import current_app, g
from pydantic import BaseModel, Field, StrictInt
from spectree import Response
from sqlalchemy import select

from app.accounts.guards import customer_id, customer_required
from app.accounts.models import User
from app.api.blueprints import admin_bp, bp
from app.api.orders import OrderOut, order_detail, order_errors
from app.api.present import page_meta
from app.api.schemas import (
    MAX_ID,
    Body,
    ErrorResponse,
    Id,
    Name,
    PageMeta,
    PageQuery,
    Text,
    omitted,
)
from app.api.spec import BEARER, COOKIE, spec
from app.cloud import merchants as svc
from app.cloud.models import CloudSettings, MerchantLevel, MerchantSkuPrice, OrderingMerchant
from app.cloud.pricing import (
    MerchantError,
    get_cloud_settings,
    level_names,
    list_levels,
    price_table,
    save_levels,
    set_precedence,
)
from app.core.audit import audited, combined, row, rows
from app.core.errors import ApiError
from app.core.status import InvalidTransition
from app.distribution.centre import share_url
from app.extensions import db
from app.ledger.balances import balances
from app.orders.services import MAX_LINES, MAX_QUANTITY, ItemRequest
from app.orders.states import ORDER_STATUS_LABELS

TAGS = ["merchant"]
ADMIN_TAGS = ["admin-merchants"]
COOKIE_SECURITY = {COOKIE: []}
SECURITY = {BEARER: []}
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_403": ErrorResponse, "HTTP_404": ErrorResponse}
BODY_ERRORS = {
    **ERRORS,
    "HTTP_400": ErrorResponse,
    "HTTP_409": ErrorResponse,
    "HTTP_415": ErrorResponse,
    "HTTP_422": ErrorResponse,
}


# --- models ---------------------------------------------------------------------------------


class MerchantMe(BaseModel):
    id: int
    level: int = Field(description="1-5，1 为最高级")
    level_name: str
    status: str = Field(description="pending / active / disabled")
    parent_level: int | None = Field(description="上级的等级；null 为直属总部")
    code: str = Field(description="推广码：链接 ?ref=CODE 绑定客户")
    share_url: str
    children_count: int
    pending_fen: int
    available_fen: int
    withdrawn_fen: int


class MerchantPrice(BaseModel):
    sku_id: int
    product_id: int
    title: str
    retail_fen: int
    price_fen: int = Field(description="我的等级价")
    stock: int = Field(description="总部实时库存")


class MerchantPriceList(BaseModel):
    level: int
    items: list[MerchantPrice]


class MerchantOrderItem(Body):
    sku_id: Id
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)


class MerchantOrderCreate(Body):
    """An order for a customer at my level price; headquarters ships it to the customer."""

    items: list[MerchantOrderItem] = Field(min_length=1, max_length=MAX_LINES)
    name: Name = Field(min_length=1, max_length=32, description="客户姓名")
    phone: Text = Field(max_length=20, description="客户手机号")
    district_code: Text = Field(max_length=6, description="区县代码（GB/T 2260，6 位）")
    detail: Name = Field(min_length=2, max_length=200, description="详细地址")
    remark: Text = Field("", max_length=200)


class MerchantOrderRow(BaseModel):
    id: int
    number: str
    status: str
    status_text: str
    own: bool = Field(description="true：我代客下的单；false：我绑定的客户自己下的单")
    customer: str = Field(description="收货人（代客单）或打码的买家昵称")
    total_fen: int
    carrier: str | None
    tracking_number: str | None
    created_at: datetime
    shipped_at: datetime | None


class MerchantOrderPage(BaseModel):
    items: list[MerchantOrderRow]
    meta: PageMeta


class AdminLevelPrice(BaseModel):
    sku_id: int
    title: str
    retail_fen: int
    prices: dict[str, int] = Field(description="等级 → 单价（分）")
    set_levels: list[int] = Field(description="设置了固定价的等级（其余按折扣计算）")


class AdminLevel(BaseModel):
    level: int
    name: str
    discount_bp: int = Field(description="零售价的折扣，万分比：价格 = 零售价 × (1 − 折扣)")


class AdminLevelsOut(BaseModel):
    levels: list[AdminLevel]
    precedence: str = Field(description="price_difference / commission / both")
    prices: list[AdminLevelPrice]


class AdminLevelIn(Body):
    level: StrictInt = Field(ge=1, le=5)
    name: Name = Field(min_length=1, max_length=16)
    discount_bp: StrictInt = Field(ge=0, le=10000)


class AdminPriceIn(Body):
    level: StrictInt = Field(ge=1, le=5)
    sku_id: Id
    price_fen: StrictInt | None = Field(description="固定价（分）；null 取消固定价，按折扣")


class AdminLevelsPut(Body):
    """Replaces the levels; ``prices`` set or clear SKU prices (others are kept). Every SKU
    is checked: level 1 ≤ level 2 ≤ … ≤ retail, or 422 ``price_order``."""

    levels: list[AdminLevelIn] = Field(min_length=1, max_length=5)
    prices: list[AdminPriceIn] = Field(default_factory=list, max_length=5000)
    precedence: Literal["price_difference", "commission", "both"] = omitted()


class AdminMerchantQuery(PageQuery):
    status: Literal["pending", "active", "disabled", "rejected"] | None = None
    level: int | None = Field(None, ge=1, le=5)


class AdminMerchant(BaseModel):
    id: int
    distributor_id: int
    user_id: int
    nickname: str
    code: str
    level: int
    parent_id: int | None
    status: str
    created_at: datetime
    pending_fen: int
    available_fen: int


class AdminMerchantPage(BaseModel):
    items: list[AdminMerchant]
    meta: PageMeta


class AdminMerchantCreate(Body):
    user_id: Id
    level: StrictInt = Field(ge=1, le=5)
    parent_id: Id | None = None
    status: Literal["active", "pending"] = "active"


class AdminMerchantPatch(Body):
    level: StrictInt = omitted(ge=1, le=5)
    parent_id: Id | None = omitted(description="新上级订货商编号；null 表示直属总部")


# --- helpers --------------------------------------------------------------------------------


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo:
        return moment
    return moment.replace(tzinfo=UTC)


@contextmanager
def merchant_errors() -> Iterator[None]:
    """Refusals of the services as JSON errors; the session is rolled back first."""
    try:
        yield
    except MerchantError as exc:
        db.session.rollback()
        detail = [{"field": exc.field or "body", "code": exc.code, "message": exc.message}]
        raise ApiError(exc.status, exc.code, exc.message, detail) from None
    except InvalidTransition as exc:
        db.session.rollback()
        raise ApiError(
            409, "invalid_transition", f"当前状态为 {exc.current}，不能改为 {exc.wanted}"
        ) from None


def _me() -> OrderingMerchant:
    me = svc.merchant_for_user(customer_id())
    if me is None:
        raise ApiError(403, "not_merchant", "你还不是订货商")
    return me


# --- customer side --------------------------------------------------------------------------


@bp.get("/merchant/me")
@customer_required
@spec.validate(resp=Response(HTTP_200=MerchantMe, **ERRORS), tags=TAGS, security=COOKIE_SECURITY)
def merchant_me():
    """My level, parent, share link and money (403 ``not_merchant`` for others)."""
    me = _me()
    money = balances(me.distributor_id)
    return MerchantMe(
        id=me.id,
        level=me.level,
        level_name=level_names().get(me.level, ""),
        status=me.status,
        parent_level=me.parent.level if me.parent else None,
        code=me.distributor.code,
        share_url=share_url(current_app.config["PUBLIC_BASE_URL"], me.distributor.code),
        children_count=len(svc.children_of(me.id)),
        pending_fen=money.pending_fen,
        available_fen=money.available_fen,
        withdrawn_fen=money.withdrawn_fen,
    )


@bp.get("/merchant/prices")
@customer_required
@spec.validate(
    resp=Response(HTTP_200=MerchantPriceList, **ERRORS), tags=TAGS, security=COOKIE_SECURITY
)
def merchant_prices():
    """My price for every SKU on sale, with retail and headquarters' stock."""
    me = _me()
    return MerchantPriceList(
        level=me.level,
        items=[
            MerchantPrice(
                sku_id=r.sku.id,
                product_id=r.sku.product_id,
                title=r.title,
                retail_fen=r.retail_fen,
                price_fen=r.prices[me.level],
                stock=r.sku.stock,
            )
            for r in price_table(on_shelf_only=True)
            if me.level in r.prices
        ],
    )


@bp.get("/merchant/orders")
@customer_required
@spec.validate(
    resp=Response(HTTP_200=MerchantOrderPage, HTTP_422=ErrorResponse, **ERRORS),
    tags=TAGS,
    security=COOKIE_SECURITY,
)
def merchant_orders(query: PageQuery):
    """Orders I placed and my bound customers' paid orders, newest first, with tracking."""
    me = _me()
    rows, total = svc.orders_of(me, query.page, query.per_page)
    return MerchantOrderPage(
        items=[
            MerchantOrderRow(
                id=r.order.id,
                number=r.order.number,
                status=r.order.status,
                status_text=ORDER_STATUS_LABELS.get(r.order.status, r.order.status),
                own=r.own,
                customer=r.customer,
                total_fen=r.order.total_fen,
                carrier=r.order.carrier,
                tracking_number=r.order.tracking_number,
                created_at=_aware(r.order.created_at),
                shipped_at=_aware(r.order.shipped_at),
            )
            for r in rows
        ],
        meta=page_meta(query.page, query.per_page, total),
    )


@bp.post("/merchant/orders")
@customer_required
@spec.validate(resp=Response(HTTP_201=OrderOut, **BODY_ERRORS), tags=TAGS, security=COOKIE_SECURITY)
def merchant_place_order(json: MerchantOrderCreate):
    """Order for a customer at my level price; pay it with ``POST /orders/{id}/pay``."""
    me = _me()
    with merchant_errors(), order_errors():
        order = svc.place_merchant_order(
            me,
            [ItemRequest(i.sku_id, i.quantity) for i in json.items],
            name=json.name,
            phone=json.phone,
            district_code=json.district_code,
            detail=json.detail,
            remark=json.remark,
        )
    db.session.commit()
    return order_detail(order), 201


# --- Open API -------------------------------------------------------------------------------


def _levels_out() -> AdminLevelsOut:
    return AdminLevelsOut(
        levels=[
            AdminLevel(level=row.level, name=row.name, discount_bp=row.discount_bp)
            for row in list_levels()
        ],
        precedence=get_cloud_settings().precedence,
        prices=[
            AdminLevelPrice(
                sku_id=r.sku.id,
                title=r.title,
                retail_fen=r.retail_fen,
                prices={str(level): price for level, price in r.prices.items()},
                set_levels=sorted(r.fixed),
            )
            for r in price_table()
        ],
    )


# Levels, level prices and the precedence setting, saved together (audit target).
MERCHANT_PRICING = combined(
    rows(MerchantLevel, "level"),
    rows(MerchantSkuPrice, "price"),
    rows(CloudSettings, "settings"),
    subject="merchant_pricing",
)


@admin_bp.get("/merchant-levels")
@spec.validate(
    resp=Response(HTTP_200=AdminLevelsOut, HTTP_401=ErrorResponse),
    tags=ADMIN_TAGS,
    security=SECURITY,
)
def admin_levels():
    """Levels, the precedence setting and every SKU's price at every level."""
    out = _levels_out()
    db.session.commit()  # the settings row may have been created just now
    return out


@admin_bp.put("/merchant-levels")
@audited("merchant_levels.save", MERCHANT_PRICING)
@spec.validate(
    resp=Response(HTTP_200=AdminLevelsOut, **BODY_ERRORS), tags=ADMIN_TAGS, security=SECURITY
)
def admin_put_levels(json: AdminLevelsPut):
    """Replace the levels (and set prices), validated for every SKU together."""
    with merchant_errors():
        save_levels(
            [row.model_dump() for row in json.levels], [p.model_dump() for p in json.prices]
        )
        if json.precedence is not None:
            set_precedence(json.precedence)
    db.session.commit()
    return _levels_out()


def _merchant_out(m: OrderingMerchant) -> AdminMerchant:
    money = balances(m.distributor_id)
    user = m.distributor.user
    return AdminMerchant(
        id=m.id,
        distributor_id=m.distributor_id,
        user_id=m.distributor.user_id,
        nickname=user.nickname if user else "",
        code=m.distributor.code,
        level=m.level,
        parent_id=m.parent_id,
        status=m.status,
        created_at=_aware(m.created_at),
        pending_fen=money.pending_fen,
        available_fen=money.available_fen,
    )


def _get(merchant_id: int) -> OrderingMerchant:
    found = db.session.get(OrderingMerchant, merchant_id) if merchant_id <= MAX_ID else None
    if found is None:
        raise ApiError(404, "not_found", "订货商不存在")
    return found


def _actor() -> str:
    return f"api:{g.api_token.id}"


@admin_bp.get("/merchants")
@spec.validate(
    resp=Response(HTTP_200=AdminMerchantPage, HTTP_401=ErrorResponse, HTTP_422=ErrorResponse),
    tags=ADMIN_TAGS,
    security=SECURITY,
)
def admin_merchants(query: AdminMerchantQuery):
    """Ordering merchants, newest first; filter by status or level."""
    q = select(OrderingMerchant)
    if query.status:
        q = q.where(OrderingMerchant.status == query.status)
    if query.level:
        q = q.where(OrderingMerchant.level == query.level)
    pagination = db.paginate(
        q.order_by(OrderingMerchant.id.desc()),
        page=query.page,
        per_page=query.per_page,
        error_out=False,
    )
    return AdminMerchantPage(
        items=[_merchant_out(m) for m in pagination.items],
        meta=page_meta(query.page, query.per_page, pagination.total or 0),
    )


@admin_bp.post("/merchants")
@audited("merchant.create", rows(OrderingMerchant, "ordering_merchant"))
@spec.validate(
    resp=Response(HTTP_201=AdminMerchant, **BODY_ERRORS), tags=ADMIN_TAGS, security=SECURITY
)
def admin_create_merchant(json: AdminMerchantCreate):
    """Make a user an ordering merchant (``pending`` to approve later)."""
    if db.session.get(User, json.user_id) is None:
        raise ApiError(404, "not_found", "用户不存在")
    with merchant_errors():
        m = svc.create_merchant(json.user_id, json.level, json.parent_id, _actor(), json.status)
        db.session.commit()
    return _merchant_out(m), 201


@admin_bp.post("/merchants/<int:merchant_id>/approve")
@audited("merchant.status", row(OrderingMerchant, "merchant_id"))
@spec.validate(
    resp=Response(HTTP_200=AdminMerchant, **BODY_ERRORS), tags=ADMIN_TAGS, security=SECURITY
)
def admin_approve_merchant(merchant_id: int):
    """Approve a pending merchant (409 ``invalid_transition`` otherwise)."""
    m = _get(merchant_id)
    with merchant_errors():
        svc.approve_merchant(m, _actor())
        db.session.commit()
    return _merchant_out(m)


@admin_bp.patch("/merchants/<int:merchant_id>")
@audited("merchant.update", row(OrderingMerchant, "merchant_id"))
@spec.validate(
    resp=Response(HTTP_200=AdminMerchant, **BODY_ERRORS), tags=ADMIN_TAGS, security=SECURITY
)
def admin_patch_merchant(merchant_id: int, json: AdminMerchantPatch):
    """Change level and/or parent, checked together (parent higher, no cycles), audited."""
    m = _get(merchant_id)
    given = json.model_fields_set
    with merchant_errors():
        svc.change_merchant(
            m,
            _actor(),
            level=json.level if "level" in given else None,
            parent_id=json.parent_id,
            set_parent="parent_id" in given,
        )
        db.session.commit()
    return _merchant_out(m)
