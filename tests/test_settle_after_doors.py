"""Every door that completes an order dates its pending money (``settle_after``).

A customer confirming receipt (JSON API), staff completing it (admin), and the timer
completing it after the receipt period all go through ``orders.shipping.complete_order``,
which announces ``order_completed``; the pipeline's listener writes ``settle_after`` =
completion + the shop's hold days on the order's pending entries, in the same commit.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.core.time import utcnow
from app.extensions import db
from app.ledger.kinds import PENDING
from app.orders.models import Order
from app.orders.services import get_settings
from app.orders.shipping import ship_order
from jobs.payments import auto_complete_orders
from tests.support import admin
from tests.support.commissions import customer_of, distributor, pay, place
from tests.support.factories import staff
from tests.support.ledger import configure, entries
from tests.support.orders import sign_in
from tests.support.pay import fresh

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

HOLD_DAYS = 7


def shipped_order_earning(make) -> tuple[Order, object]:
    """(a shipped order whose seller earns a pending commission, its buyer)."""
    configure(levels=1, settlement_hold_days=HOLD_DAYS)
    buyer = customer_of(make, distributor(make))
    order = pay(place(make, buyer))
    ship_order(fresh(Order, order.id), "SF", "SF1234567890", "staff:1")
    db.session.commit()
    pending = entries(order_id=order.id)
    assert [e.state for e in pending] == [PENDING]
    assert pending[0].settle_after is None  # not completed: no date yet
    return fresh(Order, order.id), buyer


def assert_dated(order_id: int) -> None:
    db.session.rollback()
    order = fresh(Order, order_id)
    assert order.status == "completed" and order.completed_at is not None
    want = order.completed_at + timedelta(days=HOLD_DAYS)
    dated = [e.settle_after for e in entries(order_id=order_id)]
    assert dated and all(
        at is not None and at.replace(tzinfo=None) == want.replace(tzinfo=None) for at in dated
    ), (dated, want)


def test_the_customer_confirming_receipt_dates_the_money(make, client, login_as):
    order, buyer = shipped_order_earning(make)
    headers = sign_in(client, login_as, buyer)
    res = client.post(f"/api/v1/orders/{order.id}/confirm-receipt", headers=headers)
    assert res.status_code == 200 and res.json["status"] == "completed"
    assert_dated(order.id)


def test_staff_completing_the_order_dates_the_money(make, client):
    order, _buyer = shipped_order_earning(make)
    admin.login_staff(client, staff())
    res = admin.post(
        client, f"/admin/orders/{order.id}/complete", token_from=f"/admin/orders/{order.id}"
    )
    assert res.status_code in (200, 302)
    assert_dated(order.id)


def test_the_receipt_timer_dates_the_money(app, make):
    order, _buyer = shipped_order_earning(make)
    settings = get_settings()
    settings.auto_complete_days = 7
    db.session.execute(
        update(Order).where(Order.id == order.id).values(shipped_at=utcnow() - timedelta(days=8))
    )
    db.session.commit()
    assert auto_complete_orders() == 1
    assert_dated(order.id)
