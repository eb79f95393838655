"""Merchant Open API for coupons (优惠券): create, pause / resume, issue to customers, and
the list with claimed, used, redemption rate and the sales they drove.

The same services as the admin pages (``app/coupons/services.py``), so both doors refuse
the same input with the same Chinese message (422 with the service's code).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StrictBool, StrictInt
from spectree import Response

from app.api.blueprints import admin_bp
from app.api.schemas import MAX_ID, Body, ErrorResponse, Id, Name
from app.api.spec import BEARER, spec
from app.core.audit import audited, row, rows
from app.core.errors import ApiError
from app.coupons.admin_queries import TemplateFigures, customers_of, template_figures
from app.coupons.models import KINDS, SCOPES, VALIDITY_MODES, CouponTemplate
from app.coupons.services import CouponError, TemplateInput, create_template, issue, set_paused
from app.distribution.models import Distributor
from app.extensions import db

COUPON_ID = "<int:coupon_id>"
TAGS = ["admin-coupons"]
SECURITY = {BEARER: []}
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_404": ErrorResponse}
BODY_ERRORS = {
    **ERRORS,
    "HTTP_400": ErrorResponse,
    "HTTP_409": ErrorResponse,
    "HTTP_415": ErrorResponse,
    "HTTP_422": ErrorResponse,
}
Moment = Annotated[AwareDatetime, Field(strict=False, description="ISO 8601，须带时区")]


class AdminCoupon(BaseModel):
    id: int
    name: str
    kind: str = Field(description="amount_off 满减 / percent_off 折扣 / no_threshold 无门槛")
    threshold_fen: int
    off_fen: int
    off_bp: int = Field(description="折扣券：优惠比例，基点（2000 = 减 20%，即 8 折）")
    max_off_fen: int = Field(description="折扣券最高优惠；0 表示不限")
    scope: str = Field(description="all / categories / products")
    scope_ids: list[int]
    valid_mode: str = Field(description="fixed 固定日期 / days 领取后 N 天")
    starts_at: datetime | None
    ends_at: datetime | None
    valid_days: int
    stock: int
    issued: int
    per_customer: int
    distributor_only: bool = Field(description="分销员专属券")
    status: str = Field(description="active / paused")
    claimed: int
    used: int
    redemption_rate: str = Field(description="核销率 used ÷ claimed")
    orders: int = Field(description="用券并已付款的订单数")
    sales_fen: int = Field(description="这些订单的实付合计（减退款）")


class AdminCouponList(BaseModel):
    items: list[AdminCoupon]


class AdminCouponCreate(Body):
    name: Name = Field(min_length=1, max_length=32)
    kind: Literal[KINDS]  # type: ignore[valid-type]
    stock: StrictInt = Field(ge=1, le=10_000_000)
    off_fen: StrictInt = Field(0, ge=0, le=100_000_000)
    threshold_fen: StrictInt = Field(0, ge=0, le=100_000_000)
    off_bp: StrictInt = Field(0, ge=0, le=9999)
    max_off_fen: StrictInt = Field(0, ge=0, le=100_000_000)
    scope: Literal[SCOPES] = "all"  # type: ignore[valid-type]
    scope_ids: list[Id] = Field(default_factory=list, max_length=200)
    valid_mode: Literal[VALIDITY_MODES] = "days"  # type: ignore[valid-type]
    valid_days: StrictInt = Field(7, ge=0, le=3650)
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    per_customer: StrictInt = Field(1, ge=1, le=100)
    distributor_only: StrictBool = False


class AdminCouponIssue(Body):
    """Whom to give one coupon each: customers by id, or every customer of a distributor."""

    user_ids: list[Id] = Field(default_factory=list, max_length=1000)
    distributor_id: Id | None = None


class AdminCouponIssued(BaseModel):
    issued: int
    skipped: int = Field(description="已达每人限领或券已发完而未发的人数")


@contextmanager
def coupon_errors() -> Iterator[None]:
    """A change the coupon services refuse rolls back and answers with their words."""
    try:
        yield
    except CouponError as exc:
        db.session.rollback()
        raise ApiError(422 if exc.status == 400 else exc.status, exc.code, exc.message) from None


def _out(f: TemplateFigures) -> AdminCoupon:
    t = f.template
    return AdminCoupon(
        id=t.id,
        name=t.name,
        kind=t.kind,
        threshold_fen=t.threshold_fen,
        off_fen=t.off_fen,
        off_bp=t.off_bp,
        max_off_fen=t.max_off_fen,
        scope=t.scope,
        scope_ids=list(t.scope_ids or []),
        valid_mode=t.valid_mode,
        starts_at=t.starts_at,
        ends_at=t.ends_at,
        valid_days=t.valid_days,
        stock=t.stock,
        issued=t.issued,
        per_customer=t.per_customer,
        distributor_only=t.distributor_only,
        status=t.status,
        claimed=f.claimed,
        used=f.used,
        redemption_rate=f.rate_text,
        orders=f.orders,
        sales_fen=f.sales_fen,
    )


def _one(coupon_id: int) -> AdminCoupon:
    found = template_figures([coupon_id]) if coupon_id <= MAX_ID else []
    if not found:
        raise ApiError(404, "not_found", "优惠券不存在")
    return _out(found[0])


def _template_or_404(coupon_id: int) -> CouponTemplate:
    found = db.session.get(CouponTemplate, coupon_id) if coupon_id <= MAX_ID else None
    if found is None:
        raise ApiError(404, "not_found", "优惠券不存在")
    return found


@admin_bp.get("/coupons")
@spec.validate(resp=Response(HTTP_200=AdminCouponList, **ERRORS), tags=TAGS, security=SECURITY)
def list_admin_coupons():
    """Every coupon, newest first, with claimed, used, redemption rate and sales."""
    return AdminCouponList(items=[_out(f) for f in template_figures()])


@admin_bp.post("/coupons")
@audited("coupon.create", rows(CouponTemplate, "coupon_template"))
@spec.validate(resp=Response(HTTP_201=AdminCoupon, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def create_admin_coupon(json: AdminCouponCreate):
    """Create a coupon (422 with the reason, as the admin form says it)."""
    data = json.model_dump()
    data["scope_ids"] = tuple(data["scope_ids"])
    with coupon_errors():
        t = create_template(TemplateInput(**data))
        db.session.commit()
    return _one(t.id), 201


@admin_bp.get(f"/coupons/{COUPON_ID}")
@spec.validate(resp=Response(HTTP_200=AdminCoupon, **ERRORS), tags=TAGS, security=SECURITY)
def get_admin_coupon(coupon_id: int):
    """One coupon with its figures."""
    return _one(coupon_id)


def _set_paused(coupon_id: int, paused: bool) -> AdminCoupon:
    set_paused(_template_or_404(coupon_id), paused)
    db.session.commit()
    return _one(coupon_id)


@admin_bp.post(f"/coupons/{COUPON_ID}/pause")
@audited("coupon.pause", row(CouponTemplate, "coupon_id", "coupon_template"))
@spec.validate(resp=Response(HTTP_200=AdminCoupon, **ERRORS), tags=TAGS, security=SECURITY)
def pause_admin_coupon(coupon_id: int):
    """Stop claims and issues (coupons already held stay usable)."""
    return _set_paused(coupon_id, True)


@admin_bp.post(f"/coupons/{COUPON_ID}/resume")
@audited("coupon.resume", row(CouponTemplate, "coupon_id", "coupon_template"))
@spec.validate(resp=Response(HTTP_200=AdminCoupon, **ERRORS), tags=TAGS, security=SECURITY)
def resume_admin_coupon(coupon_id: int):
    """Open claims and issues again."""
    return _set_paused(coupon_id, False)


@admin_bp.post(f"/coupons/{COUPON_ID}/issue")
@audited("coupon.issue", row(CouponTemplate, "coupon_id", "coupon_template"))
@spec.validate(
    resp=Response(HTTP_200=AdminCouponIssued, **BODY_ERRORS), tags=TAGS, security=SECURITY
)
def issue_admin_coupon(coupon_id: int, json: AdminCouponIssue):
    """Give one coupon to each customer of ``user_ids``, or to every customer bound to
    ``distributor_id`` (409 ``coupon_sold_out`` when none could be given)."""
    _template_or_404(coupon_id)
    if bool(json.user_ids) == (json.distributor_id is not None):
        raise ApiError(422, "invalid_group", "user_ids 与 distributor_id 须二选一")
    if json.distributor_id is not None:
        if db.session.get(Distributor, json.distributor_id) is None:
            raise ApiError(404, "not_found", "分销员不存在")
        user_ids = customers_of(json.distributor_id)
    else:
        user_ids = list(json.user_ids)
    with coupon_errors():
        done = issue(coupon_id, user_ids)
        db.session.commit()
    return AdminCouponIssued(**done)
