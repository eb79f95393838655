"""Ledger invariants for cloud distribution (issue 8 point 10): a hypothesis state machine
over random orders through an ordering-merchant chain and/or shipped into agents' regions,
paid, refunded (partly or fully, before or after settlement), completed, settled and
withdrawn through the real services, on the real database.

The shop, built once per example: levels L1-L5 at 60 / 70 / 80 / 90 / 95 % of retail; the
chain L3 → L2 → L1 and an L5 directly under the L1 (a skipped level); agents of 广东省 (the
L1's user, so one beneficiary earns two kinds), 深圳市 and 南山区; a plain distributor;
customers bound to the L3, to the L5, to the plain distributor, and one bound to nobody.
Orders ship to 南山区 (three agents), 福田区 (two) or 东城区 (none); the L3 and the L5 also
place orders at their level price. The precedence (级差 / 佣金 / both) is drawn per example.

Checked after every step:

- balances derived by ``balances()`` equal the sums of the entries, state by state;
  pending ≥ 0; available ≥ 0 unless a refund after settlement took money back;
- withdrawals are refused exactly when more than the available balance is asked (so never
  from a negative balance);
- no (order line, beneficiary, kind) twice;
- what each line earns, kind by kind and beneficiary by beneficiary, is what an independent
  oracle says (floor(paid × rate) for dividends and commissions, unit gaps × quantity for
  级差, the precedence deciding between commissions and 级差);
- merchant + ancestors' 级差 + headquarters' top price × quantity = the line's paid amount;
- every earning nets to ``floor(original × remaining / line amount)``; on a line refunded
  in full every earning kind nets to zero, and earnings not settled then have lapsed.

``CLOUD_EXAMPLES`` (environment) raises the number of examples for a longer run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from app.cloud import agents as cloud_agents
from app.cloud.merchants import place_merchant_order
from app.core.time import utcnow
from app.distribution.distributors import DistributionError
from app.distribution.models import Distributor
from app.distribution.withdrawals import (
    approve_withdrawal,
    mark_paid_manually,
    reject_withdrawal,
    request_withdrawal,
)
from app.extensions import db
from app.ledger.balances import balances
from app.ledger.entries import reversal_target
from app.ledger.kinds import LINE_EARNING_KINDS
from app.ledger.models import LedgerEntry
from app.ledger.settlement import settle_due
from app.orders.models import Order, OrderFollowUp, OrderLine
from app.orders.refunds import refundable
from app.orders.services import ItemRequest
from jobs.commissions import compute_order_commissions
from tests.support import factories
from tests.support.cloud import (
    DONGCHENG,
    FUTIAN,
    GUANGDONG,
    LEVELS,
    NANSHAN,
    SHENZHEN,
    assigned,
    levels,
    merchant,
    order_to,
    precedence,
    rates,
    three_level_chain,
)
from tests.support.commissions import (
    configure,
    customer_of,
    distributor,
    duplicate_earnings,
    finish,
    pay,
    refund,
    wipe,
)
from tests.support.properties import example_count

pytestmark = pytest.mark.postgresql  # ledger invariants (state machine)

PRICES = [1, 7, 99, 1001, 3333, 10000]
MERCHANT_PRICES = [99, 1001, 3333, 10000]  # a level price of 0 fen is no order
DISCOUNT_BP = {row["level"]: row["discount_bp"] for row in LEVELS}
DIVIDEND_BP = {"province": 500, "city": 300, "district": 200}
COMMISSION_BP = {1: 1000, 2: 500, 3: 200}  # configure()'s defaults
# Which agents' regions contain each shipping district.
AGENTS_OF = {NANSHAN: ("province", "city", "district"), FUTIAN: ("province", "city")}
DISTRICTS = [NANSHAN, FUTIAN, DONGCHENG]
PEOPLE = ["top", "middle", "low", "l5", "city", "district", "plain"]


def level_price(retail_fen: int, level: int) -> int:
    """The oracle's level price: retail less the level's discount, rounded down."""
    return retail_fen * (10000 - DISCOUNT_BP[level]) // 10000


@dataclass(frozen=True)
class Placed:
    """What the machine knows of an order it placed."""

    retail_fen: int  # the SKU's retail unit price
    merchant: str | None  # the merchant the order goes through ("low" or "l5"), or None
    merchant_order: bool  # that merchant placed it at its level price
    customer: int | None  # index into the customers (retail orders)
    district: str


class CloudLedgerMachine(RuleBasedStateMachine):
    """Orders through ordering merchants and into agents' regions, over time."""

    def __init__(self) -> None:
        super().__init__()
        wipe()
        configure(
            levels=3,
            settlement_hold_days=7,
            self_purchase=False,
            withdraw_min_fen=1,
            withdraw_fee_bp=0,
            withdraw_daily_limit=0,
            payout_channel="manual",
        )
        levels()
        rates(**DIVIDEND_BP)
        top, middle, low = three_level_chain(factories)
        l5 = merchant(factories, 5, top, nickname="店主小刘")
        cloud_agents.assign_region(top.distributor.user_id, "province", GUANGDONG, "staff:1")
        db.session.commit()
        city = assigned(factories, "city", SHENZHEN, "深圳代理")
        district = assigned(factories, "district", NANSHAN, "南山代理")
        plain = distributor(factories, nickname="普通分销员")
        self.merchants = {"top": top, "middle": middle, "low": low, "l5": l5}
        self.people = {
            "top": top.distributor_id,
            "middle": middle.distributor_id,
            "low": low.distributor_id,
            "l5": l5.distributor_id,
            "city": city.distributor_id,
            "district": district.distributor_id,
            "plain": plain.id,
        }
        self.agent_of = {"province": "top", "city": "city", "district": "district"}
        self.chains = {"low": ["low", "middle", "top"], "l5": ["l5", "top"]}
        # (customer, the merchant they buy through, their commission chain level 1 first)
        self.customers = [
            (customer_of(factories, low.distributor), "low", ["low", "middle", "top"]),
            (customer_of(factories, l5.distributor), "l5", ["l5", "top"]),
            (customer_of(factories, plain), None, ["plain"]),
            (customer_of(factories, None), None, []),
        ]
        self.precedence = "price_difference"
        self.placed: dict[int, Placed] = {}
        self.jobs_pending: list[int] = []
        self.expected: dict[int, dict[tuple[int, str], int]] = {}  # set when the job first ran
        self.clawed_back: set[int] = set()  # distributors hit by a refund after settlement
        self.completed = False  # settling before any order completed does nothing
        self.settled = False  # nor withdrawing before anything settled

    # --- the oracle ---------------------------------------------------------------------

    def oracle(self, order_id: int) -> dict[tuple[int, str], int]:
        """{(distributor id, kind): original fen} the order's line must earn, computed here
        from the scenario alone (for a job run now)."""
        info = self.placed[order_id]
        line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order_id)).one()
        if line.refunded_fen >= line.amount_fen:
            return {}  # refunded in full before the job: nothing is written
        assert line.amount_fen == line.unit_price_fen * line.quantity  # no discounts here
        out: dict[tuple[int, str], int] = {}

        def add(who: str, kind: str, fen: int) -> None:
            if fen > 0:
                key = (self.people[who], kind)
                out[key] = out.get(key, 0) + fen

        for level in AGENTS_OF.get(info.district, ()):
            add(
                self.agent_of[level],
                "region_dividend",
                line.amount_fen * DIVIDEND_BP[level] // 10000,
            )
        through = info.merchant is not None
        if through and self.precedence in ("price_difference", "both"):
            prev = line.unit_price_fen
            for i, who in enumerate(self.chains[info.merchant]):
                price = level_price(info.retail_fen, self.merchants[who].level)
                if info.merchant_order and i == 0:
                    price = prev  # its own purchase: no gap for itself
                assert price <= prev  # level prices never rise up the chain
                add(who, "price_difference", (prev - price) * line.quantity)
                prev = price
        if info.customer is not None and (not through or self.precedence != "price_difference"):
            for level, who in enumerate(self.customers[info.customer][2], start=1):
                add(who, f"level_{level}", line.amount_fen * COMMISSION_BP[level] // 10000)
        return out

    def run_job(self, order_id: int) -> None:
        """The commission job as the worker runs it; an order's oracle is taken just before
        the run that follows it up. That may be another order's job: a job follows up a
        batch of paid orders still waiting (jobs/commissions.claim_batch), so the oracle of
        every waiting order is taken before each run and kept for those it followed up."""
        db.session.rollback()
        waiting = [
            o for o in dict.fromkeys([order_id, *self.jobs_pending]) if o not in self.expected
        ]
        before = {o: self.oracle(o) for o in waiting}
        db.session.rollback()
        compute_order_commissions(order_id)
        followed = set(
            db.session.scalars(
                select(OrderFollowUp.order_id).where(OrderFollowUp.order_id.in_(waiting))
            )
        )
        db.session.rollback()
        for other in waiting:
            if other in followed:
                self.expected[other] = before[other]
        assert order_id in self.expected  # its own job always follows it up
        for other in followed | {order_id}:
            if other in self.jobs_pending:
                self.jobs_pending.remove(other)

    # --- steps --------------------------------------------------------------------------

    @initialize(
        value=st.sampled_from(["price_difference", "commission", "both"]),
        who=st.integers(0, 3),
        price=st.sampled_from(PRICES),
        district=st.sampled_from(DISTRICTS),
    )
    def choose_precedence_and_a_first_order(self, value, who, price, district):
        precedence(value)
        self.precedence = value
        self.retail_order(who, price, 1, district, True)

    @rule(
        who=st.integers(0, 3),
        price=st.sampled_from(PRICES),
        quantity=st.integers(1, 3),
        district=st.sampled_from(DISTRICTS),
        run_job=st.booleans(),
    )
    def retail_order(self, who, price, quantity, district, run_job):
        user, through, _chain = self.customers[who]
        order = order_to(factories, district, price_fen=price, quantity=quantity, user=user)
        self.placed[order.id] = Placed(price, through, False, who, district)
        self.paid(order, run_job)

    @rule(
        who=st.sampled_from(["low", "l5"]),
        price=st.sampled_from(MERCHANT_PRICES),
        quantity=st.integers(1, 3),
        district=st.sampled_from(DISTRICTS),
        run_job=st.booleans(),
    )
    def merchant_order(self, who, price, quantity, district, run_job):
        sku_id = factories.product(price_fen=price, stock=1000).skus[0].id
        order = place_merchant_order(
            self.merchants[who],
            [ItemRequest(sku_id, quantity)],
            name="李四",
            phone="13900000000",
            district_code=district,
            detail="科技园2号",
        )
        db.session.commit()
        self.placed[order.id] = Placed(price, who, True, None, district)
        self.paid(order, run_job)

    def paid(self, order: Order, run_job: bool) -> None:
        pay(order, run_job=False)
        if run_job:
            self.run_job(order.id)
        else:
            self.jobs_pending.append(order.id)

    @precondition(lambda self: self.placed)
    @rule(data=st.data())
    def run_job_again_or_late(self, data):
        pool = self.jobs_pending or sorted(self.placed)
        self.run_job(data.draw(st.sampled_from(pool)))

    def orders_in(self, *statuses: str) -> list[Order]:
        """The machine's orders now in one of ``statuses`` with units left to refund."""
        db.session.rollback()
        orders = db.session.scalars(
            select(Order)
            .where(Order.id.in_(list(self.placed)), Order.status.in_(statuses))
            .order_by(Order.id)
        ).all()
        return [o for o in orders if refundable(o.lines[0])[0] > 0]

    @precondition(lambda self: self.placed)
    @rule(data=st.data(), quantity=st.integers(1, 3))
    def refund_some(self, data, quantity, order_id=None):
        pool = self.orders_in("paid", "shipped", "completed")
        if order_id is not None:
            pool = [o for o in pool if o.id == order_id]
        if not pool:
            return
        order = data.draw(st.sampled_from(pool))
        left, _fen = refundable(order.lines[0])
        settled_before = set(
            db.session.scalars(
                select(LedgerEntry.distributor_id).where(
                    LedgerEntry.order_id == order.id, LedgerEntry.state == "settled"
                )
            )
        )
        refund(order, min(quantity, left))
        self.clawed_back |= settled_before

    @precondition(lambda self: self.placed)
    @rule(data=st.data(), days_ago=st.sampled_from([0, 3, 7, 10]), settle_now=st.booleans())
    def complete(self, data, days_ago, settle_now):
        """Ship and complete a paid order, and maybe run the settlement right after."""
        pool = self.orders_in("paid")
        if not pool:
            return
        finish(data.draw(st.sampled_from(pool)), days_ago=days_ago)
        self.completed = True
        if settle_now:
            self.settle(0)

    @precondition(lambda self: self.placed)
    @rule(data=st.data(), quantity=st.integers(1, 3), withdraw_first=st.booleans())
    def refund_after_withdrawing(self, data, quantity, withdraw_first):
        """The road to a negative balance: an order completed long ago settles, its earners
        (maybe) withdraw all they have, then the buyer gets money back."""
        pool = self.orders_in("paid")
        if not pool:
            return
        order = data.draw(st.sampled_from(pool))
        if order.id in self.jobs_pending:
            self.run_job(order.id)
        finish(order, days_ago=8)
        self.completed = True
        self.settle(0)
        if withdraw_first:
            earners = set(
                db.session.scalars(
                    select(LedgerEntry.distributor_id).where(LedgerEntry.order_id == order.id)
                )
            )
            for name, distributor_id in self.people.items():
                if distributor_id in earners:
                    self.withdraw(name, 100, "paid")
        self.refund_some(data, quantity, order.id)

    @precondition(lambda self: self.completed)
    @rule(later_days=st.sampled_from([0, 4, 8]))
    def settle(self, later_days):
        now = utcnow() + timedelta(days=later_days)
        if settle_due(now, batch=3, after_batch=db.session.commit):
            self.settled = True

    @precondition(lambda self: self.settled)
    @rule(
        who=st.sampled_from(PEOPLE),
        percent=st.integers(1, 150),
        outcome=st.sampled_from(["requested", "paid", "rejected"]),
    )
    def withdraw(self, who, percent, outcome):
        """The real withdrawal service (manual channel): refused above what is available."""
        db.session.rollback()
        person = db.session.get(Distributor, self.people[who])
        available = balances(person.id).available_fen
        amount = max(1, available * percent // 100)
        db.session.rollback()  # the request's lock is the transaction's first write
        try:
            withdrawal = request_withdrawal(person, amount)
        except DistributionError as err:
            db.session.rollback()
            assert amount > available, (err.code, amount, available)
            return
        assert amount <= available, (amount, available)
        db.session.commit()
        if outcome == "paid":
            approve_withdrawal(withdrawal, "staff:1")
            mark_paid_manually(withdrawal, "staff:1")
        elif outcome == "rejected":
            reject_withdrawal(withdrawal, "staff:1", "信息不符")
        db.session.commit()

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def balances_are_the_sums_of_the_entries(self):
        db.session.rollback()
        entries = db.session.scalars(select(LedgerEntry)).all()
        for distributor_id in self.people.values():
            mine = [e for e in entries if e.distributor_id == distributor_id]
            pending = sum(e.amount_fen for e in mine if e.state == "pending")
            available = sum(e.amount_fen for e in mine if e.state in ("settled", "withdrawn"))
            withdrawn = -sum(
                e.amount_fen for e in mine if e.kind == "withdrawal" and e.state == "withdrawn"
            )
            got = balances(distributor_id)
            assert (got.pending_fen, got.available_fen, got.withdrawn_fen) == (
                pending,
                available,
                withdrawn,
            )
            assert got.pending_fen + got.available_fen == sum(
                e.amount_fen for e in mine if e.state != "reversed"
            )
            assert got.pending_fen >= 0
            if got.available_fen < 0:
                assert distributor_id in self.clawed_back

    @invariant()
    def no_line_pays_a_beneficiary_twice_per_kind(self):
        dupes = duplicate_earnings()
        assert dupes == 0

    @invariant()
    def each_line_earns_what_the_oracle_says(self):
        for order_id, expected in self.expected.items():
            written = {
                (e.distributor_id, e.kind): e.amount_fen
                for e in db.session.scalars(
                    select(LedgerEntry).where(
                        LedgerEntry.order_id == order_id,
                        LedgerEntry.kind.in_(LINE_EARNING_KINDS),
                    )
                )
            }
            assert written == expected, (order_id, self.placed[order_id])

    @invariant()
    def shares_and_headquarters_add_up_to_what_was_paid(self):
        for order_id, info in self.placed.items():
            line = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order_id)).one()
            differences = db.session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
                    LedgerEntry.order_line_id == line.id, LedgerEntry.kind == "price_difference"
                )
            )
            if not differences:
                continue
            assert info.merchant is not None and self.precedence != "commission"
            headquarters = level_price(info.retail_fen, 1) * line.quantity  # the top is an L1
            assert differences + headquarters == line.amount_fen

    @invariant()
    def every_earning_nets_to_its_target(self):
        earnings = db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.kind.in_(LINE_EARNING_KINDS))
        ).all()
        for earning in earnings:
            line = db.session.get(OrderLine, earning.order_line_id)
            remaining = line.amount_fen - line.refunded_fen
            target = reversal_target(earning.amount_fen, remaining, line.amount_fen)
            reversals = db.session.scalars(
                select(LedgerEntry).where(LedgerEntry.reverses_id == earning.id)
            ).all()
            if earning.state == "reversed":  # lapsed: refunded in full before settlement
                assert target == 0
                assert {r.state for r in reversals} <= {"reversed"}
                continue
            assert all(r.state != "reversed" for r in reversals)
            net = earning.amount_fen + sum(r.amount_fen for r in reversals)
            assert net == target, (earning.kind, earning.amount_fen, net, target)
            if remaining <= 0:  # refunded in full after it settled: taken back to zero
                assert net == 0 and earning.state in ("settled", "withdrawn")


def test_cloud_ledger_state_machine(app_ctx):
    examples = example_count("CLOUD_EXAMPLES", 10)  # half on SQLite (tests/support)
    run_state_machine_as_test(
        CloudLedgerMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    wipe()
    db.session.rollback()
