"""The customer's coupons over JSON: the coupon centre, claiming, and the coupons held.

A distributor-exclusive coupon (分销员专属券) is claimed with the sharing distributor's
code (``distributor``): the claim records the referral like a ref link, under the shop's
binding rules (``app.coupons.services.claim``).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from spectree import Response

from app.accounts.guards import customer_id, customer_required
from app.api.blueprints import bp
from app.api.schemas import MAX_ID, Body, ErrorResponse
from app.api.spec import COOKIE, spec
from app.core.errors import ApiError
from app.coupons.customer import centre_templates, held_coupons
from app.coupons.models import CouponTemplate, CustomerCoupon
from app.coupons.services import CouponError, claim, rule_text
from app.distribution.distributors import active_distributor_by_code
from app.extensions import db

TAGS = ["coupons"]
SECURITY = {COOKIE: []}
ERRORS = {"HTTP_401": ErrorResponse}
BODY_ERRORS = {
    **ERRORS,
    "HTTP_400": ErrorResponse,
    "HTTP_404": ErrorResponse,
    "HTTP_409": ErrorResponse,
    "HTTP_422": ErrorResponse,
}
COUPON_ID = "<int:coupon_id>"


class CouponTemplateOut(BaseModel):
    id: int
    name: str
    kind: str
    rule: str = Field(description="如 满 ¥100.00 减 ¥20.00")
    scope: str
    left: int = Field(description="还可领取的张数")


class CouponCentre(BaseModel):
    items: list[CouponTemplateOut]


class CouponClaim(Body):
    distributor: str | None = Field(None, max_length=16, description="分销员专属券：分享者的推广码")


class HeldCouponOut(BaseModel):
    id: int = Field(description="下单时作为 coupon_id 使用")
    template_id: int
    name: str
    rule: str
    status: str = Field(description="unused / used / expired")
    valid_from: datetime
    valid_until: datetime


class HeldCoupons(BaseModel):
    items: list[HeldCouponOut]


def template_out(t: CouponTemplate) -> CouponTemplateOut:
    return CouponTemplateOut(
        id=t.id, name=t.name, kind=t.kind, rule=rule_text(t), scope=t.scope_label, left=t.left
    )


def held_out(c: CustomerCoupon, status: str) -> HeldCouponOut:
    return HeldCouponOut(
        id=c.id,
        template_id=c.template_id,
        name=c.template.name,
        rule=rule_text(c.template),
        status=status,
        valid_from=c.valid_from,
        valid_until=c.valid_until,
    )


@bp.get("/coupons")
@spec.validate(resp=Response(HTTP_200=CouponCentre), tags=TAGS)
def coupon_centre():
    """The coupon centre (领券中心): coupons anyone may claim now."""
    return CouponCentre(items=[template_out(t) for t in centre_templates()])


@bp.post(f"/coupons/{COUPON_ID}/claim")
@customer_required
@spec.validate(resp=Response(HTTP_201=HeldCouponOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def claim_coupon(coupon_id: int, json: CouponClaim):
    """Claim one coupon: 409 ``coupon_sold_out`` (抢光), ``coupon_limit`` (每人限领),
    ``distributor_only`` (专属券 without a distributor's code)."""
    if coupon_id > MAX_ID:
        raise ApiError(404, "not_found", "优惠券不存在")
    code = (json.distributor or "").strip().upper()
    distributor = active_distributor_by_code(code) if code.isalnum() else None
    try:
        coupon = claim(coupon_id, customer_id(), distributor=distributor)
        db.session.commit()
    except CouponError as exc:
        db.session.rollback()
        raise ApiError(exc.status, exc.code, exc.message) from None
    return held_out(coupon, "unused"), 201


@bp.get("/coupons/mine")
@customer_required
@spec.validate(resp=Response(HTTP_200=HeldCoupons, **ERRORS), tags=TAGS, security=SECURITY)
def my_coupons():
    """The customer's coupons: unused first (soonest to expire), then used and expired."""
    return HeldCoupons(items=[held_out(c, s) for c, s in held_coupons(customer_id())])
