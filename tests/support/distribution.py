"""Helpers for the distribution admin and the distributor centre tests."""

from __future__ import annotations

from dataclasses import dataclass

from app.distribution.distributors import (
    create_distributor,
)
from app.distribution.models import Distributor
from app.extensions import db
from app.ledger.settlement import settle_due
from app.orders.models import Order
from tests.support import factories
from tests.support.commissions import (
    configure,
    customer_of,
    finish,
    pay,
    place,
)

SETTINGS_FORM = {
    "enabled": "1",
    "levels": "2",
    "level1_bp": "10",
    "level2_bp": "5",
    "level3_bp": "0",
    "join_mode": "apply",
    "join_threshold_fen": "0",
    "bind_mode": "first_visit",
    "binding_days": "0",
    "protection_days": "15",
    "protection_extend_days": "15",
    "settlement_hold_days": "7",
    "payout_channel": "manual",
    "withdraw_min_fen": "1.00",
    "withdraw_fee_bp": "0.6",
    "withdraw_daily_limit": "3",
}


def money_for(d: Distributor, fen: int) -> None:
    """Settled money on a distributor's balance (a task reward: test data, no order)."""
    factories.ledger_entry(d.id, fen)


def make_distributor(make, nickname: str, parent: Distributor | None = None) -> Distributor:
    row = create_distributor(make.user(nickname=nickname).id, parent)
    db.session.commit()
    return row


def signed_in(app, login_as, user):
    """A fresh test client signed in as ``user``."""
    client = app.test_client()
    login_as(client, user)
    return client


@dataclass
class World:
    """Two distributors, each with a customer who bought, and A with a sub-distributor."""

    a: Distributor
    b: Distributor
    a_order: Order
    b_order: Order
    a_sub: Distributor


def build_world(make) -> World:
    configure(levels=2, level1_bp=1000, level2_bp=500, level3_bp=0)
    a = make_distributor(make, "甲老板")
    b = make_distributor(make, "乙老板")
    a_sub = make_distributor(make, "甲下线", parent=a)
    a_order = pay(place(make, customer_of(make, a, "甲客户"), price_fen=4990, quantity=2))
    b_order = pay(place(make, customer_of(make, b, "乙客户"), price_fen=3000))
    return World(a, b, a_order, b_order, a_sub)


def available_money(make, seller: Distributor, price_fen: int = 50000) -> None:
    """Give ``seller`` settled commission: 10% of ``price_fen``."""
    finish(pay(place(make, customer_of(make, seller, "买家"), price_fen=price_fen)), days_ago=30)
    settle_due()
    db.session.commit()
