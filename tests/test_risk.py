"""Risk control (app/risk/, jobs/risk.py, app/ledger/holds.py): a ring of buyers is
flagged and its earnings held past settlement with a plain note; an honest distributor
with the same volume is not; staff release or reject each hold once, audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.accounts.models import User
from app.accounts.traces import record_sign_in
from app.core.time import utcnow
from app.distribution.binding import bind
from app.extensions import db
from app.ledger.balances import balances, entries_for
from app.ledger.holds import HELD_NOTE
from app.ledger.kinds import PENDING, REVERSAL, REVERSED, SETTLED
from app.ledger.models import LedgerEntryChange
from app.ledger.settlement import settle_due
from app.risk import review
from app.risk.models import (
    BINDING_BURST,
    RECEIVER_RING,
    SHARED_DEVICE,
    SHARED_PAYER,
    SHARED_RECEIVER,
    RiskFlag,
)
from app.risk.signals import get_risk_settings, normalise_address, normalise_phone
from jobs.queues import get_queue
from jobs.risk import check_paid_orders, check_refunded_order, sweep
from tests.support.commissions import customer_of, distributor, refund
from tests.support.incentives import make_task
from tests.support.ledger import configure, entries
from tests.support.risk import audits, buy, finish_all, flags, holds, honest, ring

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def _ids(orders):
    return [o.id for o in orders]


def test_normalising_receivers():
    assert normalise_phone("+86 139-1234-5678") == "13912345678"
    assert normalise_phone("１３９１２３４５６７８") == "13912345678"
    assert normalise_address("广东省", "深圳市", "南山区", "幸福路 8 号，3栋") == normalise_address(
        "广东省", "深圳市", "南山区", "幸福路8号3栋"
    )


def test_a_ring_is_flagged_and_its_earnings_held_past_settlement(make):
    seller, orders = ring(make)
    assert check_paid_orders(_ids(orders)) == 3
    ring_flags = flags(signal=RECEIVER_RING)
    assert sorted(f.order_id for f in ring_flags) == _ids(orders)
    assert {f.distributor_id for f in ring_flags} == {seller.id}
    assert sorted(h.order_id for h in holds(state="held")) == _ids(orders)
    # A rerun (a retry, the sweep) flags and holds nothing more.
    assert check_paid_orders(_ids(orders)) == 0
    assert sweep()["flagged"] == 0
    assert len(flags()) == 3 and len(holds()) == 3

    finish_all(orders, days_ago=10)  # well past the 7-day hold
    assert settle_due(utcnow()) == 0
    db.session.commit()
    assert {e.state for e in entries(distributor_id=seller.id)} == {PENDING}
    reasons = {row.reason_not_available for row in entries_for(seller.id)}
    assert reasons == {HELD_NOTE}


def test_an_honest_distributor_with_the_same_volume_is_not(make):
    seller, orders = honest(make)
    assert check_paid_orders(_ids(orders)) == 0
    assert sweep()["flagged"] == 0
    assert flags() == [] and holds() == []
    finish_all(orders, days_ago=10)
    assert settle_due(utcnow()) == 3
    db.session.commit()
    assert {e.state for e in entries(distributor_id=seller.id)} == {SETTLED}


def test_two_buyers_on_one_receiver_are_below_the_threshold(make):
    _seller, orders = ring(make, buyers=2)
    assert check_paid_orders(_ids(orders)) == 0
    assert holds() == []


def test_release_lets_the_money_settle_once_and_is_audited(make):
    seller, orders = ring(make)
    check_paid_orders(_ids(orders))
    finish_all(orders, days_ago=10)
    first = holds(order_id=orders[0].id)[0]

    review.decide(first.id, review.RELEASE, "staff:7", "核实为家人代收")
    db.session.commit()
    assert holds(order_id=orders[0].id)[0].state == "released"
    [audit] = audits()
    assert (audit.actor, audit.action, audit.subject, audit.subject_id) == (
        "staff:7",
        "risk.release",
        "ledger_hold",
        str(first.id),
    )
    assert audit.before == {"state": "held"} and audit.after["state"] == "released"
    assert audit.after["note"] == "核实为家人代收" and audit.after["reversed_entries"] == []

    # Nothing moved in the ledger by the release itself; settlement takes it from here.
    assert {e.state for e in entries(distributor_id=seller.id)} == {PENDING}
    assert settle_due(utcnow()) == 1
    db.session.commit()
    states = {e.order_id: e.state for e in entries(distributor_id=seller.id)}
    assert states == {orders[0].id: SETTLED, orders[1].id: PENDING, orders[2].id: PENDING}

    with pytest.raises(review.ReviewError):
        review.decide(first.id, review.RELEASE, "staff:8", "")
    db.session.rollback()
    with pytest.raises(review.ReviewError):
        review.decide(first.id, review.REJECT, "staff:8", "晚到的驳回")
    db.session.rollback()
    assert len(audits()) == 1
    assert holds(order_id=orders[0].id)[0].decided_by == "staff:7"


def test_reject_reverses_the_held_earnings_once_with_the_reason(make):
    seller, orders = ring(make)
    check_paid_orders(_ids(orders))
    finish_all(orders, days_ago=10)
    target = holds(order_id=orders[1].id)[0]
    [earning] = entries(order_id=orders[1].id)
    before = balances(seller.id)

    with pytest.raises(review.ReviewError):  # a rejection needs its reason
        review.decide(target.id, review.REJECT, "staff:7", "  ")
    db.session.rollback()
    assert holds(order_id=orders[1].id)[0].state == "held" and audits() == []

    review.decide(target.id, review.REJECT, "staff:7", "同一收货人多账号刷单")
    db.session.commit()
    rows = entries(order_id=orders[1].id)
    assert [(e.kind, e.state, e.amount_fen) for e in rows] == [
        ("level_1", REVERSED, earning.amount_fen),
        (REVERSAL, REVERSED, -earning.amount_fen),
    ]
    assert rows[1].reverses_id == earning.id and rows[1].rule_source == "风控审核驳回"
    change = db.session.scalars(
        select(LedgerEntryChange).where(LedgerEntryChange.entry_id == earning.id)
    ).one()
    assert (change.from_state, change.to_state) == (PENDING, REVERSED)
    assert "同一收货人多账号刷单" in change.reason
    after = balances(seller.id)
    assert after.pending_fen == before.pending_fen - earning.amount_fen
    assert after.available_fen == before.available_fen == 0
    [audit] = audits()
    assert audit.action == "risk.reject" and audit.after["reversed_entries"] == [earning.id]
    assert audit.after["note"] == "同一收货人多账号刷单"

    # Once: a second decision changes nothing and writes nothing.
    with pytest.raises(review.ReviewError):
        review.decide(target.id, review.REJECT, "staff:8", "再次驳回")
    db.session.rollback()
    assert len(entries(order_id=orders[1].id)) == 2 and len(audits()) == 1
    # The other held orders stay held; the rejected one is never settled.
    assert settle_due(utcnow()) == 0
    db.session.commit()


def test_shared_receiver_payer_and_device_between_buyer_and_distributor(make):
    configure(levels=1)
    seller = distributor(make, nickname="同址分销员")
    own = make.address(seller.user_id, phone="13700000001")
    buyer = customer_of(make, seller)
    order = buy(make, buyer, make.address(buyer, phone="13700000001", detail="别处 1 号"))
    check_paid_orders([order.id])
    assert [f.signal for f in flags(order_id=order.id)] == [SHARED_RECEIVER]
    assert flags()[0].evidence["shared"] == ["phone"]
    assert own.phone == "13700000001"

    # The same device at sign-in, then an order the distributor's own openid paid.
    other = customer_of(make, seller)
    record_sign_in(other.id, "10.1.2.3", "Mozilla/5.0 MicroMessenger")
    record_sign_in(seller.user_id, "10.1.2.3", "Mozilla/5.0 MicroMessenger")
    db.session.commit()
    second = buy(make, other, make.address(other))
    check_paid_orders([second.id])
    assert [f.signal for f in flags(order_id=second.id)] == [SHARED_DEVICE]
    seller_openid = db.session.get(User, seller.user_id).openid
    third = buy(make, other, make.address(other), payer_openid=seller_openid)
    check_paid_orders([third.id])
    assert sorted(f.signal for f in flags(order_id=third.id)) == [SHARED_DEVICE, SHARED_PAYER]
    assert len(holds(order_id=third.id)) == 1  # one hold per (order, distributor)


def test_each_signal_can_be_switched_off(make):
    settings = get_risk_settings()
    settings.receiver_ring_on = False
    db.session.commit()
    _seller, orders = ring(make)
    assert check_paid_orders(_ids(orders)) == 0
    assert holds() == []


def test_a_binding_burst_is_flagged(make):
    settings = get_risk_settings()
    settings.binding_burst_per_hour = 2
    db.session.commit()
    seller, orders = honest(make, buyers=1)
    for n in range(2):
        bind(make.user(nickname=f"新客{n}").id, seller, "link")
    db.session.commit()
    assert check_paid_orders(_ids(orders)) == 1
    [flag] = flags(signal=BINDING_BURST)
    assert flag.distributor_id == seller.id and flag.evidence["bindings"] == 3
    assert [h.order_id for h in holds()] == _ids(orders)  # the pending money waits


def test_a_refund_check_runs_and_flags_once(make):
    settings = get_risk_settings()
    settings.refund_rate_min_orders = 1
    settings.refund_rate_floor_bp = 1
    settings.refund_rate_factor_pct = 150
    db.session.commit()
    seller, orders = honest(make, buyers=2)
    _other, others = honest(make, buyers=2)  # the shop: 1 of 4 refunded, the seller 1 of 2
    finish_all(orders + others, days_ago=10)
    settle_due(utcnow())
    db.session.commit()
    refund(orders[0], 1)  # after settlement: a settled reversal
    check_refunded_order(orders[0].id)
    check_refunded_order(orders[0].id)
    [flag] = flags(signal="refund_rate")
    assert flag.distributor_id == seller.id
    assert (flag.evidence["refunded"], flag.evidence["rate_bp"], flag.evidence["shop_bp"]) == (
        1,
        5000,
        2500,
    )


def test_the_periodic_sweep_catches_up_orders_without_a_check(make):
    _seller, _orders = ring(make)
    assert flags() == []  # paid and followed up, but no risk job has run yet
    done = sweep(utcnow() + timedelta(minutes=1))
    assert done["flagged"] == 3
    assert db.session.scalar(select(func.count()).select_from(RiskFlag)) == 3


def test_the_paid_follow_up_queues_the_risk_check_after_its_commit(make):
    _seller, orders = honest(make, buyers=1)
    job = get_queue("low").fetch_job(f"risk-paid-{orders[0].id}-1")
    assert job is not None and job.func_name == "jobs.risk.check_paid_orders"
    assert job.args == ([orders[0].id],)
    assert job.perform() == 0  # what the worker runs


def test_a_refund_right_after_reaching_a_task_is_flagged(make):
    make_task(kind="paid_orders", target=1)
    seller, orders = honest(make, buyers=1)
    assert [e.kind for e in entries(distributor_id=seller.id, kind="task_reward")] == [
        "task_reward"
    ]
    assert check_refunded_order(orders[0].id) == 0  # not refunded: nothing to say
    refund(orders[0], 1)
    assert check_refunded_order(orders[0].id) == 1
    [flag] = flags(signal="threshold_refund")
    assert (flag.order_id, flag.distributor_id) == (orders[0].id, seller.id)
    assert flag.evidence["task_rewards"] == 1
    assert check_refunded_order(orders[0].id) == 0  # once
