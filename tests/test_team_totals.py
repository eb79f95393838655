"""Running team-sales totals (``distributor_team_totals``): after payments, refunds,
completions, cancellations, branch moves and concurrent jobs, every total equals the
team-sales definition summed from the orders, and a rebuild changes nothing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update

from app.distribution.distributors import set_parent
from app.distribution.models import Distributor, DistributorTeamTotal
from app.distribution.team import (
    TeamStats,
    rebuild_team_totals,
    recount_team_sales_fen,
    team_sales_fen,
    team_stats,
)
from app.extensions import db
from app.orders.models import Order
from jobs.commissions import compute_order_commissions
from tests.support.commissions import (
    configure,
    customer_of,
    distributor,
    finish,
    pay,
    place,
    refund,
)
from tests.support.pay import fresh

pytestmark = pytest.mark.postgresql  # running totals under concurrent jobs


def totals() -> dict[int, int]:
    """{distributor id: running total} as committed (rows of 0 left out)."""
    db.session.rollback()
    rows = db.session.execute(
        select(DistributorTeamTotal.distributor_id, DistributorTeamTotal.team_sales_fen)
    ).all()
    return {d: int(fen) for d, fen in rows if fen}


def recounted() -> dict[int, int]:
    """{distributor id: team sales summed from the orders} for every distributor."""
    db.session.rollback()
    ids = db.session.scalars(select(Distributor.id)).all()
    return {d: fen for d in ids if (fen := recount_team_sales_fen(d))}


def assert_in_step() -> dict[int, int]:
    """Running totals = a fresh recount = a rebuild; returns them."""
    kept = totals()
    assert kept == recounted()
    rebuild_team_totals()
    db.session.commit()
    assert totals() == kept
    return kept


def test_totals_follow_payments_refunds_completions_and_cancels(app, make):
    configure(levels=2)
    root = distributor(make)
    a, b = distributor(make, root), distributor(make, root)
    a1 = distributor(make, a)
    assert_in_step()

    paid = pay(place(make, customer_of(make, a1), price_fen=2000, quantity=3))
    assert team_sales_fen(root.id) == team_sales_fen(a.id) == team_sales_fen(a1.id) == 6000
    refund(paid, 1)  # 2000 back
    finish(paid)  # completion changes nothing counted
    assert assert_in_step()[root.id] == 4000

    # A refund that lands before the commission job: counted right whichever comes first.
    early = pay(place(make, customer_of(make, b), price_fen=3000, quantity=3), run_job=False)
    refund(early, 1)
    compute_order_commissions(early.id)
    compute_order_commissions(early.id)  # a repeat adds nothing
    assert team_sales_fen(b.id) == 6000

    # Refunded in full: the order is cancelled and leaves the team's sales.
    gone = pay(place(make, customer_of(make, root), price_fen=5000))
    assert team_sales_fen(root.id) == 4000 + 6000 + 5000
    refund(gone, 1)
    assert fresh(Order, gone.id).status == "cancelled"
    assert team_sales_fen(root.id) == 4000 + 6000

    place(make, customer_of(make, a), price_fen=90000)  # never paid: never a sale

    # Paid while distribution is switched off: still a sale of the team it was placed in.
    placed = place(make, customer_of(make, a), price_fen=700)
    configure(enabled=False)
    pay(placed)
    configure(enabled=True)
    assert team_sales_fen(a.id) == 4000 + 700

    kept = assert_in_step()
    assert kept == {root.id: 10700, a.id: 4700, a1.id: 4000, b.id: 6000}
    assert team_stats(root.id) == TeamStats(2, 1, 3, 10700)
    assert team_stats(a.id) == TeamStats(1, 0, 1, 4700)
    assert team_stats(a1.id) == TeamStats(0, 0, 0, 4000)


def test_moving_branches_moves_their_totals(app, make):
    configure(levels=2)
    left, right = distributor(make), distributor(make)
    mid = distributor(make, left)
    leaf = distributor(make, mid)
    pay(place(make, customer_of(make, leaf), price_fen=1000))
    pay(place(make, customer_of(make, mid), price_fen=200))
    pay(place(make, customer_of(make, right), price_fen=30))
    assert assert_in_step() == {left.id: 1200, mid.id: 1200, leaf.id: 1000, right.id: 30}

    set_parent(mid, right)  # the whole branch
    db.session.commit()
    assert assert_in_step() == {mid.id: 1200, leaf.id: 1000, right.id: 1230}

    set_parent(db.session.get(Distributor, leaf.id), db.session.get(Distributor, left.id))
    db.session.commit()
    assert assert_in_step() == {left.id: 1000, mid.id: 200, leaf.id: 1000, right.id: 230}

    set_parent(db.session.get(Distributor, mid.id), db.session.get(Distributor, right.id))
    db.session.commit()  # the same parent again: nothing moves
    set_parent(db.session.get(Distributor, leaf.id), None)
    db.session.commit()
    assert assert_in_step() == {mid.id: 200, leaf.id: 1000, right.id: 230}


def test_rebuild_repairs_a_drifted_total(app, make):
    configure(levels=2)
    top = distributor(make)
    seller = distributor(make, top)
    pay(place(make, customer_of(make, seller), price_fen=1500))
    db.session.execute(update(DistributorTeamTotal).values(team_sales_fen=1))
    db.session.commit()
    assert team_sales_fen(top.id) == 1
    rebuild_team_totals()
    db.session.commit()
    assert totals() == recounted() == {top.id: 1500, seller.id: 1500}


def test_concurrent_jobs_add_up(app, make):
    """Jobs of sellers sharing ancestors, each run twice, all at once: nothing lost or doubled."""
    configure(levels=3)
    root = distributor(make)
    middle = distributor(make, root)
    sellers = [distributor(make, middle), distributor(make, middle), distributor(make, root)]
    orders = [
        pay(place(make, customer_of(make, seller), price_fen=100 * (n + 1)), run_job=False)
        for n, seller in enumerate(sellers * 2)
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2 * len(orders))

    def run(order_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                compute_order_commissions(order_id)
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(o.id,)) for o in orders for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    kept = assert_in_step()
    assert kept[root.id] == sum(100 * (n + 1) for n in range(6))
    assert kept[middle.id] == 100 + 200 + 400 + 500


def test_a_branch_moved_while_a_sale_below_is_counted_keeps_totals_in_step(app, make):
    """Staff move a branch while the commission job of a sale below it runs: the job waits
    for the move and counts the sale in the branch's new chain, not the old one. One
    commission level: the job writes no ledger entry for the moved distributor, whose
    foreign-key check would make it wait for the move by chance."""
    configure(levels=1)
    left, right = distributor(make), distributor(make)
    mid = distributor(make, left)
    leaf = distributor(make, mid)
    pay(place(make, customer_of(make, leaf), price_fen=1000))
    order = pay(place(make, customer_of(make, leaf), price_fen=300), run_job=False)
    moved, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def move() -> None:
        with app.app_context():
            try:
                set_parent(
                    db.session.get(Distributor, mid.id), db.session.get(Distributor, right.id)
                )
                db.session.flush()
                moved.set()
                release.wait(10)  # staff's transaction stays open while the job starts
                db.session.commit()
            except BaseException as exc:  # surfaced below
                errors.append(exc)
                moved.set()
            finally:
                db.session.remove()

    def job() -> None:
        with app.app_context():
            try:
                compute_order_commissions(order.id)
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                db.session.remove()

    mover = threading.Thread(target=move)
    mover.start()
    assert moved.wait(10)
    worker = threading.Thread(target=job)
    worker.start()
    worker.join(0.5)
    assert worker.is_alive()  # waiting for the move
    release.set()
    mover.join(10)
    worker.join(30)
    assert errors == []
    assert assert_in_step() == {mid.id: 1300, leaf.id: 1300, right.id: 1300}
