"""Balances derived from the ledger. Nothing stores a balance; every figure is a sum.

Entry states and what they count toward:

| entry | state | counts as |
| --- | --- | --- |
| earning (level_1/2/3, rewards, dividends) | pending | pending |
| earning | settled | available |
| earning fully refunded before settlement, and its reversals | reversed | nothing |
| reversal of a refund before settlement (negative) | pending | pending |
| reversal of a refund after settlement (negative) | settled | available |
| withdrawal (negative), requested or under way | settled | available (so it is held) |
| withdrawal paid out | withdrawn | available, and withdrawn |
| return of a rejected or failed withdrawal (positive reversal) | settled | available |

So ``available = Σ amount where state in (settled, withdrawn)``,
``pending = Σ amount where state = pending`` and
``withdrawn = -Σ amount of withdrawal entries where state = withdrawn``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select

from app.distribution.models import PENDING, SETTLED, WITHDRAWN, LedgerEntry
from app.extensions import db


@dataclass(frozen=True)
class Balances:
    """A distributor's money, in fen."""

    pending_fen: int
    available_fen: int
    withdrawn_fen: int


def balances(distributor_id: int) -> Balances:
    """Sum the distributor's ledger into pending, available and withdrawn (one query)."""
    amount = LedgerEntry.amount_fen
    pending, available, withdrawn = db.session.execute(
        select(
            func.coalesce(func.sum(case((LedgerEntry.state == PENDING, amount), else_=0)), 0),
            func.coalesce(
                func.sum(case((LedgerEntry.state.in_((SETTLED, WITHDRAWN)), amount), else_=0)), 0
            ),
            func.coalesce(
                func.sum(
                    case(
                        (
                            (LedgerEntry.kind == "withdrawal") & (LedgerEntry.state == WITHDRAWN),
                            -amount,
                        ),
                        else_=0,
                    )
                ),
                0,
            ),
        ).where(LedgerEntry.distributor_id == distributor_id)
    ).one()
    return Balances(int(pending), int(available), int(withdrawn))
