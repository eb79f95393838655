"""Helpers for the withdrawal tests: earners, ledger entries, balances."""

from __future__ import annotations

from sqlalchemy import select

from app.core.models import StatusChange
from app.core.time import utcnow
from app.distribution.distributors import (
    create_distributor,
    get_distribution_settings,
)
from app.distribution.models import Distributor, Withdrawal
from app.extensions import db
from app.ledger.balances import balances
from app.ledger.kinds import PENDING, SETTLED, WITHDRAWN
from app.ledger.models import LedgerEntry


def configure(**values) -> None:
    """Change the shop's distribution settings (committed)."""
    settings = get_distribution_settings()
    for key, value in values.items():
        setattr(settings, key, value)
    db.session.commit()


def earner(make, settled_fen: int = 10_000, pending_fen: int = 0) -> Distributor:
    """An active distributor with ``settled_fen`` available (and ``pending_fen`` pending)."""
    user = make.user()
    distributor = create_distributor(user.id, None)
    make.ledger_entry(
        distributor.id, settled_fen, kind="level_1", state=SETTLED, settled_at=utcnow()
    )
    if pending_fen:
        make.ledger_entry(distributor.id, pending_fen, kind="level_1", state=PENDING)
    return distributor


def history(w: Withdrawal) -> list[str]:
    return list(
        db.session.scalars(
            select(StatusChange.to_status)
            .where(StatusChange.subject == "withdrawal", StatusChange.subject_id == w.id)
            .order_by(StatusChange.id)
        )
    )


def entries(distributor_id: int) -> list[tuple[str, int, str]]:
    return [
        (e.kind, e.amount_fen, e.state)
        for e in db.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.distributor_id == distributor_id)
            .order_by(LedgerEntry.id)
        )
    ]


def assert_balances_are_sums(distributor_id: int) -> None:
    """The derived balances agree with a plain sum of the entries, and nothing is negative."""
    rows = entries(distributor_id)
    got = balances(distributor_id)
    assert got.available_fen == sum(a for _k, a, s in rows if s in (SETTLED, WITHDRAWN))
    assert got.pending_fen == sum(a for _k, a, s in rows if s == "pending")
    assert got.withdrawn_fen == -sum(a for k, a, s in rows if k == "withdrawal" and s == WITHDRAWN)
    assert got.available_fen >= 0
