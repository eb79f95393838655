"""A distributor's balances and 收益 without summing a million entries on every page.

The entries split in three, each read its own way:

- **pending**: summed live (index range ``(distributor_id, state = 'pending')``);
- **settled or withdrawn, settled since ``through``**: summed live (index range
  ``(distributor_id, settled_at >= through)``);
- **settled or withdrawn, settled before ``through``**: read from
  ``ledger_settled_history``, summed once and kept.

The third part never changes: ``settled_at`` is written once, when an entry settles or is
written settled, and a settled entry only moves on to ``withdrawn``, which counts the same
toward the available balance and 收益 (``balances.py``, ``income.py``). Reversed entries
count for nothing. ``through`` is the start of the shop month that contained the moment two
days ago: no transaction stays open that long, so nothing can still settle before it, and
it is never later than the start of this month, so today's and this month's 收益 are all
in the live parts. When the month moves on, the kept sums are computed again (once per
distributor and month, by the first page that needs them; the edge commits them).

Withdrawn totals (the withdrawal entries paid out) are few and change after settling, so
they are always summed live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select

from app.core.sql import dialect_insert
from app.core.time import shop_day_start, shop_today, utcnow
from app.extensions import db
from app.ledger.income import income_sum
from app.ledger.kinds import PENDING, SETTLED, WITHDRAWAL, WITHDRAWN
from app.ledger.models import LedgerEntry, LedgerSettledHistory

SETTLE_MARGIN = timedelta(days=2)  # far longer than any transaction stays open
SETTLED_STATES = (SETTLED, WITHDRAWN)


@dataclass(frozen=True)
class LedgerFigures:
    """A distributor's balances (as ``balances.balances``) and 收益 (as ``income.py``)."""

    pending_fen: int
    available_fen: int
    withdrawn_fen: int
    today_fen: int
    month_fen: int
    total_fen: int


def history_through(now: datetime) -> datetime:
    """Where the kept sums end: the start of the shop month containing ``now - 2 days``."""
    day = shop_today(now - SETTLE_MARGIN)
    return shop_day_start(day.replace(day=1))


def _settled_before(distributor_id: int, through: datetime) -> tuple[int, int]:
    """(available, 收益) of the entries settled before ``through``, summed from the ledger."""
    available, income = db.session.execute(
        select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0), income_sum()).where(
            LedgerEntry.distributor_id == distributor_id,
            LedgerEntry.state.in_(SETTLED_STATES),
            LedgerEntry.settled_at < through,
        )
    ).one()
    return int(available), int(income)


def settled_history(distributor_id: int, now: datetime | None = None) -> LedgerSettledHistory:
    """The kept sums through ``history_through(now)``: read, or computed and written (flushes;
    the caller commits, or they are computed again next time)."""
    through = history_through(now or utcnow())
    kept = db.session.get(LedgerSettledHistory, distributor_id)
    if kept is not None and kept.through_at == through:
        return kept
    available, income = _settled_before(distributor_id, through)
    values = {
        "distributor_id": distributor_id,
        "through_at": through,
        "available_fen": available,
        "income_fen": income,
        "computed_at": utcnow(),
    }
    upsert = dialect_insert(LedgerSettledHistory).values(**values)
    db.session.execute(
        upsert.on_conflict_do_update(
            index_elements=["distributor_id"],
            set_={k: v for k, v in values.items() if k != "distributor_id"},
        )
    )
    if kept is not None:
        db.session.refresh(kept)
        return kept
    return db.session.get(LedgerSettledHistory, distributor_id)


@dataclass(frozen=True)
class PendingGroup:
    """The distributor's pending entries with one ``settle_after`` (None: not dated yet)."""

    settle_after: datetime | None
    amount_fen: int
    count: int
    today_fen: int  # their 收益 written today, this month, in all
    month_fen: int
    income_fen: int


def pending_groups(distributor_id: int, now: datetime | None = None) -> list[PendingGroup]:
    """The pending entries grouped by ``settle_after``, with their sums and 收益 (one
    query: what the figures and the pending dates both need)."""
    today = shop_today(now or utcnow())
    rows = db.session.execute(
        select(
            LedgerEntry.settle_after,
            func.sum(LedgerEntry.amount_fen),
            func.count(),
            income_sum(shop_day_start(today)),
            income_sum(shop_day_start(today.replace(day=1))),
            income_sum(),
        )
        .where(LedgerEntry.distributor_id == distributor_id, LedgerEntry.state == PENDING)
        .group_by(LedgerEntry.settle_after)
    ).all()
    return [PendingGroup(at, *(int(v) for v in values)) for at, *values in rows]


def ledger_figures(
    distributor_id: int,
    now: datetime | None = None,
    pending: list[PendingGroup] | None = None,
) -> LedgerFigures:
    """Balances and 收益 (today, this month, in all, shop calendar): the kept history plus
    the pending and recently settled entries, read live (``pending``: ``pending_groups``
    already read for the same ``now``)."""
    now = now or utcnow()
    kept = settled_history(distributor_id, now)
    if pending is None:
        pending = pending_groups(distributor_id, now)
    today = shop_today(now)
    mine = LedgerEntry.distributor_id == distributor_id
    recent, r_today, r_month, r_total = db.session.execute(
        select(
            func.coalesce(func.sum(LedgerEntry.amount_fen), 0),
            income_sum(shop_day_start(today)),
            income_sum(shop_day_start(today.replace(day=1))),
            income_sum(),
        ).where(
            mine,
            LedgerEntry.settled_at >= kept.through_at,
            LedgerEntry.state.in_(SETTLED_STATES),
        )
    ).one()
    withdrawn = db.session.scalar(
        select(
            func.coalesce(
                func.sum(case((LedgerEntry.kind == WITHDRAWAL, -LedgerEntry.amount_fen), else_=0)),
                0,
            )
        ).where(and_(mine, LedgerEntry.state == WITHDRAWN))
    )
    return LedgerFigures(
        pending_fen=sum(g.amount_fen for g in pending),
        available_fen=kept.available_fen + int(recent),
        withdrawn_fen=int(withdrawn),
        today_fen=sum(g.today_fen for g in pending) + int(r_today),
        month_fen=sum(g.month_fen for g in pending) + int(r_month),
        total_fen=kept.income_fen + sum(g.income_fen for g in pending) + int(r_total),
    )
