"""Report summaries stay exact: after payments, refunds and settlement through the real
services, every report read through the daily summaries equals the same report
aggregated live, and both equal direct sums over the orders and the ledger. Triggers mark
a past day changed whatever the path (service or raw SQL); today is never summarized."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from app.core.time import shop_today, utcnow
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.ledger.settlement import settle_due
from app.orders.models import Order, Refund
from app.reports import queries
from app.reports.days import Split, split
from app.reports.models import ReportDailyTotal, ReportDay
from app.reports.periods import Range
from jobs.reports import refresh_summaries
from tests.support.commissions import chain, configure, customer_of, finish, place, refund

pytestmark = pytest.mark.postgresql  # report SQL and triggers

DAYS_AGO = 3


def pay_on(order: Order, days_ago: int) -> Order:
    """Pay ``order`` as the notice does (success_time ``days_ago`` days back), run the
    commission job, and date its ledger entries to the payment (old data)."""
    from app.orders.services import mark_paid
    from jobs.commissions import compute_order_commissions
    from tests.support.pay import fresh

    moment = utcnow() - timedelta(days=days_ago)
    mark_paid(order, transaction_id=f"T{order.id}", amount_fen=order.total_fen, paid_at=moment)
    db.session.commit()
    compute_order_commissions(order.id)
    db.session.execute(
        update(LedgerEntry).where(LedgerEntry.order_id == order.id).values(created_at=moment)
    )
    db.session.commit()
    return fresh(Order, order.id)


def the_range() -> Range:
    today = shop_today()
    return Range(today - timedelta(days=9), today, "day")


def live_only(rng: Range) -> Split:
    return Split(rng, summary=[], live=[(rng.start, rng.end)])


def as_dicts(reports) -> list[tuple]:
    return [(r.key, r.rows, r.totals) for r in reports]


def oracle(rng: Range) -> dict[str, int]:
    """Direct sums over the base tables, independent of the report code."""
    start, end = rng.start_utc, rng.end_utc
    paid = db.session.execute(
        select(func.count(Order.id), func.coalesce(func.sum(Order.paid_fen), 0)).where(
            Order.paid_at >= start, Order.paid_at < end
        )
    ).one()
    refunds = db.session.scalar(
        select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.status == "refunded", Refund.refunded_at >= start, Refund.refunded_at < end
        )
    )
    ledger = dict(
        db.session.execute(
            select(LedgerEntry.state, func.sum(LedgerEntry.amount_fen))
            .where(
                LedgerEntry.created_at >= start,
                LedgerEntry.created_at < end,
                LedgerEntry.kind != "withdrawal",
            )
            .group_by(LedgerEntry.state)
        ).all()
    )
    return {
        "orders": paid[0],
        "sales_fen": paid[1],
        "refunds_fen": refunds,
        "pending_fen": ledger.get("pending", 0),
        "settled_fen": ledger.get("settled", 0) + ledger.get("withdrawn", 0),
    }


def reported(rng: Range) -> dict[str, int]:
    built = {r.key: r for r in queries.all_reports(rng)}
    money = built["commission"].totals
    return {
        "orders": built["sales"].totals["orders"],
        "sales_fen": built["sales"].totals["sales_fen"],
        "refunds_fen": built["sales"].totals["refunds_fen"],
        "pending_fen": sum(money[f"{c}_pending_fen"] for c in queries.CATEGORIES),
        "settled_fen": sum(money[f"{c}_settled_fen"] for c in queries.CATEGORIES),
    }


def assert_exact(rng: Range) -> None:
    db.session.rollback()
    assert reported(rng) == oracle(rng)
    assert as_dicts(queries.all_reports(rng)) == as_dicts(queries.all_reports(rng, live_only(rng)))
    for grain in ("week", "month"):
        wide = Range(rng.start, rng.end, grain)
        assert as_dicts(queries.all_reports(wide)) == as_dicts(
            queries.all_reports(wide, live_only(wide))
        )


def clean_days() -> set:
    db.session.rollback()
    return set(
        db.session.scalars(select(ReportDay.day).where(ReportDay.summarized == ReportDay.changes))
    )


def test_summaries_equal_the_ledger_through_payments_refunds_and_settlement(app_ctx, make):
    configure(levels=2, settlement_hold_days=1)
    seller, _parent = chain(make, 2)
    rng = the_range()
    paid_day = shop_today() - timedelta(days=DAYS_AGO)
    orders = [
        pay_on(place(make, customer_of(make, seller, f"顾客{i}"), price_fen=3333, quantity=3), d)
        for i, d in enumerate((DAYS_AGO, DAYS_AGO, 5, 0))
    ]
    natural = pay_on(place(make, customer_of(make, None, "路人"), price_fen=1990), DAYS_AGO)
    assert_exact(rng)  # nothing summarized yet: all live

    result = refresh_summaries()
    assert result["clean"] >= 2
    assert paid_day in clean_days()
    assert shop_today() not in clean_days()  # today is never summarized
    part = split(rng)
    assert part.summary and part.live[-1][1] == shop_today()
    total = db.session.get(ReportDailyTotal, paid_day)
    assert (total.orders, total.sales_fen) == (3, orders[0].paid_fen * 2 + natural.paid_fen)
    assert total.dist_orders == 2 and total.commission_pending_fen > 0
    assert_exact(rng)

    # A refund of an order paid days ago: its line, its refund today, reversed entries.
    refund(orders[0], 1)
    assert paid_day not in clean_days()  # the paid day changed: read live again
    assert_exact(rng)
    refresh_summaries()
    assert paid_day in clean_days()
    assert_exact(rng)

    # Settlement moves entries of past days from pending to settled.
    for order in (orders[1], orders[2], natural):
        finish(order, days_ago=3)
    assert settle_due(utcnow()) > 0
    db.session.commit()
    assert paid_day not in clean_days()
    assert_exact(rng)
    refresh_summaries()
    assert paid_day in clean_days()
    assert db.session.get(ReportDailyTotal, paid_day).commission_settled_fen > 0
    assert_exact(rng)

    # Raw SQL is caught as well (the triggers are in the database, not in the services).
    db.session.execute(
        text(
            "UPDATE ledger_entries SET state = 'withdrawn' "
            "WHERE order_id = :o AND state = 'settled'"
        ),
        {"o": orders[1].id},
    )
    db.session.execute(
        text("UPDATE orders SET paid_fen = paid_fen WHERE id = :o"), {"o": natural.id}
    )
    db.session.commit()
    assert paid_day not in clean_days()
    assert_exact(rng)


def test_todays_rows_leave_the_day_table_alone(app_ctx, make):
    configure(levels=1)
    (seller,) = chain(make, 1)
    pay_on(place(make, customer_of(make, seller)), 0)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ReportDay)) == 0
    assert refresh_summaries() == {"due": 0, "clean": 0}
    assert_exact(the_range())


def test_a_day_is_clean_only_at_the_change_count_it_was_summarized_at(app_ctx, make):
    """Any bump of ``changes`` makes the day live until a refresh reads and stamps it."""
    from app.reports.summary import refresh_run

    configure(levels=1)
    (seller,) = chain(make, 1)
    order = pay_on(place(make, customer_of(make, seller)), 2)
    day = shop_today() - timedelta(days=2)
    refresh_summaries()
    assert day in clean_days()
    db.session.execute(
        update(ReportDay).where(ReportDay.day == day).values(changes=ReportDay.changes + 1)
    )
    db.session.commit()
    assert day not in clean_days()
    assert refresh_run(day, day) == 1
    db.session.commit()
    assert day in clean_days()
    db.session.execute(
        update(LedgerEntry).where(LedgerEntry.order_id == order.id).values(state="reversed")
    )
    db.session.commit()
    assert day not in clean_days()
    assert_exact(the_range())
