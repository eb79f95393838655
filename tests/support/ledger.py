"""What the ledger tests add to tests/support/commissions.py (real orders placed, paid,
refunded, shipped and completed): an open refund and reads of the
entries and their state history."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.ledger.models import LedgerEntry, LedgerEntryChange
from app.orders.models import Order
from app.orders.refunds import request_refund
from tests.support import commissions
from tests.support.pay import fresh


def configure(**values) -> None:
    """Change the shop's distribution settings (committed). Defaults: 10% / 5%, no third level."""
    commissions.configure(**{"level3_bp": 0, **values})


def ask_refund(order: Order, quantity: int):
    """A refund requested (still open), committed."""
    order = fresh(Order, order.id)
    row = request_refund(order, order.lines[0], quantity, "不想要了", f"user:{order.user_id}")
    db.session.commit()
    return row


def entries(**where) -> list[LedgerEntry]:
    """Ledger entries matching ``where`` (column=value), oldest first, as committed."""
    db.session.rollback()
    query = select(LedgerEntry).order_by(LedgerEntry.id)
    for name, value in where.items():
        query = query.where(getattr(LedgerEntry, name) == value)
    return list(db.session.scalars(query))


def changes(entry_id: int) -> list[tuple[str, str]]:
    """(from, to) of every recorded state change of an entry, in order."""
    db.session.rollback()
    return [
        (row.from_state, row.to_state)
        for row in db.session.scalars(
            select(LedgerEntryChange)
            .where(LedgerEntryChange.entry_id == entry_id)
            .order_by(LedgerEntryChange.id)
        )
    ]
