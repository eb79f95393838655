"""One settlement rule (app/ledger/settlement.py) for every caller: commission settlement,
invite rewards, task rewards, and the "why not withdrawable" text of the centre.

One order earns all three kinds at once: the invitee buys for themself (self-purchase on),
so the order pays them a level-1 commission, reaches their sales task, and earns their
inviter's invite reward. Whatever holds that order back holds back all three, and the
ledger list says why.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.core.time import SHOP_TZ, utcnow
from app.distribution.models import Distributor
from app.extensions import db
from app.ledger.balances import entries_for
from app.ledger.kinds import PENDING, SETTLED
from app.ledger.settlement import settle_due
from app.orders.models import Order
from jobs.incentives import evaluate_everything
from tests.support.commissions import distributor, finish, pay, place
from tests.support.incentives import invite_settings, make_task
from tests.support.ledger import ask_refund, configure, entries

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def one_order_earning_everything(make):
    """(inviter, invitee, order): the order pays a commission, a task and an invite reward."""
    configure(levels=1, settlement_hold_days=7, self_purchase=True)
    invite_settings(500)
    inviter = distributor(make)
    invitee = distributor(make, inviter)
    make_task(target=10000)
    order = pay(place(make, db.session.get(Distributor, invitee.id).user, quantity=2))
    kinds = sorted(e.kind for e in entries(order_id=order.id)) + [
        e.kind for e in entries(kind="task_reward")
    ]
    assert kinds == ["invite_reward", "level_1", "task_reward"]
    return inviter, invitee, order


def settle_everything(now) -> None:
    """Commission settlement, then the incentives job's settlement of rewards."""
    settle_due(now)
    db.session.commit()
    evaluate_everything(now)


def states() -> dict[str, str]:
    return {e.kind: e.state for e in entries() if e.kind != "reversal"}


def reasons(distributor_id: int) -> dict[str, str]:
    db.session.rollback()
    return {r.entry.kind: r.reason_not_available for r in entries_for(distributor_id)}


def test_an_open_refund_holds_back_every_kind_and_says_why(app, make):
    inviter, invitee, order = one_order_earning_everything(make)
    finish(order, days_ago=10)  # past the hold...
    ask_refund(order, 1)  # ...but a refund of the order is open
    settle_everything(utcnow())
    assert states() == {"level_1": PENDING, "task_reward": PENDING, "invite_reward": PENDING}
    assert reasons(invitee.id)["level_1"] == "退款处理中"
    assert reasons(inviter.id)["invite_reward"] == "退款处理中"


def test_inside_the_hold_nothing_settles_and_the_date_is_shown(app, make):
    inviter, invitee, order = one_order_earning_everything(make)
    order = finish(order, days_ago=3)
    settle_everything(utcnow())
    assert states() == {"level_1": PENDING, "task_reward": PENDING, "invite_reward": PENDING}
    due = (order.completed_at + timedelta(days=7)).astimezone(SHOP_TZ)
    assert reasons(invitee.id)["level_1"] == f"售后期至 {due.month}月{due.day}日"
    assert reasons(inviter.id)["invite_reward"] == f"售后期至 {due.month}月{due.day}日"


def test_not_completed_nothing_settles(app, make):
    inviter, invitee, _order = one_order_earning_everything(make)
    settle_everything(utcnow() + timedelta(days=30))
    assert states() == {"level_1": PENDING, "task_reward": PENDING, "invite_reward": PENDING}
    assert reasons(invitee.id)["level_1"] == "待确认收货"
    assert reasons(inviter.id)["invite_reward"] == "待确认收货"


def test_once_the_rule_allows_it_all_three_settle_together(app, make):
    inviter, invitee, order = one_order_earning_everything(make)
    finish(order, days_ago=3)
    db.session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(completed_at=utcnow() - timedelta(days=7, minutes=1))
    )
    db.session.commit()
    assert reasons(invitee.id)["level_1"] == "结算中"  # the rule allows it: next run
    settle_everything(utcnow())
    assert states() == {"level_1": SETTLED, "task_reward": SETTLED, "invite_reward": SETTLED}
    assert reasons(invitee.id) == {"level_1": "", "task_reward": ""}
    assert reasons(inviter.id) == {"invite_reward": ""}
