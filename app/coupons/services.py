"""Coupon rules: creating and pausing templates, claiming and issuing, choosing and using a
coupon at checkout, giving it back when an unpaid order is cancelled. Services flush only.

Once-only (docs/coupons.md): a claim inserts the customer's n-th coupon of the template
(unique template, customer, n; n ≤ the per-customer limit) and takes one from the stock
with ``UPDATE coupon_templates SET issued = issued + 1 WHERE issued < stock`` in one
savepoint: either both happen or neither. Using a coupon is ``UPDATE customer_coupons SET
status = 'used' WHERE id = ? AND status = 'unused'``: of two concurrent checkouts with the
same coupon one gets rowcount 1, the other is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.catalog.models import Product
from app.core.money import format_yuan as yuan
from app.core.time import utcnow
from app.coupons.allocation import allocate, coupon_discount
from app.coupons.models import (
    ACTIVE,
    AMOUNT_OFF,
    KINDS,
    NO_THRESHOLD,
    PAUSED,
    PERCENT_OFF,
    SCOPE_ALL,
    SCOPE_CATEGORIES,
    SCOPE_PRODUCTS,
    SCOPES,
    SOURCE_CLAIM,
    SOURCE_DISTRIBUTOR,
    SOURCE_STAFF,
    UNUSED,
    USED,
    VALID_DAYS,
    VALID_FIXED,
    CouponTemplate,
    CustomerCoupon,
)
from app.distribution.binding import record_ref
from app.distribution.models import Distributor
from app.extensions import db
from app.orders.models import Order, OrderLine
from app.orders.services import OrderError

MAX_STOCK = 10_000_000
MAX_PER_CUSTOMER = 100
MAX_DAYS = 3650
MAX_FEN = 100_000_000


class CouponError(Exception):
    """A coupon request that cannot be carried out: a code and a Chinese message."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


# --- templates ----------------------------------------------------------------------------


@dataclass
class TemplateInput:
    """What staff fill in to create a coupon (validated by ``create_template``)."""

    name: str
    kind: str
    stock: int
    off_fen: int = 0
    threshold_fen: int = 0
    off_bp: int = 0
    max_off_fen: int = 0
    scope: str = SCOPE_ALL
    scope_ids: tuple[int, ...] = ()
    valid_mode: str = VALID_DAYS
    valid_days: int = 7
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    per_customer: int = 1
    distributor_only: bool = False


