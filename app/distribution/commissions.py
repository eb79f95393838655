"""Settlement of line earnings (the ledger helper moves it to ``app/ledger/settlement.py``).

What each beneficiary earns on a paid order is decided by the calculators
(``distribution.levels``, ``cloud.price_difference``, ``cloud.dividends``) and written by
the paid-order pipeline (``app/earnings/on_paid.py``) through ``app.ledger.entries``.

Settlement. ``settle_due`` moves pending earnings and their pending reversals to
``settled`` once the order is completed, ``completed_at + settlement_hold_days`` has
passed and the order has no open refund: one set-based UPDATE per batch.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update

from app.core.time import utcnow
from app.distribution.distributors import get_distribution_settings
from app.extensions import db
from app.ledger.kinds import PENDING, SETTLEABLE_KINDS, SETTLED
from app.ledger.models import LedgerEntry
from app.orders.models import COMPLETED, OPEN_REFUND_STATUSES, Order, Refund

# --- settlement -----------------------------------------------------------------------------


def _due_ids(now: datetime, limit: int):
    hold = get_distribution_settings().settlement_hold_days
    open_refund = exists().where(
        Refund.order_id == LedgerEntry.order_id, Refund.status.in_(OPEN_REFUND_STATUSES)
    )
    due = (
        select(LedgerEntry.id)
        .join(Order, Order.id == LedgerEntry.order_id)
        .where(
            LedgerEntry.state == PENDING,
            LedgerEntry.kind.in_(SETTLEABLE_KINDS),
            Order.status == COMPLETED,
            Order.completed_at <= now - timedelta(days=hold),
            ~open_refund,
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
    """Settle up to ``limit`` due entries in one UPDATE; return how many (flushes)."""
    due = _due_ids(now, limit)
    if db.engine.dialect.name == "postgresql":
        # ``id = ANY(ARRAY(subquery))``: the batch's ids become one array, so the UPDATE
        # finds its rows by primary key; ``IN (subquery)`` was planned as a hash semi-join
        # over a sequential scan of the whole ledger in every batch.
        match = LedgerEntry.id == func.any(func.array(due.scalar_subquery()))
    else:
        match = LedgerEntry.id.in_(due)
    result = db.session.execute(
        update(LedgerEntry)
        .where(match, LedgerEntry.state == PENDING)
        .values(state=SETTLED, settled_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


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
