"""A hypothesis state machine over random pay / job / refund / complete / settle / withdraw
sequences, on the real database, checking the ledger after every step:

- balances derived by ``balances()`` equal the sums of the entries, state by state;
- available ≥ 0 unless a refund after settlement took money back (then no withdrawal);
- no (order line, beneficiary, kind) twice;
- every live earning nets to ``floor(original × remaining paid / line amount)``; an
  earning marked reversed was refunded down to zero before settlement.

``COMMISSION_EXAMPLES`` (environment) raises the number of examples for a longer run.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, update

from app.core.time import utcnow
from app.extensions import db
from app.ledger.balances import balances
from app.ledger.entries import reversal_target
from app.ledger.models import LedgerEntry
from app.ledger.settlement import settle_due
from app.orders.models import Order, OrderLine
from app.orders.refunds import refundable
from jobs.commissions import compute_order_commissions
from tests.support import factories
from tests.support.commissions import (
    chain,
    configure,
    customer_of,
    distributor,
    duplicate_earnings,
    finish,
    pay,
    place,
    refund,
    wipe,
)
from tests.support.properties import example_count

pytestmark = pytest.mark.postgresql  # ledger invariants (state machine)

PRICES = [1, 7, 99, 1001, 3333, 10000]


class LedgerMachine(RuleBasedStateMachine):
    """Orders of customers of a 3-level chain (and of a lone distributor) over time."""

    def __init__(self) -> None:
        super().__init__()
        wipe()
        configure(levels=3, settlement_hold_days=7, self_purchase=True)
        self.people = chain(factories, 3)
        self.people.append(distributor(factories))
        self.customers = [customer_of(factories, self.people[0]) for _ in range(2)]
        self.customers.append(customer_of(factories, self.people[3]))
        self.customers.append(self.people[1].user)  # a distributor buying for themself
        self.orders: list[int] = []
        self.jobs_pending: list[int] = []
        self.clawed_back: set[int] = set()  # distributors hit by a refund after settlement

    # --- steps --------------------------------------------------------------------------

    @rule(
        who=st.integers(0, 3),
        price=st.sampled_from(PRICES),
        quantity=st.integers(1, 3),
        run_job=st.booleans(),
    )
    def pay_order(self, who, price, quantity, run_job):
        order = place(factories, self.customers[who], price_fen=price, quantity=quantity)
        pay(order, run_job=run_job)
        self.orders.append(order.id)
        if not run_job:
            self.jobs_pending.append(order.id)

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def run_job_again_or_late(self, data):
        pool = self.jobs_pending or self.orders
        order_id = data.draw(st.sampled_from(pool))
        compute_order_commissions(order_id)
        if order_id in self.jobs_pending:
            self.jobs_pending.remove(order_id)

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), quantity=st.integers(1, 3))
    def refund_some(self, data, quantity):
        order = db.session.get(Order, data.draw(st.sampled_from(self.orders)))
        db.session.refresh(order)
        if order.status not in ("paid", "shipped", "completed"):
            return
        left, _fen = refundable(order.lines[0])
        if left <= 0:
            return
        settled_before = {
            e.distributor_id
            for e in db.session.scalars(
                select(LedgerEntry).where(
                    LedgerEntry.order_id == order.id, LedgerEntry.state == "settled"
                )
            )
        }
        refund(order, min(quantity, left))
        self.clawed_back |= settled_before

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), days_ago=st.integers(0, 10))
    def complete(self, data, days_ago):
        order = db.session.get(Order, data.draw(st.sampled_from(self.orders)))
        db.session.refresh(order)
        if order.status != "paid":
            return
        line = order.lines[0]
        if line.refunded_quantity >= line.quantity:
            return
        finish(order, days_ago=days_ago)

    @rule(later_days=st.integers(0, 8))
    def settle(self, later_days):
        settle_due(utcnow() + timedelta(days=later_days), batch=3, after_batch=db.session.commit)

    @rule(who=st.integers(0, 3), percent=st.integers(1, 100), paid_out=st.booleans())
    def withdraw(self, who, percent, paid_out):
        """Ledger only: a withdrawal entry never larger than what is available."""
        distributor_id = self.people[who].id
        available = balances(distributor_id).available_fen
        if available <= 0:
            return  # nothing, or a clawed-back negative balance: no withdrawal allowed
        amount = max(1, available * percent // 100)
        db.session.add(
            LedgerEntry(
                distributor_id=distributor_id,
                kind="withdrawal",
                amount_fen=-amount,
                state="withdrawn" if paid_out else "settled",
            )
        )
        db.session.commit()

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def balances_are_the_sums_of_the_entries(self):
        db.session.rollback()
        entries = db.session.scalars(select(LedgerEntry)).all()
        for person in self.people:
            mine = [e for e in entries if e.distributor_id == person.id]
            pending = sum(e.amount_fen for e in mine if e.state == "pending")
            available = sum(e.amount_fen for e in mine if e.state in ("settled", "withdrawn"))
            withdrawn = -sum(
                e.amount_fen for e in mine if e.kind == "withdrawal" and e.state == "withdrawn"
            )
            got = balances(person.id)
            assert (got.pending_fen, got.available_fen, got.withdrawn_fen) == (
                pending,
                available,
                withdrawn,
            )
            live = sum(e.amount_fen for e in mine if e.state != "reversed")
            assert got.pending_fen + got.available_fen == live
            assert got.pending_fen >= 0
            if got.available_fen < 0:
                assert person.id in self.clawed_back

    @invariant()
    def no_line_pays_a_beneficiary_twice_per_kind(self):
        dupes = duplicate_earnings()
        assert dupes == 0

    @invariant()
    def every_earning_nets_to_its_target(self):
        earnings = db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.order_line_id.is_not(None))
        ).all()
        for earning in earnings:
            line = db.session.get(OrderLine, earning.order_line_id)
            remaining = line.amount_fen - line.refunded_fen
            if earning.state == "reversed":  # refunded down to nothing before settlement
                assert reversal_target(earning.amount_fen, remaining, line.amount_fen) == 0
                continue
            reversals = db.session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
                    LedgerEntry.reverses_id == earning.id
                )
            )
            net = earning.amount_fen + reversals
            assert net == reversal_target(earning.amount_fen, remaining, line.amount_fen)


def test_ledger_state_machine(app_ctx):
    examples = example_count("COMMISSION_EXAMPLES", 12)  # half on SQLite (tests/support)
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=15,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    wipe()
    db.session.execute(update(Order).values(remark=""))  # leave the session usable
    db.session.rollback()
