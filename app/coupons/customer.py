"""What the customer's pages read: the coupon centre, a product's coupons, the coupons held,
and the checkout's choice (best first)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.core.time import utcnow
from app.coupons.models import (
    ACTIVE,
    SCOPE_ALL,
    SCOPE_CATEGORIES,
    SCOPE_PRODUCTS,
    UNUSED,
    VALID_FIXED,
    CouponTemplate,
    CustomerCoupon,
)
from app.extensions import db

MAX_SHOWN = 50


def centre_templates(now: datetime | None = None) -> list[CouponTemplate]:
    """Active templates with stock left that anyone may claim (not distributor-exclusive)."""
    return _running(distributor_only=False, now=now)


def exclusive_templates(now: datetime | None = None) -> list[CouponTemplate]:
    """The running distributor-exclusive templates (not paused, stock left, not ended): what
    the distributor centre's 专属优惠券 page offers for sharing."""
    return _running(distributor_only=True, now=now)


def _running(*, distributor_only: bool, now: datetime | None) -> list[CouponTemplate]:
    now = now or utcnow()
    rows = db.session.scalars(
        select(CouponTemplate)
        .where(
            CouponTemplate.status == ACTIVE,
            CouponTemplate.issued < CouponTemplate.stock,
            CouponTemplate.distributor_only.is_(distributor_only),
        )
        .order_by(CouponTemplate.id.desc())
        .limit(MAX_SHOWN)
    )
    return [
        t
        for t in rows
        if not (t.valid_mode == VALID_FIXED and t.ends_at is not None and t.ends_at <= now)
    ]


def product_templates(product_id: int, category_id: int | None) -> list[CouponTemplate]:
    """The centre's templates that apply to a product (for its page's 领券 row)."""
    found = []
    for t in centre_templates():
        ids = t.scope_ids or []
        if (
            t.scope == SCOPE_ALL
            or (t.scope == SCOPE_PRODUCTS and product_id in ids)
            or (t.scope == SCOPE_CATEGORIES and category_id in ids)
        ):
            found.append(t)
    return found


def held_coupons(user_id: int, now: datetime | None = None) -> list[tuple[CustomerCoupon, str]]:
    """[(coupon, unused / used / expired)]: unused first, soonest to expire, then the rest."""
    now = now or utcnow()
    rows = db.session.scalars(
        select(CustomerCoupon)
        .where(CustomerCoupon.user_id == user_id)
        .order_by(CustomerCoupon.valid_until.desc(), CustomerCoupon.id.desc())
        .limit(200)
    )
    out = []
    for c in rows:
        if c.status != UNUSED:
            status = "used"
        elif c.valid_until <= now:
            status = "expired"
        else:
            status = "unused"
        out.append((c, status))
    unused = sorted((p for p in out if p[1] == "unused"), key=lambda p: (p[0].valid_until, p[0].id))
    return unused + [p for p in out if p[1] != "unused"]
