"""When ledger money may settle: one rule, for every earning and reward.

``settlement_eligible`` is the rule, as SQL on an order: the order is completed, its
settlement hold (``settlement_hold_days`` after ``completed_at``) has passed, and no
refund of it is open. Everything that settles uses it:

- commission settlement (``settle_due``): pending line earnings (commission levels, region
  dividends, price differences) and their pending reversals, by their order;
- invite rewards (``incentives/invites.settle_invite_rewards``): by the first purchase the
  reward was earned on;
- task rewards (``incentives/tasks``): a reward settles once its target is still met
  counting only orders the rule allows (a task has no single order);

and ``not_eligible_reason`` says in Chinese, in the same order of checks, which part of the
rule an order still fails: what the distributor centre shows as "why not withdrawable".

A hold for review (``holds.py``) keeps a distributor's entries on an order pending past
the rule: ``settle_due`` skips them while the hold is open.

``settle_after`` on an entry is the same rule's date, written down: ``completed_at`` plus
the hold, set on the order's pending entries when it completes (``schedule_order``) and
again for every completed order's pending entries when the hold days change
(``reschedule_all``). It says when an entry settles at the earliest; an open refund still
holds it back past that date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, exists, func, select, update

from app.core.time import to_shop_time, utcnow
from app.distribution.models import DistributionSettings
from app.extensions import db
from app.ledger.entries import move_entries
from app.ledger.holds import not_held
from app.ledger.kinds import PENDING, SETTLEABLE_KINDS, SETTLED
from app.ledger.models import LedgerEntry
from app.orders.models import (
    CANCELLED,
    COMPLETED,
    OPEN_REFUND_STATUSES,
    PENDING_PAYMENT,
    Order,
    Refund,
)


def settlement_hold_days() -> int:
    """Days after an order completes during which its money stays pending (settings).

    Read from the settings row itself (a table below the ledger), not through the
    distribution services above it; before the row exists, the column's default.
    """
    settings = db.session.get(DistributionSettings, 1)
    if settings is None:
        return DistributionSettings.__table__.c.settlement_hold_days.default.arg
    return settings.settlement_hold_days


def settlement_eligible(now: datetime, hold_days: int | None = None):
    """SQL: ``Order`` is completed, ``hold_days`` (default: the setting) have passed since
    ``completed_at``, and no refund of it is open. Join or correlate ``Order`` yourself."""
    hold = settlement_hold_days() if hold_days is None else hold_days
    open_refund = exists().where(
        Refund.order_id == Order.id, Refund.status.in_(OPEN_REFUND_STATUSES)
    )
    return and_(
        Order.status == COMPLETED,
        Order.completed_at <= now - timedelta(days=hold),
        ~open_refund,
    )


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return moment


def not_eligible_reason(
    order: Order, now: datetime, *, refund_open: bool | None = None, hold_days: int | None = None
) -> str:
    """Which part of ``settlement_eligible`` ``order`` still fails, in Chinese; "" when
    none (its pending money settles on the next run).

    退款处理中 (a refund of the order is open), 待付款确认 (not paid), 已失效: 已退款
    (cancelled), 待确认收货 (paid or shipped), 售后期至 12月3日 (completed, inside the hold;
    the date in China time). ``refund_open`` and ``hold_days`` may be passed in to save
    queries when listing many entries.
    """
    if refund_open is None:
        refund_open = (
            db.session.scalar(
                select(func.count())
                .select_from(Refund)
                .where(Refund.order_id == order.id, Refund.status.in_(OPEN_REFUND_STATUSES))
            )
            > 0
        )
    if refund_open:
        return "退款处理中"
    if order.status == PENDING_PAYMENT:
        return "待付款确认"
    if order.status == CANCELLED:
        return "已失效: 已退款"
    if order.status != COMPLETED or order.completed_at is None:
        return "待确认收货"
    hold = settlement_hold_days() if hold_days is None else hold_days
    until = _aware(order.completed_at) + timedelta(days=hold)
    if until > now:
        local = to_shop_time(until)  # dates people read are shop time
        return f"售后期至 {local.month}月{local.day}日"
    return ""


# --- settle_after --------------------------------------------------------------------------


def schedule_order(order_id: int, completed_at: datetime, hold_days: int | None = None) -> int:
    """Stamp the order's pending entries with ``settle_after`` = completed_at + hold;
    how many (no flush needed: plain SQL). Called when the order completes."""
    hold = settlement_hold_days() if hold_days is None else hold_days
    result = db.session.execute(
        update(LedgerEntry)
        .where(LedgerEntry.order_id == order_id, LedgerEntry.state == PENDING)
        .values(settle_after=_aware(completed_at) + timedelta(days=hold))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def reschedule_all(hold_days: int) -> int:
    """The hold days changed: stamp every completed order's pending entries again."""
    orders = db.session.execute(
        select(Order.id, Order.completed_at)
        .where(
            Order.status == COMPLETED,
            Order.completed_at.is_not(None),
            exists().where(LedgerEntry.order_id == Order.id, LedgerEntry.state == PENDING),
        )
        .order_by(Order.id)
    ).all()
    return sum(schedule_order(order_id, at, hold_days) for order_id, at in orders)


