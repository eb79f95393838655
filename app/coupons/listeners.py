"""The coupons' receivers of the shop's signals (connected by the app factory)."""

from __future__ import annotations

from app import signals
from app.coupons.services import release_for_cancelled


def on_order_cancelled(sender, order, **_) -> None:
    """An unpaid order was cancelled: its coupon goes back to the customer (same transaction)."""
    release_for_cancelled(order)


RECEIVERS = ((signals.order_cancelled, on_order_cancelled),)


def connect_listeners() -> None:
    """Connect the coupons' receivers, once per process (a no-op when already connected)."""
    signals.connect_receivers(RECEIVERS)
