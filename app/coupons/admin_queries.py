"""What the admin pages and the Open API read about coupons: per-template figures, and the
customers a group issue reaches (a distributor's customers, or people found by name)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_, select

from app.accounts.models import User
from app.accounts.names import display_name
from app.core.time import utcnow
from app.coupons.models import USED, CouponTemplate, CustomerCoupon
from app.distribution.models import Binding
from app.extensions import db
from app.orders.models import Address, Order

MAX_FOUND = 20
MAX_GROUP = 50_000


@dataclass(frozen=True)
class TemplateFigures:
    """One template with what it did: claimed, used, the redemption rate and the sales."""

    template: CouponTemplate
    claimed: int
    used: int
    orders: int  # paid orders that used one
    sales_fen: int  # what those orders paid, less refunds

    @property
    def rate_text(self) -> str:
        """核销率: used ÷ claimed, to one decimal (— when none claimed)."""
        if not self.claimed:
            return "—"
        per_mille = self.used * 1000 // self.claimed
        return f"{per_mille // 10}.{per_mille % 10}%"


def template_figures(template_ids: list[int] | None = None) -> list[TemplateFigures]:
    """Figures of every template (or those of ``template_ids``), newest first."""
    query = select(CouponTemplate).order_by(CouponTemplate.id.desc())
    if template_ids is not None:
        query = query.where(CouponTemplate.id.in_(template_ids))
    templates = list(db.session.scalars(query))
    ids = [t.id for t in templates]
    if not ids:
        return []
    counts = {
        tid: (claimed, used or 0)
        for tid, claimed, used in db.session.execute(
            select(
                CustomerCoupon.template_id,
                func.count(CustomerCoupon.id),
                func.sum(case((CustomerCoupon.status == USED, 1), else_=0)),
            )
            .where(CustomerCoupon.template_id.in_(ids))
            .group_by(CustomerCoupon.template_id)
        )
    }
    sales = {
        tid: (n, fen or 0)
        for tid, n, fen in db.session.execute(
            select(
                CustomerCoupon.template_id,
                func.count(Order.id),
                func.sum(Order.paid_fen - Order.refunded_fen),
            )
            .join(Order, Order.customer_coupon_id == CustomerCoupon.id)
            .where(CustomerCoupon.template_id.in_(ids), Order.paid_at.is_not(None))
            .group_by(CustomerCoupon.template_id)
        )
    }
    return [
        TemplateFigures(t, *counts.get(t.id, (0, 0)), *(int(v) for v in sales.get(t.id, (0, 0))))
        for t in templates
    ]


@dataclass(frozen=True)
class Person:
    """A customer as a staff picker shows them."""

    id: int
    name: str
    phone: str


def find_customers(text: str) -> list[Person]:
    """Customers whose nickname or an address phone contains ``text`` (at most 20)."""
    text = (text or "").strip()
    if not text or len(text) > 32:
        return []
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    phone_of = (
        select(Address.phone)
        .where(Address.user_id == User.id)
        .order_by(Address.is_default.desc(), Address.id)
        .limit(1)
        .scalar_subquery()
    )
    by_phone = select(Address.user_id).where(Address.phone.like(pattern, escape="\\"))
    rows = db.session.execute(
        select(User.id, User.nickname, phone_of)
        .where(or_(User.nickname.ilike(pattern, escape="\\"), User.id.in_(by_phone)))
        .order_by(User.id)
        .limit(MAX_FOUND)
    )
    return [Person(uid, display_name(nick, uid), phone or "") for uid, nick, phone in rows]


def people(user_ids: list[int]) -> list[Person]:
    """The customers of ``user_ids`` that exist, in id order."""
    if not user_ids:
        return []
    rows = db.session.execute(
        select(User.id, User.nickname).where(User.id.in_(user_ids)).order_by(User.id)
    )
    return [Person(uid, display_name(nick, uid), "") for uid, nick in rows]


def customers_of(distributor_id: int, now: datetime | None = None) -> list[int]:
    """Ids of the customers bound to the distributor now (bindings not lapsed)."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(Binding.user_id)
            .where(
                Binding.distributor_id == distributor_id,
                or_(Binding.expires_at.is_(None), Binding.expires_at > now),
            )
            .order_by(Binding.user_id)
            .limit(MAX_GROUP)
        )
    )
