"""The WeChat notifications listen to the shop's events (``app/signals.py``).

Domain code announces what happened; these receivers turn it into outbox rows
(``app/wechat/notify.py``). A receiver runs inside the sender's transaction, on the same
session, so the row commits or rolls back with the change it reports; each row's dedupe key
keeps "at most once per event" however often an event is announced.

``connect_listeners`` is called by the app factory. The signals are process-wide (blinker
namespaces), so it connects once per process however many apps are created (tests create
many); receivers read the app they run in from ``current_app``.
"""

from __future__ import annotations

from datetime import datetime

from app import signals
from app.wechat.notify import (
    notify_commissions_earned,
    notify_commissions_settled,
    notify_grade_upgraded,
    notify_member_bound,
    notify_order_paid,
    notify_order_shipped,
    notify_orders_paid,
    notify_withdrawal,
)


def on_order_paid(sender, *, order) -> int:
    """Staff hear of a paid order."""
    return notify_order_paid(order)


def on_orders_paid(sender, *, orders) -> int:
    """Staff hear of each of many paid orders (one INSERT for them all)."""
    return notify_orders_paid(orders)


def on_order_shipped(sender, *, order) -> int | None:
    """The buyer hears their order shipped."""
    return notify_order_shipped(order)


def on_commissions_earned(sender, *, order_ids: list[int]) -> int:
    """Each beneficiary hears what each of the orders earns them (one message per order)."""
    return notify_commissions_earned(order_ids)


def on_commissions_settled(sender, *, settled_at: datetime) -> int:
    """Each distributor hears what one settlement run settled for them."""
    return notify_commissions_settled(settled_at)


def on_withdrawal_changed(sender, *, withdrawal, status: str) -> int | None:
    """The distributor hears their withdrawal was approved or paid (other moves: nothing)."""
    return notify_withdrawal(withdrawal, status)


def on_member_bound(sender, *, user_id: int, distributor_id: int, source: str) -> int | None:
    """The distributor hears a customer is now bound to them."""
    return notify_member_bound(user_id, distributor_id, source)


def on_grade_changed(sender, *, distributor_id: int, grade, reason: str) -> int | None:
    """The distributor hears they moved up a grade."""
    return notify_grade_upgraded(distributor_id, grade, reason)


RECEIVERS = (
    (signals.order_paid, on_order_paid),
    (signals.orders_paid, on_orders_paid),
    (signals.order_shipped, on_order_shipped),
    (signals.commissions_earned, on_commissions_earned),
    (signals.commissions_settled, on_commissions_settled),
    (signals.withdrawal_changed, on_withdrawal_changed),
    (signals.member_bound, on_member_bound),
    (signals.grade_changed, on_grade_changed),
)


def connect_listeners() -> None:
    """Connect the notification receivers to the shop's signals, once per process.

    Strong references (``weak=False``): the receivers are module functions and must not be
    dropped; connecting again is a no-op in blinker.
    """
    signals.connect_receivers(RECEIVERS)
