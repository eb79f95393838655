"""The ledger's state machine: one transition map for every entry, a history row for each
move, illegal moves refused; and settle_after / task_id written by the real services."""

from __future__ import annotations

from datetime import timedelta
from itertools import product

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from app.core.time import utcnow
from app.distribution.admin_settings import update_settings
from app.distribution.models import Distributor
from app.distribution.withdrawals import (
    approve_withdrawal,
    mark_paid_manually,
    reject_withdrawal,
    request_withdrawal,
)
from app.extensions import db
from app.ledger.entries import TRANSITIONS, InvalidTransition, move_entries
from app.ledger.kinds import LEDGER_STATES, PENDING, REVERSED, SETTLED, WITHDRAWN
from app.ledger.models import LedgerEntry, LedgerEntryChange
from app.ledger.settlement import settle_due
from jobs.incentives import evaluate_everything
from tests.support.commissions import customer_of, distributor, finish, pay, place, refund
from tests.support.incentives import invite_settings, make_task
from tests.support.ledger import changes, configure, entries

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

LEGAL = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
ILLEGAL = sorted(set(product(LEDGER_STATES, LEDGER_STATES)) - LEGAL)


def test_the_map_is_the_lifecycle_of_the_domain():
    assert {(PENDING, SETTLED), (PENDING, REVERSED), (SETTLED, WITHDRAWN)} == LEGAL
    assert len(ILLEGAL) == 13


@pytest.mark.parametrize(("current", "wanted"), ILLEGAL)
def test_every_illegal_transition_is_refused(app, make, current, wanted):
    seller = distributor(make)
    entry = LedgerEntry(distributor_id=seller.id, kind="level_1", amount_fen=100, state=current)
    db.session.add(entry)
    db.session.commit()
    with pytest.raises(InvalidTransition) as refused:
        move_entries([LedgerEntry.id == entry.id], current, wanted, "试一试")
    assert (refused.value.current, refused.value.wanted) == (current, wanted)
    db.session.rollback()
    assert [e.state for e in entries(id=entry.id)] == [current]
    assert changes(entry.id) == []


def test_unknown_kinds_and_states_are_refused_by_the_database(app, make):
    seller = distributor(make)
    for bad in ({"kind": "bonus", "state": PENDING}, {"kind": "level_1", "state": "frozen"}):
        with pytest.raises(IntegrityError):
            db.session.execute(
                insert(LedgerEntry).values(distributor_id=seller.id, amount_fen=1, **bad)
            )
        db.session.rollback()


def test_settlement_moves_pending_to_settled_with_history(app, make):
    configure(levels=2, settlement_hold_days=7)
    parent = distributor(make)
    seller = distributor(make, parent)
    order = pay(place(make, customer_of(make, seller)))
    finish(order, days_ago=8)
    assert settle_due(utcnow()) == 2
    db.session.commit()
    earned = entries(order_id=order.id)
    assert {e.state for e in earned} == {SETTLED}
    for entry in earned:
        assert changes(entry.id) == [(PENDING, SETTLED)]
    row = db.session.scalars(select(LedgerEntryChange)).first()
    assert row.reason and row.at is not None


def test_a_full_refund_before_settlement_reverses_with_history(app, make):
    configure(levels=1)
    seller = distributor(make)
    order = pay(place(make, customer_of(make, seller), quantity=2))
    refund(order, 1)  # half: a pending reversal, the earning stays pending
    [earning] = entries(order_id=order.id, kind="level_1")
    [half] = entries(order_id=order.id, kind="reversal")
    assert (earning.state, half.state, half.amount_fen) == (PENDING, PENDING, -1000)
    refund(order, 1)  # the rest: the earning and its reversals lapse
    assert changes(earning.id) == [(PENDING, REVERSED)]
    assert changes(half.id) == [(PENDING, REVERSED)]
    assert {e.state for e in entries(order_id=order.id)} == {REVERSED}


