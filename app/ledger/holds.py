"""Holds: a distributor's earnings on an order kept pending for review, never silently.

A hold (``LedgerHold``, table ``ledger_holds``) is keyed by (order, distributor): while it
is ``held``, settlement (``settlement.settle_due``) skips that distributor's pending
entries on the order, past their ``settle_after`` too, and the centre shows the
distributor ``HELD_NOTE`` instead of the settlement date. Who holds and why is not the
ledger's business (the risk checks in ``app/risk/`` call ``hold``); the ledger knows only
that the money waits. Staff end a hold once, by a conditional UPDATE from ``held``:

- ``release``: the entries settle on the next settlement run (if their date has passed);
- ``reject``: the entries are reversed through the one reversal rule
  (``entries.reverse_entry`` to 0: pending entries lapse, ``pending -> reversed``).

Every function flushes only; the edge commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, select, update

from app.core.sql import dialect_insert
from app.core.time import utcnow
from app.extensions import db
from app.ledger.entries import reverse_entry
from app.ledger.kinds import LINE_EARNING_KINDS, PENDING, REWARD_KINDS
from app.ledger.models import HOLD_HELD, HOLD_REJECTED, HOLD_RELEASED, LedgerEntry, LedgerHold

#: What the distributor reads on a held earning (plain words, no accusation).
HELD_NOTE = "订单待审核，预计 3 个工作日内处理"


def hold(order_id: int, distributor_id: int, reason: str, now: datetime | None = None) -> bool:
    """Hold ``distributor_id``'s earnings on ``order_id`` (flushes); True if held now,
    False if a hold of that pair existed (held, or decided already: never held twice)."""
    written = db.session.scalar(
        dialect_insert(LedgerHold)
        .values(
            order_id=order_id,
            distributor_id=distributor_id,
            state=HOLD_HELD,
            reason=reason[:200],
            created_at=now or utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["order_id", "distributor_id"])
        .returning(LedgerHold.id)
    )
    return written is not None


def not_held():
    """SQL on ``LedgerEntry``: no open hold covers the entry (settlement's condition)."""
    return ~exists().where(
        LedgerHold.order_id == LedgerEntry.order_id,
        LedgerHold.distributor_id == LedgerEntry.distributor_id,
        LedgerHold.state == HOLD_HELD,
    )


def held_pairs(order_ids, distributor_id: int | None = None) -> set[tuple[int, int]]:
    """{(order id, distributor id)} of the open holds among ``order_ids``."""
    ids = list(order_ids)
    if not ids:
        return set()
    query = select(LedgerHold.order_id, LedgerHold.distributor_id).where(
        LedgerHold.order_id.in_(ids), LedgerHold.state == HOLD_HELD
    )
    if distributor_id is not None:
        query = query.where(LedgerHold.distributor_id == distributor_id)
    return {(o, d) for o, d in db.session.execute(query)}


def is_held(order_id: int | None, distributor_id: int) -> bool:
    """Whether an open hold covers ``distributor_id``'s money on ``order_id``."""
    if order_id is None:
        return False
    return bool(held_pairs([order_id], distributor_id))


def held_entries(item: LedgerHold) -> list[LedgerEntry]:
    """The pending earnings a hold covers (line earnings and rewards on its order)."""
    return list(
        db.session.scalars(
            select(LedgerEntry)
            .where(
                LedgerEntry.order_id == item.order_id,
                LedgerEntry.distributor_id == item.distributor_id,
                LedgerEntry.kind.in_((*LINE_EARNING_KINDS, *REWARD_KINDS)),
                LedgerEntry.state == PENDING,
            )
            .order_by(LedgerEntry.id)
            .execution_options(populate_existing=True)
        )
    )


def _decide(hold_id: int, to_state: str, actor: str, note: str, now: datetime) -> bool:
    moved = db.session.scalar(
        update(LedgerHold)
        .where(and_(LedgerHold.id == hold_id, LedgerHold.state == HOLD_HELD))
        .values(state=to_state, decided_at=now, decided_by=actor[:64], decision_note=note[:200])
        .returning(LedgerHold.id)
        .execution_options(synchronize_session=False)
    )
    return moved is not None


def release(hold_id: int, actor: str, note: str = "", now: datetime | None = None) -> bool:
    """End a hold: the money settles as if never held (flushes). False if already decided."""
    return _decide(hold_id, HOLD_RELEASED, actor, note or "审核通过", now or utcnow())


def reject(hold_id: int, actor: str, note: str, now: datetime | None = None) -> list[int] | None:
    """End a hold by taking the money back (flushes): each pending entry it covers is
    reversed to 0 (``reverse_entry``). The ids of the entries reversed, or None if the hold
    was decided already (nothing changes)."""
    now = now or utcnow()
    if not _decide(hold_id, HOLD_REJECTED, actor, note, now):
        return None
    item = db.session.get(LedgerHold, hold_id, populate_existing=True)
    done = []
    for entry in held_entries(item):
        reverse_entry(
            entry,
            0,
            rule_source="风控审核驳回",
            note=note[:200],
            reason=f"风控审核驳回：{note}"[:200],
            reward_key=f"{entry.reward_key}:risk" if entry.reward_key else None,
            now=now,
        )
        done.append(entry.id)
    db.session.flush()
    return done
