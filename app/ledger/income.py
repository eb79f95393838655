"""收益: what a distributor earned, defined once (docs/domain.md, "收益").

An entry counts toward 收益 when it is an earning (commission levels 1-3, region
dividends, price differences 级差, task and invite rewards: ``EARNING_KINDS``) or what a
refund took back from one (a ``reversal`` without a withdrawal: negative), in any state
but ``reversed``. So:

- an earning counts from the moment it is written (the order was paid), pending or not;
- an earning refunded in full before settlement lapses with its reversals (``reversed``)
  and counts for nothing; a partial refund, or a refund after settlement, counts as its
  negative reversal, on the day the refund was booked;
- withdrawals, and the return of a rejected or failed withdrawal, move money that was
  already earned: they are not 收益.

A day or month of 收益 is the entries *written* in it (``created_at``) on the shop's
calendar (``app.core.time``). Over all time, 收益 = pending + available + withdrawn +
what open withdrawals hold (``balances``): the same entries, split the other way.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func, or_

from app.ledger.kinds import LINE_EARNING_KINDS, REVERSAL, REVERSED, REWARD_KINDS
from app.ledger.models import LedgerEntry

EARNING_KINDS = (*LINE_EARNING_KINDS, *REWARD_KINDS)


def counts_as_income():
    """SQL: the ``LedgerEntry`` counts toward 收益 (see the module's definition)."""
    return and_(
        LedgerEntry.state != REVERSED,
        or_(
            LedgerEntry.kind.in_(EARNING_KINDS),
            and_(LedgerEntry.kind == REVERSAL, LedgerEntry.withdrawal_id.is_(None)),
        ),
    )


def income_sum(since: datetime | None = None):
    """SQL: Σ 收益 of the selected entries (written at or after ``since``, if given), 0 for
    none. Select several next to each other to read them in one pass."""
    condition = counts_as_income()
    if since is not None:
        condition = and_(condition, LedgerEntry.created_at >= since)
    return func.coalesce(func.sum(case((condition, LedgerEntry.amount_fen), else_=0)), 0)
