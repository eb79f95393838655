"""Coupons: the allocation rule on worked cases computed by hand (docs/coupons.md), the
commission, refund and cancel paths that follow from each line's paid amount, claiming and
its limits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.coupons.allocation import allocate, coupon_discount
from app.coupons.models import CouponTemplate, CustomerCoupon
from app.coupons.services import CouponError, claim, issue
from app.distribution.binding import current_binding
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from app.orders.services import OrderError, cancel_order
from tests.support import commissions as c
from tests.support.coupons import held, place_with, template
from tests.support.pay import fresh

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def by_line(order_id: int) -> dict[tuple[int, str], int]:
    """{(line id, kind): fen} of an order's ledger entries; a reversal counts on the line of
    the entry it reverses (reversals summed per line)."""
    db.session.rollback()
    rows = db.session.execute(
        select(
            LedgerEntry.id,
            LedgerEntry.order_line_id,
            LedgerEntry.reverses_id,
            LedgerEntry.kind,
            LedgerEntry.amount_fen,
        ).where(LedgerEntry.order_id == order_id)
    ).all()
    line_of = {entry_id: line_id for entry_id, line_id, *_ in rows}
    found: dict[tuple[int, str], int] = {}
    for _id, line_id, reverses_id, kind, fen in rows:
        key = (line_id if reverses_id is None else line_of.get(reverses_id), kind)
        found[key] = found.get(key, 0) + fen
    return found


# --- the rule, by hand --------------------------------------------------------------------


def test_allocation_of_twenty_yuan_over_9990_1990_10():
    # 2000 × 9990 / 11990 = 1666.39 -> 1666; 2000 × 1990 / 11990 = 331.94 -> 331;
    # 2000 × 10 / 11990 = 1.67 -> 1; floors sum to 1998, the 2 fen left go to the 9990 line.
    assert allocate([(1, 9990), (2, 1990), (3, 10)], 2000) == {1: 1668, 2: 331, 3: 1}


def test_remainder_ties_go_to_the_lowest_line_id():
    # 100 × 1/3 = 33.33 -> 33 each; 1 fen left; lines 7 and 5 tie: line 5 takes it.
    assert allocate([(7, 100), (5, 100), (9, 100)], 100) == {7: 33, 5: 34, 9: 33}


def test_a_line_never_gets_more_than_its_amount():
    # 2 × 1 / 3 = 0 each; the 2 fen left: the first tie (id 1) can take 1, then id 2.
    assert allocate([(1, 1), (2, 1), (3, 1)], 2) == {1: 1, 2: 1, 3: 0}


def test_discount_kinds():
    args = {"threshold_fen": 10000, "off_fen": 2000, "off_bp": 0, "max_off_fen": 0}
    assert coupon_discount("amount_off", 9999, **args) == 0
    assert coupon_discount("amount_off", 10000, **args) == 2000
    assert coupon_discount("no_threshold", 500, **args) == 500  # never more than the goods
    pct = {"threshold_fen": 0, "off_fen": 0, "off_bp": 2000, "max_off_fen": 3000}
    assert coupon_discount("percent_off", 10000, **pct) == 2000  # 20% of ¥100
    assert coupon_discount("percent_off", 30000, **pct) == 3000  # 6000 capped at ¥30


# --- worked cases through the real order, pay and commission path --------------------------


def test_twenty_yuan_off_on_three_lines_and_each_levels_commission(make):
    c.configure(levels=2)  # level 1 10%, level 2 5%
    seller, _parent = c.chain(make, 2)
    buyer = c.customer_of(make, seller)
    skus = [make.product(price_fen=p, stock=10).skus[0].id for p in (9990, 1990, 10)]
    coupon = held(buyer, template())
    order = place_with(buyer, [(s, 1) for s in skus], coupon)

    lines = sorted(fresh(Order, order.id).lines, key=lambda line: line.sku_id)
    # paid = goods - share: 9990 - 1668 = 8322, 1990 - 331 = 1659, 10 - 1 = 9.
    assert [line.amount_fen for line in lines] == [8322, 1659, 9]
    assert order.coupon_fen == 2000
    assert order.items_fen == 9990  # 11990 - 2000
    assert order.shipping_fen == 0  # reckoned on the goods before the coupon (¥119.90)
    assert order.total_fen == 9990

    c.pay(order)
    got = by_line(order.id)
    # level 1 = floor(10% × paid), level 2 = floor(5% × paid):
    # 8322 -> 832 / 416; 1659 -> 165 / 82; 9 -> 0 / 0 (nothing written for 0).
    assert got[(lines[0].id, "level_1")] == 832
    assert got[(lines[0].id, "level_2")] == 416
    assert got[(lines[1].id, "level_1")] == 165
    assert got[(lines[1].id, "level_2")] == 82
    assert (lines[2].id, "level_1") not in got
    assert sum(v for (_, kind), v in got.items() if kind == "level_1") == 997
    assert db.session.get(CustomerCoupon, coupon.id).status == "used"

    # A refund of the 1990 line afterwards returns its paid share and reverses that line only.
    refund = c.refund(
        order, 1, line_index=[line.id for line in fresh(Order, order.id).lines].index(lines[1].id)
    )
    assert refund.amount_fen == 1659
    after = by_line(order.id)
    # Refunded before settlement: that line's 165 and 82 lapse (state reversed); the other
    # lines' earnings stay pending, untouched.
    states = {
        (line_id, kind): state
        for line_id, kind, state in db.session.execute(
            select(LedgerEntry.order_line_id, LedgerEntry.kind, LedgerEntry.state).where(
                LedgerEntry.order_id == order.id, LedgerEntry.kind != "reversal"
            )
        )
    }
    assert states == {
        (lines[0].id, "level_1"): "pending",
        (lines[0].id, "level_2"): "pending",
        (lines[1].id, "level_1"): "reversed",
        (lines[1].id, "level_2"): "reversed",
    }
    assert after[(lines[0].id, "level_1")] == 832 and after[(lines[0].id, "level_2")] == 416
    # The coupon of a paid order is not given back.
    assert db.session.get(CustomerCoupon, coupon.id).status == "used"


def test_percent_coupon_whose_maximum_binds(make):
    buyer = make.user()
    a = make.product(price_fen=20000, stock=5).skus[0].id
    b = make.product(price_fen=10000, stock=5).skus[0].id
    t = template(
        name="8折券", kind="percent_off", off_fen=0, threshold_fen=0, off_bp=2000, max_off_fen=3000
    )
    order = place_with(buyer, [(a, 1), (b, 1)], held(buyer, t))
    # 20% of 30000 = 6000, capped at 3000; 3000 × 20000/30000 = 2000, × 10000/30000 = 1000.
    amounts = {line.sku_id: line.amount_fen for line in order.lines}
    assert amounts == {a: 18000, b: 9000}
    assert order.coupon_fen == 3000
    assert order.total_fen == 27000


def test_category_coupon_in_a_mixed_order(make):
    buyer = make.user()
    fruit, tools = make.category("水果"), make.category("工具")
    a = make.product(price_fen=5000, category=fruit).skus[0].id
    b = make.product(price_fen=3000, category=fruit).skus[0].id
    other = make.product(price_fen=4000, category=tools).skus[0].id
    t = template(
        name="水果券", threshold_fen=8000, off_fen=1001, scope="categories", scope_ids=(fruit.id,)
    )
    order = place_with(buyer, [(a, 1), (b, 1), (other, 1)], held(buyer, t))
    # Only the fruit (8000) counts toward the threshold and shares the 1001 fen:
    # 1001 × 5000/8000 = 625.6 -> 625 (+1 left over, the largest line) = 626;
    # 1001 × 3000/8000 = 375.4 -> 375; the tool line keeps its 4000.
    amounts = {line.sku_id: line.amount_fen for line in order.lines}
    assert amounts == {a: 5000 - 626, b: 3000 - 375, other: 4000}
    assert order.coupon_fen == 1001


def test_category_coupon_below_its_threshold_is_refused(make):
    buyer = make.user()
    fruit = make.category("水果")
    a = make.product(price_fen=5000, category=fruit).skus[0].id
    other = make.product(price_fen=9000).skus[0].id
    t = template(threshold_fen=8000, off_fen=1000, scope="categories", scope_ids=(fruit.id,))
    coupon = held(buyer, t)
    with pytest.raises(OrderError) as caught:
        place_with(buyer, [(a, 1), (other, 1)], coupon)
    assert caught.value.code == "coupon_not_applicable"
    db.session.rollback()
    assert db.session.get(CustomerCoupon, coupon.id).status == "unused"


def test_cancelling_an_unpaid_order_gives_the_coupon_back(make):
    buyer = make.user()
    sku = make.product(price_fen=12000).skus[0].id
    coupon = held(buyer, template())
    order = place_with(buyer, [(sku, 1)], coupon)
    with pytest.raises(OrderError) as caught:
        place_with(buyer, [(sku, 1)], coupon)
    assert caught.value.code == "coupon_used"
    db.session.rollback()
    cancel_order(fresh(Order, order.id), f"user:{buyer.id}")
    db.session.commit()
    assert db.session.get(CustomerCoupon, coupon.id).status == "unused"
    again = place_with(buyer, [(sku, 1)], coupon)
    assert again.coupon_fen == 2000


# --- claiming -----------------------------------------------------------------------------


def test_claim_limits_and_stock(make):
    t = template(stock=2, per_customer=1)
    first, second, third = make.user(), make.user(), make.user()
    held(first, t)
    with pytest.raises(CouponError) as caught:
        claim(t.id, first.id)
    assert caught.value.code == "coupon_limit"
    db.session.rollback()
    held(second, t)
    with pytest.raises(CouponError) as caught:
        claim(t.id, third.id)
    assert caught.value.code == "coupon_sold_out"
    db.session.rollback()
    assert db.session.get(CouponTemplate, t.id).issued == 2


def test_staff_issue_skips_those_at_the_limit(make):
    t = template(stock=10, per_customer=1)
    a, b = make.user(), make.user()
    held(a, t)
    assert issue(t.id, [a.id, b.id]) == {"issued": 1, "skipped": 1}
    db.session.commit()
    assert db.session.get(CouponTemplate, t.id).issued == 2


def test_distributor_only_coupon_binds_the_claimer(make):
    c.configure()
    seller = c.distributor(make)
    t = template(distributor_only=True)
    buyer = make.user()
    with pytest.raises(CouponError) as caught:
        claim(t.id, buyer.id)
    assert caught.value.code == "distributor_only"
    db.session.rollback()
    coupon = held(buyer, t, distributor=seller)
    assert coupon.source == "distributor" and coupon.distributor_id == seller.id
    assert current_binding(buyer.id).distributor_id == seller.id


def test_partial_refund_of_one_line_reverses_that_line_only(make):
    c.configure(levels=1)  # level 1 10%
    seller = c.distributor(make)
    buyer = c.customer_of(make, seller)
    a = make.product(price_fen=5000, stock=10).skus[0].id
    b = make.product(price_fen=5000, stock=10).skus[0].id
    t = template(name="满100减15", threshold_fen=10000, off_fen=1500)
    order = place_with(buyer, [(a, 2), (b, 1)], held(buyer, t))
    # 1500 × 10000/15000 = 1000 on A (2 × 5000), 1500 × 5000/15000 = 500 on B.
    lines = {line.sku_id: line for line in fresh(Order, order.id).lines}
    assert (lines[a].amount_fen, lines[b].amount_fen) == (9000, 4500)
    c.pay(order)
    assert by_line(order.id) == {(lines[a].id, "level_1"): 900, (lines[b].id, "level_1"): 450}

    # Refund 1 of A's 2 units: half of A's paid 9000 = 4500 back; A's 900 comes down by
    # half (a -450 reversal); B's 450 is untouched.
    index = [line.id for line in fresh(Order, order.id).lines].index(lines[a].id)
    refund = c.refund(order, 1, line_index=index)
    assert refund.amount_fen == 4500
    assert by_line(order.id) == {
        (lines[a].id, "level_1"): 900,
        (lines[a].id, "reversal"): -450,
        (lines[b].id, "level_1"): 450,
    }