def settle_after_for(order_id: int | None) -> datetime | None:
    """``settle_after`` for an entry written now on ``order_id`` (None while not completed)."""
    if order_id is None:
        return None
    completed_at = db.session.scalar(
        select(Order.completed_at).where(Order.id == order_id, Order.status == COMPLETED)
    )
    if completed_at is None:
        return None
    return _aware(completed_at) + timedelta(days=settlement_hold_days())


# --- commission settlement -----------------------------------------------------------------


def _due_ids(now: datetime, limit: int):
    due = (
        select(LedgerEntry.id)
        .join(Order, Order.id == LedgerEntry.order_id)
        .where(
            LedgerEntry.state == PENDING,
            LedgerEntry.kind.in_(SETTLEABLE_KINDS),
            settlement_eligible(now),
            not_held(),  # held for review (holds.py): stays pending past its date
        )
        .limit(limit)
    )
    if db.engine.dialect.name != "postgresql":
        return due  # (pysqlite reports no rowcount for a statement that starts WITH)
    # Two settlement runs at once split the rows instead of waiting on each other. The CTE
    # is MATERIALIZED so the LIMIT is applied once: a plain ``IN (subquery LIMIT n)`` may be
    # re-run by the planner and settle more than one batch in a statement.
    due = due.with_for_update(of=LedgerEntry, skip_locked=True).cte("due")
    return select(due.prefix_with("MATERIALIZED").c.id)


def settle_batch(now: datetime, limit: int) -> int:
    """Settle up to ``limit`` due entries (one UPDATE, one INSERT of history); how many."""
    due = _due_ids(now, limit)
    if db.engine.dialect.name == "postgresql":
        # ``id = ANY(ARRAY(subquery))``: the batch's ids become one array, so the UPDATE
        # finds its rows by primary key; ``IN (subquery)`` was planned as a hash semi-join
        # over a sequential scan of the whole ledger in every batch.
        match = LedgerEntry.id == func.any(func.array(due.scalar_subquery()))
    else:
        match = LedgerEntry.id.in_(due)
    return len(move_entries([match], PENDING, SETTLED, "售后期已过，结算", now=now))


def settle_due(now: datetime | None = None, batch: int = 5000, after_batch=None) -> int:
    """Settle every due entry, ``batch`` rows per UPDATE; return the total.

    ``after_batch`` (e.g. ``db.session.commit`` from the job) runs after each batch so a
    long run holds no lock for long; without it everything stays in one transaction.
    """
    now = now or utcnow()
    total = 0
    while True:
        done = settle_batch(now, batch)
        total += done
        if after_batch is not None:
            after_batch()
        if done < batch:
            return total
