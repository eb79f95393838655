"""Team stats from the closure table: counts by depth, team size, team sales."""

from __future__ import annotations

import pytest

from app.distribution.distributors import set_parent
from app.distribution.team import TeamStats, team_stats
from app.extensions import db
from tests.support.commissions import configure, customer_of, distributor, pay, place, refund

pytestmark = pytest.mark.postgresql  # closure-table SQL


def test_counts_by_depth_and_sales_of_the_whole_team(app, make):
    configure(levels=2)
    top = distributor(make)
    a, b = distributor(make, top), distributor(make, top)
    a1 = distributor(make, a)
    deep = distributor(make, distributor(make, a1))  # depth 4 below top
    assert team_stats(top.id) == TeamStats(2, 1, 5, 0)
    pay(place(make, customer_of(make, top), price_fen=1000))  # top's own customer counts
    pay(place(make, customer_of(make, a1), price_fen=2000))
    pay(place(make, customer_of(make, deep), price_fen=4000, quantity=2))
    unpaid = place(make, customer_of(make, b), price_fen=50000)  # never paid: not a sale
    assert unpaid.status == "pending_payment"
    refunded = pay(place(make, customer_of(make, b), price_fen=3000, quantity=3))
    refund(refunded, 1)  # 3000 of 9000 back
    stats = team_stats(top.id)
    assert stats == TeamStats(2, 1, 5, 1000 + 2000 + 8000 + 6000)
    assert team_stats(a.id) == TeamStats(1, 1, 3, 2000 + 8000)
    assert team_stats(deep.id) == TeamStats(0, 0, 0, 8000)


def test_moving_a_branch_moves_its_sales(app, make):
    configure(levels=2)
    left, right = distributor(make), distributor(make)
    member = distributor(make, left)
    pay(place(make, customer_of(make, member), price_fen=5000))
    assert team_stats(left.id).team_sales_fen == 5000
    set_parent(member, right)
    db.session.commit()
    assert team_stats(left.id) == TeamStats(0, 0, 0, 0)
    assert team_stats(right.id) == TeamStats(1, 0, 1, 5000)
