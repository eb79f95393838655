"""Helpers for the timed-discount tests: discounts made through the real service."""

from __future__ import annotations

from datetime import timedelta

from app.core.time import utcnow
from app.discounts.services import DiscountInput, save_discount
from app.extensions import db


def discount(
    product,
    *,
    percent_off_bp: int | None = None,
    prices: dict[int, int] | None = None,
    starts_in: timedelta = timedelta(minutes=-5),
    lasts: timedelta = timedelta(hours=2),
    commission_on: bool = True,
    name: str = "限时折扣",
):
    """A committed discount of ``product``: percent (``percent_off_bp``) or per-SKU prices."""
    starts = utcnow() + starts_in
    row = save_discount(
        DiscountInput(
            product_id=product.id,
            mode="price" if prices else "percent",
            name=name,
            percent_off_bp=percent_off_bp,
            sku_prices=prices or {},
            starts_at=starts,
            ends_at=starts + lasts,
            commission_on=commission_on,
        ),
        actor="staff:test",
    )
    db.session.commit()
    return row
