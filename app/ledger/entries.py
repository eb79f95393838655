"""Writing ledger entries and moving their states: line earnings, rewards, reversals,
and the one transition map every state change of an entry goes through.

Services flush; the caller's edge (job, request, CLI) commits.

States. An entry is written in its first state (an earning or a reward ``pending``; a
withdrawal, a reversal after settlement or the return of a withdrawal ``settled``; the
reversal of a lapsed earning ``reversed``) and then moves only along ``TRANSITIONS``::

    pending -> settled      settlement (app/ledger/settlement.py), rewards' settlement
    pending -> reversed     refunded in full (or a reward's target lost) before settlement
    settled -> withdrawn    the withdrawal it belongs to was paid out

``move_entries`` is the only door: one conditional UPDATE (``WHERE state = from``) for a
whole set of entries and one INSERT of their history rows (``LedgerEntryChange``), so a
batch of thousands costs two statements, and a move the map does not allow raises
``InvalidTransition`` before touching anything.

Line earnings (commission levels, region dividends, price differences) are inserted with
``INSERT ... ON CONFLICT DO NOTHING`` on the unique (order_line_id, distributor_id, kind)
key, so a job run twice, or two workers at once, write each earning exactly once.
Refunds that completed before the earnings were written are applied right after writing
them, by the same reversal code as a refund that completes later, so the result never
depends on which came first.

Reversal rule (partial refunds), for an earning ``E`` of ``original`` fen on a line that
cost ``line.amount_fen`` and of which ``remaining = line.amount_fen - line.refunded_fen``
is still paid::

    target   = floor(original × remaining / line.amount_fen)     (integer arithmetic)
    reversal = target − (original + Σ earlier reversals of E)     (≤ 0, written if < 0)

So after any sequence of refunds the earning nets to ``target``, rounded down like every
commission: the merchant keeps the odd fen. A reversal is ``pending`` while ``E`` is
pending (it settles with it) and ``settled`` when ``E`` has settled already (a refund after
settlement: a negative entry against the available balance, which may go below zero). When
the line is refunded in full before settlement (``target == 0``), ``E`` and its reversals
are marked ``reversed`` and count for nothing. Reversals are unique per
(reverses_id, refund_id).

Rewards (``task_reward``, ``invite_reward``) follow the same rule with a target of 0:
they have no order line, so their once-only key is ``reward_key`` (unique):
``task:<task>:<distributor>`` (``...:<n>`` for a later attempt after a reversal) and
``invite:<invitee distributor>``; their reversal is keyed ``<reward_key>:rev``. A reward
already settled is never taken back (``after_settlement=False``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, func, insert, literal, select, update

from app.core.sql import dialect_insert, insert_rows_chunked
from app.core.time import UtcDateTime, utcnow
from app.extensions import db
from app.ledger.kinds import LINE_EARNING_KINDS, PENDING, REVERSAL, REVERSED, SETTLED, WITHDRAWN
from app.ledger.models import LedgerEntry, LedgerEntryChange
from app.orders.models import REFUND_REFUNDED, OrderLine, Refund

# What every caller of ``write_earnings`` gives for each entry (the rest stay NULL).
EARNING_COLUMNS = (
    "distributor_id",
    "kind",
    "amount_fen",
    "state",
    "order_id",
    "order_line_id",
    "rule_source",
    "note",
    "created_at",
)


def reversal_target(original_fen: int, remaining_fen: int, line_amount_fen: int) -> int:
    """What an earning is worth once part of its line is refunded (rounded down)."""
    if line_amount_fen <= 0 or remaining_fen <= 0:
        return 0
    return original_fen * min(remaining_fen, line_amount_fen) // line_amount_fen


def write_earnings(lines: list[OrderLine], values: list[dict], now: datetime) -> list[int]:
    """Insert the pending earnings (commissions, dividends or price differences) of
    several lines once, in one INSERT (the rows in the order given), then reverse the
    share of any refund a line already had; the new entries' ids.

    The unique key (order line, beneficiary, kind) makes a repeat insert nothing; RETURNING
    rather than rowcount, which psycopg reports as -1 for ORM-executed inserts. The SQL is
    built once per number of rows (``insert_rows_chunked``): every paid order runs it.
    """
    return [entry_id for entry_id, _order, _kind in write_earnings_keyed(lines, values, now)]


def write_earnings_keyed(
    lines: list[OrderLine], values: list[dict], now: datetime
) -> list[tuple[int, int, str]]:
    """``write_earnings`` for any number of rows (of one order or a batch of orders: one
    INSERT per ``ROWS_PER_INSERT`` rows, ``insert_rows_chunked``, in the order given);
    (id, order id, kind) of each entry written now."""
    if not values:
        return []
    table = LedgerEntry.__table__
    written = insert_rows_chunked(
        table,
        EARNING_COLUMNS,
        values,
        conflict=("order_line_id", "distributor_id", "kind"),
        returning=(table.c.id, table.c.order_id, table.c.kind),
    )
    touched = {row["order_line_id"] for row in values}
    for line in lines:
        if line.id in touched and line.refunded_fen:
            for refund_id in db.session.scalars(
                select(Refund.id)
                .where(Refund.order_line_id == line.id, Refund.status == REFUND_REFUNDED)
                .order_by(Refund.id)
            ):
                _reverse_line(line, refund_id, now)
    return written


def _reverse_line(line: OrderLine, refund_id: int, now: datetime) -> list[int]:
    """Bring every earning on ``line`` down to its target after ``refund_id``."""
    remaining = line.amount_fen - line.refunded_fen
    earnings = db.session.scalars(
        select(LedgerEntry)
        .where(
            LedgerEntry.order_line_id == line.id,
            LedgerEntry.kind.in_(LINE_EARNING_KINDS),
            LedgerEntry.state != REVERSED,
        )
        .order_by(LedgerEntry.id)
        .execution_options(populate_existing=True)
    ).all()
    written: list[int] = []
    for earning in earnings:
        target = reversal_target(earning.amount_fen, remaining, line.amount_fen)
        done = reverse_entry(
            earning,
            target,
            refund_id=refund_id,
            rule_source="退款冲回",
            note=f"退款后剩余实付 {remaining} 分：佣金 {earning.amount_fen} → {target} 分",
            reason="订单行已全额退款",
            now=now,
        )
        if done is not None:
            written.append(done)
    return written


def reverse_entry(
    entry: LedgerEntry,
    target_fen: int,
    *,
    rule_source: str,
    note: str,
    reason: str,
    refund_id: int | None = None,
    reward_key: str | None = None,
    after_settlement: bool = True,
    now: datetime | None = None,
) -> int | None:
    """Bring ``entry`` down to ``target_fen``: the one reversal rule (flushes).

    The reversal written is ``target − (amount + Σ earlier reversals)`` (nothing when that
    is not below 0). Before settlement it is ``pending`` and settles with the entry; when
    the target is 0 the entry and its reversals lapse instead (``pending -> reversed``,
    the new reversal born ``reversed``): they count for nothing. After settlement it is a
    ``settled`` negative entry against the available balance, unless
    ``after_settlement`` is False (rewards: a settled reward is never taken back). Returns
    the reversal's id, or None when nothing was written (already written: the unique keys
    (reverses_id, refund_id) and ``reward_key`` make a repeat nothing).
    """
    now = now or utcnow()
    state = entry.state
    if state == PENDING and target_fen == 0:
        moved = move_entries(
            [(LedgerEntry.id == entry.id) | (LedgerEntry.reverses_id == entry.id)],
            PENDING,
            REVERSED,
            reason,
            now=now,
        )
        # Settled meanwhile (a concurrent settlement run committed first): read it again.
        state = REVERSED if entry.id in moved else _state_of(entry.id)
        if state == REVERSED and entry.id not in moved:
            return None  # lapsed by a concurrent run already
    if state == REVERSED and target_fen != 0:
        return None
    if state in (SETTLED, WITHDRAWN) and not after_settlement:
        return None
    reversed_so_far = db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
            LedgerEntry.reverses_id == entry.id
        )
    )
    delta = target_fen - (entry.amount_fen + int(reversed_so_far))
    if delta >= 0:
        return None
    settled = state in (SETTLED, WITHDRAWN)
    return db.session.scalar(
        dialect_insert(LedgerEntry)
        .values(
            distributor_id=entry.distributor_id,
            kind=REVERSAL,
            amount_fen=delta,
            state=SETTLED if settled else state,
            order_id=entry.order_id,
            order_line_id=None,  # the (line, beneficiary, kind) key is the earning's
            refund_id=refund_id,
            reverses_id=entry.id,
            reward_key=reward_key[:64] if reward_key else None,
            rule_source=rule_source[:64],
            note=note[:200],
            created_at=now,
            settle_after=None if settled else entry.settle_after,
            settled_at=now if settled else None,
        )
        # Whichever once-only key applies: (reverses_id, refund_id) or reward_key.
        .on_conflict_do_nothing()
        # RETURNING rather than rowcount: psycopg reports -1 for ORM-executed inserts.
        .returning(LedgerEntry.id)
    )


def _state_of(entry_id: int) -> str:
    return db.session.scalar(select(LedgerEntry.state).where(LedgerEntry.id == entry_id))


def reverse_for_refund(refund: Refund, now: datetime | None = None) -> list[int]:
    """Take back the refunded share of every line earning on the refund's line (flushes).

    Called by ``complete_refund`` in its transaction, after the line's ``refunded_fen``
    includes this refund. Returns the ids of the reversal entries written now (none when
    the earnings are not written yet: the job applies the refund then). Rewards that fall
    back with the refund are the incentives' business (``incentives.events.after_refund``),
    which the caller runs next.
    """
    # book_refund holds this line's row lock already (its conditional UPDATE); locking
    # the order's other lines too could deadlock two refunds of one order.
    line = db.session.scalar(
        select(OrderLine)
        .where(OrderLine.id == refund.order_line_id)
        .execution_options(populate_existing=True)
    )
    written = _reverse_line(line, refund.id, now or utcnow())
    db.session.flush()
    return written


# --- rewards ------------------------------------------------------------------------------------


def write_reward(
    *,
    distributor_id: int,
    kind: str,
    amount_fen: int,
    reward_key: str,
    rule_source: str,
    note: str,
    order_id: int | None = None,
    task_id: int | None = None,
    settle_after: datetime | None = None,
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
            task_id=task_id,
            reward_key=reward_key,
            rule_source=rule_source[:64],
            note=note[:200],
            settle_after=settle_after,
            created_at=now or utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["reward_key"])
        # RETURNING rather than rowcount: psycopg reports -1 for ORM-executed inserts.
        .returning(LedgerEntry.id)
    )


def reverse_reward(
    entry: LedgerEntry, why: str, refund_id: int | None = None, now: datetime | None = None
) -> int | None:
    """Take back a pending reward (flushes): ``reverse_entry`` to 0, never after settlement.

    The reversal entry's id, or None when the reward was not pending any more (settled,
    or reversed by a concurrent run).
    """
    return reverse_entry(
        entry,
        0,
        rule_source="奖励冲回",
        note=why,
        reason=why,
        refund_id=refund_id,
        reward_key=f"{entry.reward_key}:rev",
        after_settlement=False,
        now=now,
    )


def settle_reward(entry_id: int, now: datetime | None = None) -> bool:
    """Move a pending reward to settled (flushes); False if it was not pending."""
    return bool(move_entries([LedgerEntry.id == entry_id], PENDING, SETTLED, "奖励结算", now=now))


# --- the transition map ------------------------------------------------------------------------

#: Which state may follow which (see the module docstring); nothing else moves.
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({SETTLED, REVERSED}),
    SETTLED: frozenset({WITHDRAWN}),
    WITHDRAWN: frozenset(),
    REVERSED: frozenset(),
}


class InvalidTransition(Exception):
    """A state change of ledger entries the transition map refuses."""

    def __init__(self, current: str, wanted: str):
        super().__init__(f"ledger entry cannot go from {current} to {wanted}")
        self.subject = "ledger_entry"
        self.current = current
        self.wanted = wanted


_ledger = LedgerEntry.__table__
_changes = LedgerEntryChange.__table__
_CHANGE_COLUMNS = ("entry_id", "from_state", "to_state", "reason", "at")


def move_entries(
    criteria: Iterable[ColumnElement[bool]],
    from_state: str,
    to_state: str,
    reason: str,
    *,
    now: datetime | None = None,
) -> list[int]:
    """Move every entry matching ``criteria`` that is in ``from_state`` to ``to_state``,
    with one history row each; the ids moved (flushes nothing: plain SQL).

    One conditional UPDATE, so a concurrent mover of the same rows wins or loses whole,
    and the history rows in the same statement on PostgreSQL (``WITH moved AS (UPDATE ...
    RETURNING id) INSERT ... SELECT``) or right after it on SQLite. Settling stamps
    ``settled_at``. Raises ``InvalidTransition`` for a move ``TRANSITIONS`` does not allow.
    """
    if to_state not in TRANSITIONS.get(from_state, ()):
        raise InvalidTransition(from_state, to_state)
    now = now or utcnow()
    values: dict = {"state": to_state}
    if to_state == SETTLED:
        values["settled_at"] = now
    moving = (
        update(_ledger)
        .where(*criteria, _ledger.c.state == from_state)
        .values(**values)
        .returning(_ledger.c.id)
    )
    if db.engine.dialect.name == "postgresql":
        moved = moving.cte("moved")
        statement = (
            insert(_changes)
            .from_select(
                _CHANGE_COLUMNS,
                select(
                    moved.c.id,
                    literal(from_state),
                    literal(to_state),
                    literal(reason[:200]),
                    literal(now, UtcDateTime()),
                ),
            )
            .returning(_changes.c.entry_id)
        )
        return list(db.session.scalars(statement))
    ids = list(db.session.scalars(moving))
    if ids:
        db.session.execute(
            insert(_changes),
            [
                {
                    "entry_id": entry_id,
                    "from_state": from_state,
                    "to_state": to_state,
                    "reason": reason[:200],
                    "at": now,
                }
                for entry_id in ids
            ],
        )
    return ids
