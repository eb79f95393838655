"""Reward entries in the ledger (``task_reward``, ``invite_reward``): written once, reversed
once, settled by the incentives job. Services only flush.

A reward has no order line, so the (order_line_id, distributor_id, kind) key cannot guard
it. Its once-only key is ``ledger_entries.reward_key`` (unique): ``task:<task>:<distributor>``
(``...:<n>`` for a later attempt after a reversal, see app/incentives/tasks.py) and
``invite:<invitee distributor>``. Inserts are ``INSERT ... ON CONFLICT (reward_key) DO
NOTHING RETURNING id``, so a job run twice, or two workers at once, write it once.

Reversal before settlement follows the ledger's state table (app/distribution/ledger.py):
the reward moves ``pending -> reversed`` by a conditional UPDATE (whichever of reversal and
settlement comes first wins; the other changes nothing), and a ``reversal`` entry of the
opposite amount, itself ``reversed`` and keyed ``<reward_key>:rev``, records why. Both
count for nothing. A reward already settled is never taken back by these rules.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from app.core.sql import dialect_insert
from app.core.time import utcnow
from app.extensions import db
from app.ledger.kinds import PENDING, REVERSED, SETTLED
from app.ledger.models import LedgerEntry

TASK_REWARD = "task_reward"
INVITE_REWARD = "invite_reward"
REWARD_KINDS = (TASK_REWARD, INVITE_REWARD)


def write_reward(
    *,
    distributor_id: int,
    kind: str,
    amount_fen: int,
    reward_key: str,
    rule_source: str,
    note: str,
    order_id: int | None = None,
    now: datetime | None = None,
) -> int | None:
    """Insert a pending reward once per ``reward_key``; its id, or None if it existed."""
    return db.session.scalar(
        dialect_insert(LedgerEntry)
        .values(
            distributor_id=distributor_id,
            kind=kind,
            amount_fen=amount_fen,
            state=PENDING,
            order_id=order_id,
            reward_key=reward_key,
            rule_source=rule_source[:64],
            note=note[:200],
            created_at=now or utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["reward_key"])
        # RETURNING rather than rowcount: psycopg reports -1 for ORM-executed inserts.
        .returning(LedgerEntry.id)
    )


def reverse_reward(
    entry: LedgerEntry, why: str, refund_id: int | None = None, now: datetime | None = None
) -> int | None:
    """Take back a pending reward (flushes); the reversal entry's id, or None when the
    reward was not pending any more (settled, or reversed by a concurrent run)."""
    now = now or utcnow()
    moved = db.session.execute(
        update(LedgerEntry)
        .where(LedgerEntry.id == entry.id, LedgerEntry.state == PENDING)
        .values(state=REVERSED)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        return None
    return db.session.scalar(
        dialect_insert(LedgerEntry)
        .values(
            distributor_id=entry.distributor_id,
            kind="reversal",
            amount_fen=-entry.amount_fen,
            state=REVERSED,
            order_id=entry.order_id,
            refund_id=refund_id,
            reverses_id=entry.id,
            reward_key=f"{entry.reward_key}:rev"[:64],
            rule_source="奖励冲回",
            note=why[:200],
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["reward_key"])
        .returning(LedgerEntry.id)
    )


def settle_reward(entry_id: int, now: datetime | None = None) -> bool:
    """Move a pending reward to settled (flushes); False if it was not pending."""
    now = now or utcnow()
    moved = db.session.execute(
        update(LedgerEntry)
        .where(LedgerEntry.id == entry_id, LedgerEntry.state == PENDING)
        .values(state=SETTLED, settled_at=now)
        .execution_options(synchronize_session=False)
    )
    return moved.rowcount == 1


def pending_rewards(kind: str) -> list[LedgerEntry]:
    """Every pending reward of ``kind``, oldest first."""
    return list(
        db.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.kind == kind, LedgerEntry.state == PENDING)
            .order_by(LedgerEntry.id)
        )
    )