def test_a_refund_after_settlement_moves_nothing_back(app, make):
    configure(levels=1, settlement_hold_days=0)
    seller = distributor(make)
    order = finish(pay(place(make, customer_of(make, seller))))
    settle_due(utcnow())
    db.session.commit()
    refund(order, 1)
    [earning] = entries(order_id=order.id, kind="level_1")
    [back] = entries(order_id=order.id, kind="reversal")
    assert (earning.state, back.state, back.amount_fen) == (SETTLED, SETTLED, -1000)
    assert changes(earning.id) == [(PENDING, SETTLED)]  # never settled -> reversed
    assert changes(back.id) == []  # written settled


def test_a_paid_withdrawal_moves_settled_to_withdrawn_with_history(app, make):
    configure(levels=1, settlement_hold_days=0, payout_channel="manual", withdraw_min_fen=100)
    seller = distributor(make)
    finish(pay(place(make, customer_of(make, seller))))
    settle_due(utcnow())
    db.session.commit()
    seller = db.session.get(Distributor, seller.id)
    w = request_withdrawal(seller, 600)
    db.session.commit()
    approve_withdrawal(w, "staff:1")
    mark_paid_manually(w, "staff:1", "银行转账")
    db.session.commit()
    [out] = entries(kind="withdrawal")
    assert out.state == WITHDRAWN
    assert changes(out.id) == [(SETTLED, WITHDRAWN)]
    # A rejected one returns the money by a new entry; no state moves.
    w2 = request_withdrawal(db.session.get(Distributor, seller.id), 300)
    db.session.commit()
    reject_withdrawal(w2, "staff:1", "信息有误")
    db.session.commit()
    second = entries(kind="withdrawal")[-1]
    assert second.state == SETTLED and changes(second.id) == []


def test_rewards_move_through_the_same_map(app, make):
    # The invitee buys for themself (self-purchase on): that first purchase earns the
    # inviter's invite reward and reaches the invitee's own sales task.
    configure(levels=1, settlement_hold_days=7, self_purchase=True)
    invite_settings(500)
    inviter = distributor(make)
    invitee = distributor(make, inviter)
    task = make_task(target=10000)
    first = pay(place(make, db.session.get(Distributor, invitee.id).user))
    [task_reward] = entries(kind="task_reward")
    [invite] = entries(kind="invite_reward")
    assert (task_reward.distributor_id, task_reward.task_id) == (invitee.id, task.id)
    assert (invite.distributor_id, invite.task_id) == (inviter.id, None)
    refund(first, 1)  # refunded in full: both rewards fall back
    assert changes(task_reward.id) == [(PENDING, REVERSED)]
    assert changes(invite.id) == [(PENDING, REVERSED)]
    # Reached again by a customer's order, and settled after its hold.
    second = pay(place(make, customer_of(make, invitee)))
    alive = [r for r in entries(kind="task_reward") if r.state == PENDING]
    assert [r.task_id for r in alive] == [task.id]
    finish(second, days_ago=8)
    evaluate_everything()
    assert changes(alive[0].id) == [(PENDING, SETTLED)]


def test_settle_after_is_written_when_the_order_completes_and_follows_the_hold(app, make):
    configure(levels=2, settlement_hold_days=7)
    parent = distributor(make)
    seller = distributor(make, parent)
    order = pay(place(make, customer_of(make, seller), quantity=2))
    assert {e.settle_after for e in entries(order_id=order.id)} == {None}  # not completed
    order = finish(order)
    due = order.completed_at + timedelta(days=7)
    assert {e.settle_after for e in entries(order_id=order.id)} == {due}
    refund(order, 1)  # a pending reversal settles with its earning, so at the same time
    assert {e.settle_after for e in entries(order_id=order.id)} == {due}
    update_settings({"settlement_hold_days": 3}, owner=True)
    db.session.commit()
    assert {e.settle_after for e in entries(order_id=order.id)} == {
        order.completed_at + timedelta(days=3)
    }
    # Settled entries keep the date they were due; the API shows it.
    settle_due(order.completed_at + timedelta(days=3, seconds=1))
    db.session.commit()
    assert {e.state for e in entries(order_id=order.id)} == {SETTLED}
