"""The commission engine through real orders: attribution at placement, the commission
job on payment, reversals on refund, settlement, and the ledger list of the centre.

Orders are placed with ``place_order``, paid with ``mark_paid`` (or a signed notice over
HTTP in the end-to-end test), refunded with ``request_refund`` + ``complete_refund``,
shipped and completed with the merchant services, and the commission job function is
called as the worker calls it. The helpers here are shared by the other
``test_commissions_*`` files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app.catalog.models import Sku
from app.core.time import utcnow
from app.distribution.binding import bind, record_ref
from app.distribution.models import Binding, CommissionRule, Distributor, Grade, OrderAttribution
from app.earnings.on_paid import follow_up_orders
from app.extensions import db
from app.ledger.balances import balances, entries_for, mask_name, reason_not_available
from app.ledger.entries import reversal_target
from app.ledger.models import LedgerEntry
from app.ledger.settlement import settle_due
from app.orders.models import Order, OrderLine
from app.orders.refunds import request_refund
from app.orders.services import ItemRequest, place_order
from jobs.commissions import compute_order_commissions
from tests.support.commissions import (
    chain,
    configure,
    customer_of,
    distributor,
    earned,
    finish,
    pay,
    place,
    refund,
)
from tests.support.pay import (
    address_for,
    fresh,
    prepay,
    sandbox_pay,
    wait_for_paid_follow_up,
    wait_until,
)

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

ROOT = Path(__file__).resolve().parent.parent

# --- helpers (shared with the other commission test files) -------------------------------


def by_level(order_id: int, people: list[Distributor]) -> dict[int, int]:
    """{level: fen} for the given distributors (index 0 = level 1)."""
    result = {}
    for kind_who, amount in earned(order_id).items():
        kind, who = kind_who.split("@")
        assert int(who) in [p.id for p in people], kind_who
        result[int(kind[-1])] = amount
    return result


def all_entries() -> list[LedgerEntry]:
    db.session.rollback()
    return list(db.session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)))


# --- worked cases -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("levels", "expected"),
    [(1, {1: 1000}), (2, {1: 1000, 2: 500}), (3, {1: 1000, 2: 500, 3: 200})],
)
def test_one_two_three_levels(app, make, levels, expected):
    configure(levels=levels)
    people = chain(make, 3)
    order = pay(place(make, customer_of(make, people[0])))
    assert by_level(order.id, people) == expected
    kinds = {row.level: row.distributor_id for row in db.session.scalars(select(OrderAttribution))}
    assert kinds == {level: people[level - 1].id for level in expected}


def test_self_purchase_on_pays_the_buyer_level_one(app, make):
    configure(levels=2, self_purchase=True)
    parent = distributor(make)
    buyer = distributor(make, parent)
    bind(buyer.user_id, parent, "link")
    db.session.commit()
    order = pay(place(make, db.session.get(Distributor, buyer.id).user))
    assert earned(order.id) == {f"level_1@{buyer.id}": 1000, f"level_2@{parent.id}": 500}
    assert db.session.scalar(
        select(OrderAttribution.self_purchase).where(OrderAttribution.level == 1)
    )


def test_self_purchase_off_pays_the_binding_instead(app, make):
    configure(levels=2, self_purchase=False)
    grand = distributor(make)
    parent = distributor(make, grand)
    buyer = distributor(make, parent)
    bind(buyer.user_id, parent, "link")
    db.session.commit()
    order = pay(place(make, db.session.get(Distributor, buyer.id).user))
    assert earned(order.id) == {f"level_1@{parent.id}": 1000, f"level_2@{grand.id}": 500}


def test_unbound_customer_earns_nobody_anything(app, make):
    configure(levels=3)
    order = pay(place(make, customer_of(make, None)))
    assert earned(order.id) == {}
    assert balances(1) == balances(2)


def test_missing_ancestor_share_stays_with_the_merchant(app, make):
    configure(levels=3)
    seller = distributor(make)  # no parent at all
    order = pay(place(make, customer_of(make, seller)))
    assert by_level(order.id, [seller]) == {1: 1000}


def test_disabled_ancestor_is_skipped_without_moving_the_next_one_up(app, make):
    configure(levels=3)
    seller, parent, grand = chain(make, 3)
    parent.status = "disabled"
    db.session.commit()
    order = pay(place(make, customer_of(make, seller)))
    assert earned(order.id) == {f"level_1@{seller.id}": 1000, f"level_3@{grand.id}": 200}


def test_disabled_seller_earns_nothing_but_the_parent_still_does(app, make):
    configure(levels=2)
    seller, parent = chain(make, 2)
    user = customer_of(make, seller)
    seller.status = "disabled"
    db.session.commit()
    order = pay(place(make, user))
    assert earned(order.id) == {f"level_2@{parent.id}": 500}


def test_distribution_off_attributes_nothing(app, make):
    configure(levels=2, enabled=False)
    seller, _parent = chain(make, 2)
    order = pay(place(make, customer_of(make, seller)))
    assert db.session.scalar(select(func.count()).select_from(OrderAttribution)) == 0
    assert earned(order.id) == {}


def _rule(product, mode, values, sku=None):
    db.session.add(
        CommissionRule(
            product_id=product.id,
            sku_id=sku.id if sku else None,
            mode=mode,
            level1=values[0],
            level2=values[1],
            level3=values[2],
        )
    )
    db.session.commit()


@pytest.mark.parametrize(
    ("mode", "values", "quantity", "expected"),
    [
        ("percent", (2000, 1000, 0), 2, {1: 4000, 2: 2000}),  # 20% / 10% of 20000
        ("fixed", (300, 100, 0), 2, {1: 600, 2: 200}),  # per unit × 2
        ("none", (0, 0, 0), 2, {}),  # excluded product
    ],
)
def test_product_rules_percent_fixed_excluded(app, make, mode, values, quantity, expected):
    configure(levels=2)
    people = chain(make, 2)
    product = make.product(price_fen=10000, stock=10)
    _rule(product, mode, values)
    order = pay(place(make, customer_of(make, people[0]), product=product, quantity=quantity))
    assert by_level(order.id, people) == expected
    sources = set(db.session.scalars(select(LedgerEntry.rule_source)))
    assert sources == ({"商品规则"} if expected else set())


def test_grade_beats_default_and_product_and_sku_rules_beat_grade(app, make):
    configure(levels=2)
    gold = Grade(name="金牌", rank=2, level1_bp=1500, level2_bp=800)
    db.session.add(gold)
    seller, parent = chain(make, 2)
    db.session.flush()
    seller.grade_id = gold.id
    db.session.commit()
    user = customer_of(make, seller)
    # grade: seller at 15%, parent (no grade) at the shop default 5%
    first = pay(place(make, user))
    assert earned(first.id) == {f"level_1@{seller.id}": 1500, f"level_2@{parent.id}": 500}
    sources = dict(
        db.session.execute(
            select(LedgerEntry.kind, LedgerEntry.rule_source).where(
                LedgerEntry.order_id == first.id
            )
        ).all()
    )
    assert sources == {"level_1": "等级 金牌", "level_2": "店铺默认"}
    # product rule beats the grade; a SKU rule beats the product rule
    product = make.product(price_fen=10000, specs={"颜色": ["红", "蓝"]}, stock=10)
    _rule(product, "percent", (2000, 300, 0))
    _rule(product, "fixed", (111, 22, 0), sku=product.skus[1])
    second = pay(place(make, user, product=product))  # the red SKU: product rule
    assert earned(second.id) == {f"level_1@{seller.id}": 2000, f"level_2@{parent.id}": 300}
    address = address_for(user)
    blue = place_order(user.id, [ItemRequest(product.skus[1].id, 3)], address.id)
    db.session.commit()
    third = pay(blue)
    assert earned(third.id) == {f"level_1@{seller.id}": 333, f"level_2@{parent.id}": 66}


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (99, {1: 9, 2: 4}),  # 9.9 -> 9, 4.95 -> 4: rounded down, the merchant keeps the rest
        (19, {1: 1}),  # 1.9 -> 1, 0.95 -> 0: a zero share writes no entry
        (9, {}),  # 0.9 -> 0
    ],
)
def test_rounding_of_small_amounts(app, make, price, expected):
    configure(levels=2)
    people = chain(make, 2)
    order = pay(place(make, customer_of(make, people[0]), price_fen=price))
    assert by_level(order.id, people) == expected


def test_shipping_is_not_part_of_the_base(app, make):
    configure(levels=1)
    seller = distributor(make)
    order = pay(place(make, customer_of(make, seller), price_fen=1000))  # below free shipping
    assert order.shipping_fen > 0
    assert earned(order.id) == {f"level_1@{seller.id}": 100}


def test_attribution_is_fixed_at_placement_and_rebinding_does_not_move_it(app, make):
    configure(levels=1, protection_days=0)  # the latest link wins
    first, second = distributor(make), distributor(make)
    user = customer_of(make, first)
    order = place(make, user)
    bind(user.id, second, "link")
    db.session.commit()
    assert db.session.scalar(select(Binding.distributor_id)) == second.id
    pay(order)
    assert earned(order.id) == {f"level_1@{first.id}": 1000}


def test_bind_on_first_payment_attributes_at_payment(app, make):
    configure(levels=2, bind_mode="first_payment")
    seller, parent = chain(make, 2)
    user = make.user(nickname="李四")
    record_ref(user.id, seller, "link")
    db.session.commit()
    order = place(make, user)
    assert db.session.scalar(select(func.count()).select_from(OrderAttribution)) == 0
    pay(order)
    assert earned(order.id) == {f"level_1@{seller.id}": 1000, f"level_2@{parent.id}": 500}
    assert db.session.scalar(select(Binding.distributor_id)) == seller.id


def test_paid_order_extends_protection_once_even_if_the_job_runs_again(app, make):
    configure(levels=1, protection_days=10, protection_extend_days=5)
    seller = distributor(make)
    user = customer_of(make, seller)
    before = db.session.scalar(select(Binding.protected_until))
    order = pay(place(make, user))
    compute_order_commissions(order.id)
    compute_order_commissions(order.id)
    db.session.rollback()
    after = db.session.scalar(select(Binding.protected_until))
    assert (after - before).days == 5


# --- refunds, settlement ------------------------------------------------------------------


def test_reversal_rule():
    assert reversal_target(999, 6666, 9999) == 666
    assert reversal_target(999, 0, 9999) == 0
    assert reversal_target(100, 9999, 9999) == 100
    assert reversal_target(5, 1, 3) == 1


def test_partial_refund_before_settlement_then_settle(app, make):
    configure(levels=2, settlement_hold_days=7)
    seller, parent = chain(make, 2)
    order = pay(place(make, customer_of(make, seller), price_fen=3333, quantity=3))  # 9999
    assert earned(order.id) == {f"level_1@{seller.id}": 999, f"level_2@{parent.id}": 499}
    refund(order, 1)  # 3333 back, 6666 still paid
    reversals = {e.distributor_id: e for e in all_entries() if e.kind == "reversal"}
    assert reversals[seller.id].amount_fen == 666 - 999
    assert reversals[parent.id].amount_fen == 332 - 499  # floor(499 × 6666 / 9999)
    assert {e.state for e in reversals.values()} == {"pending"}
    assert balances(seller.id).pending_fen == 666
    finish(order, days_ago=8)
    assert settle_due(utcnow()) == 4
    db.session.commit()
    assert balances(seller.id) == balances(seller.id).__class__(0, 666, 0)
    assert balances(parent.id).available_fen == 332
    assert settle_due(utcnow()) == 0  # nothing twice


def test_two_partial_refunds_then_the_rest(app, make):
    configure(levels=1)
    seller = distributor(make)
    order = pay(place(make, customer_of(make, seller), price_fen=1001, quantity=3))  # 3003
    assert earned(order.id) == {f"level_1@{seller.id}": 300}
    refund(order, 1)  # 1001 back -> floor(300 × 2002 / 3003) = 200
    assert balances(seller.id).pending_fen == 200
    refund(order, 1)  # -> floor(300 × 1001 / 3003) = 100
    assert balances(seller.id).pending_fen == 100
    refund(order, 1)  # all refunded before settlement: everything lapses
    states = {e.state for e in all_entries()}
    assert states == {"reversed"}
    assert balances(seller.id) == balances(seller.id).__class__(0, 0, 0)
    assert fresh(Order, order.id).status == "cancelled"


def test_refund_after_settlement_writes_a_negative_settled_entry(app, make):
    configure(levels=2, settlement_hold_days=7)
    seller, parent = chain(make, 2)
    order = pay(place(make, customer_of(make, seller), price_fen=5000, quantity=2))  # 10000
    finish(order, days_ago=10)
    assert settle_due(utcnow()) == 2
    db.session.commit()
    assert balances(seller.id).available_fen == 1000
    refund(order, 1)
    entries = all_entries()
    reversal = next(e for e in entries if e.kind == "reversal" and e.distributor_id == seller.id)
    assert (reversal.amount_fen, reversal.state) == (-500, "settled")
    assert balances(seller.id).available_fen == 500
    assert balances(parent.id).available_fen == 250
    refund(order, 1)  # the rest: available drops to zero, earnings stay settled
    assert balances(seller.id).available_fen == 0
    assert {e.state for e in all_entries() if e.kind != "reversal"} == {"settled"}


def test_refund_after_settlement_and_withdrawal_goes_negative(app, make):
    configure(levels=1, settlement_hold_days=0)
    seller = distributor(make)
    order = pay(place(make, customer_of(make, seller)))
    finish(order)
    settle_due(utcnow())
    db.session.add(
        LedgerEntry(
            distributor_id=seller.id, kind="withdrawal", amount_fen=-1000, state="withdrawn"
        )
    )
    db.session.commit()
    refund(order, 1)
    assert balances(seller.id).available_fen == -1000
    assert balances(seller.id).withdrawn_fen == 1000


def test_refund_before_the_job_ran_is_applied_when_it_runs(app, make):
    configure(levels=1)
    seller = distributor(make)
    order = pay(place(make, customer_of(make, seller), price_fen=2500, quantity=4), run_job=False)
    refund(order, 1)  # 2500 back before any commission exists
    assert all_entries() == []
    compute_order_commissions(order.id)
    assert balances(seller.id).pending_fen == 750  # floor(1000 × 7500 / 10000)
    compute_order_commissions(order.id)
    assert len(all_entries()) == 2


def test_line_fully_refunded_before_the_job_earns_nothing(app, make):
    configure(levels=1)
    seller = distributor(make)
    order = pay(place(make, customer_of(make, seller)), run_job=False)
    refund(order, 1)
    compute_order_commissions(order.id)
    assert all_entries() == []


def test_open_refund_or_hold_blocks_settlement(app, make):
    configure(levels=1, settlement_hold_days=7)
    seller = distributor(make)
    user = customer_of(make, seller)
    in_hold = finish(pay(place(make, user)), days_ago=3)
    with_refund = finish(pay(place(make, user, quantity=2)), days_ago=30)
    line = fresh(Order, with_refund.id).lines[0]
    request_refund(fresh(Order, with_refund.id), line, 1, "坏了", "user:1")
    db.session.commit()
    unfinished = pay(place(make, user))
    assert settle_due(utcnow()) == 0
    # ... and once the hold passes, the refund is settled, those two settle.
    assert settle_due(utcnow() + timedelta(days=5)) == 1
    db.session.commit()
    states = dict(db.session.execute(select(LedgerEntry.order_id, LedgerEntry.state)).all())
    assert states == {in_hold.id: "settled", with_refund.id: "pending", unfinished.id: "pending"}


def test_settlement_batches(app, make):
    configure(levels=3, settlement_hold_days=1)
    people = chain(make, 3)
    user = customer_of(make, people[0])
    for _ in range(3):
        finish(pay(place(make, user)), days_ago=2)
    commits = []
    total = settle_due(utcnow(), batch=4, after_batch=lambda: commits.append(db.session.commit()))
    assert total == 9
    assert len(commits) == 3  # 4 + 4 + 1
    assert balances(people[0].id).available_fen == 3000


# --- the ledger list ------------------------------------------------------------------------


def test_ledger_list_masks_the_buyer_and_says_why(app, make):
    configure(levels=1, settlement_hold_days=7)
    seller = distributor(make)
    user = customer_of(make, seller, nickname="张三丰")
    now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    waiting = pay(place(make, user))
    done = finish(pay(place(make, user)))
    db.session.execute(
        update(Order)
        .where(Order.id == done.id)
        .values(completed_at=datetime(2026, 11, 26, 17, 0, tzinfo=UTC))  # 27th, China time
    )
    db.session.commit()
    refunded = pay(place(make, user))
    refund(refunded, 1)
    rows = entries_for(seller.id, now=now)
    reasons = {row.order_number: row.reason_not_available for row in rows}
    assert reasons == {
        waiting.number: "待确认收货",
        done.number: "售后期至 12月4日",
        refunded.number: "已失效: 已退款",
    }
    assert {row.buyer_name for row in rows} == {"张**"}
    assert mask_name("") == "微信用户"
    settled = finish(pay(place(make, user)), days_ago=30)
    settle_due(utcnow())
    db.session.commit()
    row = entries_for(seller.id)[0]
    assert (row.order_number, row.reason_not_available) == (settled.number, "")
    open_refund = pay(place(make, user, quantity=2))
    request_refund(
        fresh(Order, open_refund.id), fresh(Order, open_refund.id).lines[0], 1, "换", "u"
    )
    db.session.commit()
    assert entries_for(seller.id)[0].reason_not_available == "退款处理中"
    assert len(entries_for(seller.id, page=1, per_page=2)) == 2
    entry = db.session.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).first()
    order = db.session.get(Order, entry.order_id)
    order.status = "pending_payment"  # not persisted: only the wording is checked
    assert reason_not_available(entry, order, now, refund_open=False) == "待付款确认"
    db.session.rollback()


# --- joining and grades ---------------------------------------------------------------------


def test_threshold_join_under_the_binding_and_grade_upgrade(app, make):
    configure(levels=2, join_mode="threshold", join_threshold_fen=15000)
    silver = Grade(name="银牌", rank=1, level1_bp=1200, upgrade_direct_count=1)
    gold = Grade(name="金牌", rank=2, level1_bp=1500, upgrade_team_sales_fen=1_000_000)
    db.session.add_all([silver, gold])
    db.session.commit()
    seller = distributor(make)
    user = customer_of(make, seller)
    pay(place(make, user))  # 10000 paid: below the threshold
    assert db.session.scalar(select(Distributor).where(Distributor.user_id == user.id)) is None
    assert db.session.get(Distributor, seller.id).grade_id is None
    pay(place(make, user))  # 20000: joins under the seller, who now has a direct member
    joined = db.session.scalar(select(Distributor).where(Distributor.user_id == user.id))
    assert joined is not None and joined.parent_id == seller.id
    assert db.session.get(Distributor, seller.id).grade_id == silver.id
    # Never downgraded: the member leaving does not take the grade away.
    joined.status = "disabled"
    db.session.commit()
    pay(place(make, customer_of(make, seller)))
    assert db.session.get(Distributor, seller.id).grade_id == silver.id


def test_threshold_join_counts_goods_not_shipping(app, make):
    """Paid purchases are goods only, like team sales: a ¥95 order paid ¥105 with
    shipping stays below a ¥100 threshold; ¥5 more of goods (again with shipping) joins."""
    configure(join_mode="threshold", join_threshold_fen=10000)
    seller = distributor(make)
    user = customer_of(make, seller)
    first = pay(place(make, user, price_fen=9500))  # below free shipping (¥99)
    assert (first.items_fen, first.shipping_fen, first.paid_fen) == (9500, 1000, 10500)
    assert db.session.scalar(select(Distributor).where(Distributor.user_id == user.id)) is None
    second = pay(place(make, user, price_fen=500))
    assert second.shipping_fen == 1000
    joined = db.session.scalar(select(Distributor).where(Distributor.user_id == user.id))
    assert joined is not None and joined.parent_id == seller.id


def test_a_batch_of_orders_in_one_transaction_writes_each_once(app, make):
    """``follow_up_orders``: several paid orders followed up in one transaction (what a
    batch job commits once), an unknown id skipped, a second run writing nothing."""
    configure(levels=2)
    seller, parent = chain(make, 2)
    orders = [pay(place(make, customer_of(make, seller)), run_job=False) for _ in range(3)]
    ids = [order.id for order in orders]
    done = follow_up_orders([*ids, 999_999], extend_protection={ids[0]})
    db.session.commit()
    assert [(f.order_id, f.skipped, f.entries) for f in done] == [
        *((i, False, 2) for i in ids),
        (999_999, True, 0),
    ]
    for order_id in ids:
        assert earned(order_id) == {f"level_1@{seller.id}": 1000, f"level_2@{parent.id}": 500}
    again = follow_up_orders(ids)
    db.session.commit()
    assert [f.entries for f in again] == [0, 0, 0] and len(all_entries()) == 6


# --- end to end: a signed notice over HTTP, a real worker ---------------------------------


def test_end_to_end_notice_over_http_and_a_real_worker(
    app, make, sandbox, live_server, database_url, redis_url
):
    configure(levels=2)
    seller, parent = chain(make, 2)
    order = place(make, customer_of(make, seller), price_fen=4990, quantity=2)
    prepay(order)
    sandbox_pay(sandbox, order.number)  # the stand-in sends a signed notice to /pay/notify
    wait_until(lambda: fresh(Order, order.id).status == "paid")
    wait_for_paid_follow_up(app, order.id)
    env = dict(os.environ, APP_ENV="test", DATABASE_URL=database_url, REDIS_URL=redis_url)
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert earned(order.id) == {f"level_1@{seller.id}": 998, f"level_2@{parent.id}": 499}
    from rq.job import Job

    from app.core.redis import redis_for
    from jobs.follow_ups import SWEEP_JOB_PREFIX
    from jobs.queues import get_queue

    finished = get_queue("default").finished_job_registry.get_job_ids()
    sweeps = [job_id for job_id in finished if job_id.startswith(SWEEP_JOB_PREFIX)]
    assert len(sweeps) == 1  # the pay notice woke the follow-up sweep, which did it
    job = Job.fetch(sweeps[0], connection=redis_for(app))
    assert job.get_status() == "finished"
    assert job.return_value()["followed_up"] == 1
    assert db.session.get(Sku, order.lines[0].sku_id) is not None
    assert db.session.scalar(select(func.sum(OrderLine.amount_fen))) == 9980