def _int_in(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_template(data: TemplateInput) -> None:
    """Raise CouponError(field code) when ``data`` is not a coupon that can be offered."""
    name = (data.name or "").strip()
    if not name or len(name) > 32:
        raise CouponError("invalid_name", "请填写券名称（32 字以内）")
    if data.kind not in KINDS:
        raise CouponError("invalid_kind", "请选择券类型")
    if data.kind in (AMOUNT_OFF, NO_THRESHOLD) and not _int_in(data.off_fen, 1, MAX_FEN):
        raise CouponError("invalid_off", "请填写优惠金额")
    if data.kind == AMOUNT_OFF and not _int_in(data.threshold_fen, data.off_fen, MAX_FEN):
        raise CouponError("invalid_threshold", "满减门槛需不低于优惠金额")
    if data.kind == PERCENT_OFF:
        if not _int_in(data.off_bp, 1, 9999):
            raise CouponError("invalid_percent", "折扣需在 0.01%-99.99% 之间")
        if not _int_in(data.max_off_fen, 0, MAX_FEN) or not _int_in(data.threshold_fen, 0, MAX_FEN):
            raise CouponError("invalid_max", "最高优惠或门槛不正确")
    if data.scope not in SCOPES:
        raise CouponError("invalid_scope", "请选择适用范围")
    if data.scope != SCOPE_ALL and not data.scope_ids:
        raise CouponError("invalid_scope", "请选择适用的分类或商品")
    if data.valid_mode == VALID_DAYS:
        if not _int_in(data.valid_days, 1, MAX_DAYS):
            raise CouponError("invalid_validity", f"领取后有效天数需为 1-{MAX_DAYS}")
    elif data.valid_mode == VALID_FIXED:
        if data.starts_at is None or data.ends_at is None or data.ends_at <= data.starts_at:
            raise CouponError("invalid_validity", "请填写有效的起止日期")
    else:
        raise CouponError("invalid_validity", "请选择有效期方式")
    if not _int_in(data.stock, 1, MAX_STOCK):
        raise CouponError("invalid_stock", f"发放总量需为 1-{MAX_STOCK}")
    if not _int_in(data.per_customer, 1, MAX_PER_CUSTOMER):
        raise CouponError("invalid_limit", f"每人限领需为 1-{MAX_PER_CUSTOMER}")


def create_template(data: TemplateInput) -> CouponTemplate:
    """A new active coupon template (flushes), or CouponError."""
    check_template(data)
    row = CouponTemplate(
        name=data.name.strip(),
        kind=data.kind,
        threshold_fen=data.threshold_fen if data.kind != NO_THRESHOLD else 0,
        off_fen=data.off_fen if data.kind != PERCENT_OFF else 0,
        off_bp=data.off_bp if data.kind == PERCENT_OFF else 0,
        max_off_fen=data.max_off_fen if data.kind == PERCENT_OFF else 0,
        scope=data.scope,
        scope_ids=sorted(set(data.scope_ids)) if data.scope != SCOPE_ALL else [],
        valid_mode=data.valid_mode,
        valid_days=data.valid_days if data.valid_mode == VALID_DAYS else 0,
        starts_at=data.starts_at if data.valid_mode == VALID_FIXED else None,
        ends_at=data.ends_at if data.valid_mode == VALID_FIXED else None,
        stock=data.stock,
        issued=0,
        per_customer=data.per_customer,
        distributor_only=bool(data.distributor_only),
        status=ACTIVE,
    )
    db.session.add(row)
    db.session.flush()
    return row


def set_paused(template: CouponTemplate, paused: bool) -> None:
    """Pause (no more claims or issues; held coupons stay usable) or resume a template."""
    template.status = PAUSED if paused else ACTIVE
    db.session.flush()


def rule_text(t: CouponTemplate) -> str:
    """满 ¥100.00 减 ¥20.00 / 9 折，最高减 ¥30.00 / 无门槛减 ¥5.00."""
    if t.kind == AMOUNT_OFF:
        return f"满 {yuan(t.threshold_fen)} 减 {yuan(t.off_fen)}"
    if t.kind == NO_THRESHOLD:
        return f"无门槛减 {yuan(t.off_fen)}"
    text = f"{t.zhe_text} 折"
    if t.threshold_fen:
        text = f"满 {yuan(t.threshold_fen)} 享 {text}"
    if t.max_off_fen:
        text += f"，最高减 {yuan(t.max_off_fen)}"
    return text


def validity_for(t: CouponTemplate, now: datetime) -> tuple[datetime, datetime]:
    """(valid_from, valid_until) of a coupon of ``t`` received at ``now``."""
    if t.valid_mode == VALID_FIXED:
        return t.starts_at, t.ends_at
    return now, now + timedelta(days=t.valid_days)


def claimable(t: CouponTemplate, now: datetime) -> bool:
    """Whether ``t`` can be handed out now (active, stock left, not past its end)."""
    if t.status != ACTIVE or t.issued >= t.stock:
        return False
    return not (t.valid_mode == VALID_FIXED and t.ends_at is not None and t.ends_at <= now)


# --- claiming and issuing -----------------------------------------------------------------


def held_count(template_id: int, user_id: int) -> int:
    """How many coupons of the template the customer has received (used or not)."""
    return db.session.scalar(
        select(func.count())
        .select_from(CustomerCoupon)
        .where(CustomerCoupon.template_id == template_id, CustomerCoupon.user_id == user_id)
    )


def _give(
    t: CouponTemplate,
    user_id: int,
    source: str,
    now: datetime,
    distributor_id: int | None = None,
) -> CustomerCoupon:
    """Insert the customer's next coupon of ``t`` and take one from its stock, or neither."""
    if not claimable(t, now):
        if t.status != ACTIVE:
            raise CouponError("coupon_paused", "该优惠券已停止发放", 409)
        if t.issued >= t.stock:
            raise CouponError("coupon_sold_out", "优惠券已抢光", 409)
        raise CouponError("coupon_expired", "优惠券已过期", 409)
    valid_from, valid_until = validity_for(t, now)
    limit_error = CouponError("coupon_limit", f"每人限领 {t.per_customer} 张，您已领过", 409)
    # A concurrent claim of the same customer may take the same n first: count again and
    # take the next n (bounded: n only grows up to the limit).
    for _attempt in range(t.per_customer + 1):
        seq = held_count(t.id, user_id) + 1
        if seq > t.per_customer:
            raise limit_error
        coupon = CustomerCoupon(
            template_id=t.id,
            user_id=user_id,
            seq=seq,
            status=UNUSED,
            source=source,
            distributor_id=distributor_id,
            valid_from=valid_from,
            valid_until=valid_until,
            claimed_at=now,
        )
        savepoint = db.session.begin_nested()
        try:
            db.session.add(coupon)
            db.session.flush()
        except IntegrityError:
            savepoint.rollback()
            continue
        taken = db.session.execute(
            update(CouponTemplate)
            .where(
                CouponTemplate.id == t.id,
                CouponTemplate.status == ACTIVE,
                CouponTemplate.issued < CouponTemplate.stock,
            )
            .values(issued=CouponTemplate.issued + 1)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            savepoint.rollback()
            raise CouponError("coupon_sold_out", "优惠券已抢光", 409)
        savepoint.commit()
        return coupon
    raise limit_error


def claim(
    template_id: int,
    user_id: int,
    *,
    distributor: Distributor | None = None,
    now: datetime | None = None,
) -> CustomerCoupon:
    """A customer claims a coupon (product page, coupon centre, or a distributor's share).

    A distributor-exclusive coupon needs the sharing ``distributor``: claiming it records
    the referral exactly like a ref link (``record_ref``, under the shop's binding rules).
    """
    now = now or utcnow()
    t = db.session.get(CouponTemplate, template_id)
    if t is None:
        raise CouponError("not_found", "优惠券不存在", 404)
    source = SOURCE_CLAIM
    if t.distributor_only:
        if distributor is None or distributor.status != "active":
            raise CouponError(
                "distributor_only", "该券为分销员专属券，请通过分销员分享的链接领取", 409
            )
        source = SOURCE_DISTRIBUTOR
    coupon = _give(t, user_id, source, now, distributor.id if t.distributor_only else None)
    if t.distributor_only:
        record_ref(user_id, distributor, "link", now)
    return coupon


def issue(template_id: int, user_ids: list[int], now: datetime | None = None) -> dict[str, int]:
    """Staff give one coupon of the template to each customer: {"issued", "skipped"}.

    A customer already at the limit is skipped; issuing stops when the stock runs out.
    """
    now = now or utcnow()
    t = db.session.get(CouponTemplate, template_id)
    if t is None:
        raise CouponError("not_found", "优惠券不存在", 404)
    issued = skipped = 0
    for user_id in dict.fromkeys(user_ids):
        try:
            _give(t, user_id, SOURCE_STAFF, now)
            issued += 1
        except CouponError as exc:
            if exc.code in ("coupon_sold_out", "coupon_paused", "coupon_expired"):
                if issued == 0:
                    raise
                skipped += 1
                continue
            skipped += 1
        db.session.refresh(t)
    return {"issued": issued, "skipped": skipped}


# --- checkout -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What a coupon does on an order: the discount and each line's share."""

    coupon: CustomerCoupon
    discount_fen: int
    shares: dict[int, int]  # line key -> fen


def _in_scope(t: CouponTemplate, product_id: int | None, category_id: int | None) -> bool:
    if t.scope == SCOPE_ALL:
        return True
    if t.scope == SCOPE_PRODUCTS:
        return product_id in t.scope_ids
    if t.scope == SCOPE_CATEGORIES:
        return category_id in t.scope_ids
    return False


def apply_to(
    coupon: CustomerCoupon, lines: list[tuple[int, int, int | None, int | None]]
) -> Applied | None:
    """The coupon on ``lines`` [(key, goods fen, product id, category id)], or None when it
    gives nothing (threshold not reached, nothing in scope)."""
    shares = template_shares(coupon.template, lines)
    if shares is None:
        return None
    return Applied(coupon, sum(shares.values()), shares)


def template_shares(
    t: CouponTemplate, lines: list[tuple[int, int, int | None, int | None]]
) -> dict[int, int] | None:
    """{line key: share} of what a coupon of ``t`` takes off ``lines`` (see ``apply_to``),
    or None when it gives nothing. The commission simulator uses it on one line."""
    eligible = [(key, fen) for key, fen, pid, cid in lines if _in_scope(t, pid, cid)]
    eligible_fen = sum(fen for _, fen in eligible)
    off = coupon_discount(
        t.kind,
        eligible_fen,
        threshold_fen=t.threshold_fen,
        off_fen=t.off_fen,
        off_bp=t.off_bp,
        max_off_fen=t.max_off_fen,
    )
    if off <= 0:
        return None
    return allocate(eligible, off)


def usable_coupons(user_id: int, now: datetime | None = None) -> list[CustomerCoupon]:
    """The customer's unused coupons valid now, soonest to expire first."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(CustomerCoupon)
            .where(
                CustomerCoupon.user_id == user_id,
                CustomerCoupon.status == UNUSED,
                CustomerCoupon.valid_from <= now,
                CustomerCoupon.valid_until > now,
            )
            .order_by(CustomerCoupon.valid_until, CustomerCoupon.id)
        )
    )


def options_for(
    user_id: int, lines: list[tuple[int, int, int | None, int | None]], now: datetime | None = None
) -> list[Applied]:
    """Every usable coupon that gives something on ``lines``, best first.

    Best = the largest discount; ties: the one that expires first, then the lowest id.
    """
    found = [a for c in usable_coupons(user_id, now) if (a := apply_to(c, lines)) is not None]
    found.sort(key=lambda a: (-a.discount_fen, a.coupon.valid_until, a.coupon.id))
    return found


def category_ids(product_ids: list[int]) -> dict[int, int | None]:
    """{product id: category id} for scope checks."""
    if not product_ids:
        return {}
    rows = db.session.execute(
        select(Product.id, Product.category_id).where(Product.id.in_(product_ids))
    )
    return dict(rows.all())


def discount_for(customer_coupon_id: int, user_id: int, now: datetime | None = None) -> Callable:
    """The placement hook (``orders.services.place_order(discount=...)``) that uses coupon
    ``customer_coupon_id`` on the order being placed, or raises OrderError.

    It runs after the lines are built and before the totals: it marks the coupon used
    (conditional UPDATE: once only), then lowers each eligible line's ``amount_fen`` by its
    share, so everything that reads a line's paid amount follows with no special case.
    """

    def apply(order: Order) -> None:
        moment = now or utcnow()
        coupon = db.session.get(CustomerCoupon, customer_coupon_id)
        if coupon is None or coupon.user_id != user_id:
            raise OrderError("invalid_coupon", "优惠券不存在", status=404)
        if coupon.status != UNUSED:
            raise OrderError("coupon_used", "优惠券已使用", status=409)
        if not coupon.valid_from <= moment < coupon.valid_until:
            raise OrderError("coupon_expired", "优惠券不在有效期内", status=409)
        cats = category_ids([line.product_id for line in order.lines if line.product_id])
        lines: list[OrderLine] = list(order.lines)
        keyed = [
            (i, line.amount_fen, line.product_id, cats.get(line.product_id))
            for i, line in enumerate(lines)
        ]
        applied = apply_to(coupon, keyed)
        if applied is None:
            raise OrderError("coupon_not_applicable", "订单不满足该优惠券的使用条件", status=409)
        used = db.session.execute(
            update(CustomerCoupon)
            .where(CustomerCoupon.id == coupon.id, CustomerCoupon.status == UNUSED)
            .values(status=USED, used_at=moment)
            .execution_options(synchronize_session=False)
        )
        if used.rowcount != 1:
            raise OrderError("coupon_used", "优惠券已使用", status=409)
        for i, share in applied.shares.items():
            lines[i].amount_fen -= share
        order.customer_coupon_id = coupon.id
        order.coupon_fen = applied.discount_fen

    return apply


def release_for_cancelled(order: Order) -> bool:
    """Give back the coupon of an unpaid order that was cancelled (True if given back).

    A paid order's coupon is never given back, even when every line is refunded.
    """
    if order.customer_coupon_id is None or order.paid_at is not None:
        return False
    back = db.session.execute(
        update(CustomerCoupon)
        .where(CustomerCoupon.id == order.customer_coupon_id, CustomerCoupon.status == USED)
        .values(status=UNUSED, used_at=None)
        .execution_options(synchronize_session=False)
    )
    return back.rowcount == 1
