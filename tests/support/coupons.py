"""Helpers for coupon tests: templates, claims and orders placed with a coupon."""

from __future__ import annotations

from app.coupons.models import CustomerCoupon
from app.coupons.services import TemplateInput, claim, create_template, discount_for
from app.extensions import db
from app.orders.models import Order
from app.orders.services import ItemRequest, place_order
from tests.support.pay import address_for


def template(**fields):
    """A committed coupon template (default: 满 ¥100 减 ¥20, whole shop, 100 in stock)."""
    values = {
        "name": "满100减20",
        "kind": "amount_off",
        "stock": 100,
        "off_fen": 2000,
        "threshold_fen": 10000,
        **fields,
    }
    row = create_template(TemplateInput(**values))
    db.session.commit()
    return row


def held(user, t, **kwargs) -> CustomerCoupon:
    """``user`` claims one coupon of ``t`` (committed)."""
    row = claim(t.id, user.id, **kwargs)
    db.session.commit()
    return row


def place_with(user, items: list[tuple[int, int]], coupon: CustomerCoupon | None) -> Order:
    """A committed order of [(sku id, quantity)] using ``coupon`` (or none)."""
    address = address_for(user)
    hook = discount_for(coupon.id, user.id) if coupon is not None else None
    order = place_order(user.id, [ItemRequest(s, q) for s, q in items], address.id, discount=hook)
    db.session.commit()
    return order
