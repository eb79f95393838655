"""Ledger tables: the entries (one money change each) and the history of their states.

The ledger is append-only in its amounts: an entry's amount never changes; its ``state``
moves along ``app.ledger.entries.TRANSITIONS`` (pending -> settled -> withdrawn, or
pending -> reversed), each move leaving a ``LedgerEntryChange`` row, and a correction is a
new entry.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import UtcDateTime, utcnow
from app.extensions import db
from app.ledger.kinds import LEDGER_KINDS, LEDGER_STATES, PENDING


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class LedgerEntry(db.Model):
    """One money change for a beneficiary. Amount never changes; state moves forward.

    The unique key (order_line_id, distributor_id, kind) is what makes a commission
    impossible to pay twice, whatever retries. Reversals point at what they reverse and
    are unique per (reverses_id, refund_id).
    """

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("order_line_id", "distributor_id", "kind"),
        UniqueConstraint("reverses_id", "refund_id"),
        CheckConstraint(_one_of("kind", LEDGER_KINDS), name="kind_known"),
        CheckConstraint(_one_of("state", LEDGER_STATES), name="state_known"),
        Index("ix_ledger_entries_due", "state", "settle_after"),
        # One distributor's balances, 收益 and pending dates (distribution/summary.py):
        # INCLUDE makes them index-only scans on PostgreSQL (bench/centre.py).
        Index(
            "ix_ledger_entries_distributor_state",
            "distributor_id",
            "state",
            postgresql_include=[
                "kind",
                "amount_fen",
                "created_at",
                "withdrawal_id",
                "settle_after",
            ],
        ),
        # What settled lately, summed live next to the kept history (history.py).
        Index(
            "ix_ledger_entries_distributor_settled_at",
            "distributor_id",
            "settled_at",
            postgresql_include=["state", "kind", "amount_fen", "created_at", "withdrawal_id"],
        ),
        # Settlement batches walk the pending entries by order (commissions.settle_due):
        # settled rows leave this partial index, so later batches do not re-read them.
        Index(
            "ix_ledger_entries_pending_order",
            "order_id",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
        # Reports sum a date range of entries by kind and state; INCLUDE makes it an
        # index-only scan on PostgreSQL (bench/reports.py).
        Index(
            "ix_ledger_entries_created_at",
            "created_at",
            postgresql_include=["kind", "state", "amount_fen", "reverses_id"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributors.id"))
    kind: Mapped[str] = mapped_column(String(20))
    amount_fen: Mapped[int]  # positive earns, negative takes back or pays out
    state: Mapped[str] = mapped_column(String(12), default=PENDING)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id"))
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id"))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    withdrawal_id: Mapped[int | None] = mapped_column(ForeignKey("withdrawals.id"), index=True)
    # Once-only key for earnings without an order line: "task:<task>:<distributor>",
    # "invite:<invitee distributor>". NULL for everything else (NULLs never clash).
    reward_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The task a ``task_reward`` pays for (NULL for every other kind).
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), index=True)
    rule_source: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(String(200), default="")
    # When the entry may settle at the earliest: its order's ``completed_at`` plus the
    # settlement hold. Written on the order's pending entries when it completes
    # (``settlement.schedule_order``), rewritten for every completed order's pending
    # entries when the hold days change, copied to a pending reversal from its earning and
    # set on an invite reward written after its purchase completed. NULL while the order
    # is not completed, and for entries without an order (task rewards, withdrawals).
    # Informational: settlement itself applies ``settlement_eligible`` (an open refund
    # still holds the entry back past this date).
    settle_after: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class LedgerEntryChange(db.Model):
    """One state change of a ledger entry (``entries.move_entries`` writes it)."""

    __tablename__ = "ledger_entry_changes"
    __table_args__ = (
        CheckConstraint(_one_of("from_state", LEDGER_STATES), name="from_state_known"),
        CheckConstraint(_one_of("to_state", LEDGER_STATES), name="to_state_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_entries.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class LedgerSettledHistory(db.Model):
    """What a distributor's entries settled before ``through_at`` add up to (``history.py``).

    Kept so a ledger of a million entries need not be summed on every page: an entry's
    share of the available balance and of 收益 is fixed once it has settled (``settled_at``
    is written once, and a settled entry only ever moves on to ``withdrawn``, which counts
    the same), so these sums never change once no open transaction can still settle an
    entry before ``through_at``. Recomputed from the entries when ``through_at`` moves on.
    """

    __tablename__ = "ledger_settled_history"

    distributor_id: Mapped[int] = mapped_column(
        ForeignKey("distributors.id", ondelete="CASCADE"), primary_key=True
    )
    through_at: Mapped[datetime] = mapped_column(UtcDateTime())
    available_fen: Mapped[int] = mapped_column(BigInteger)
    income_fen: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


HOLD_HELD = "held"
HOLD_RELEASED = "released"
HOLD_REJECTED = "rejected"
HOLD_STATES = (HOLD_HELD, HOLD_RELEASED, HOLD_REJECTED)


class LedgerHold(db.Model):
    """A distributor's earnings on one order held back for review (``ledger/holds.py``).

    While ``state`` is ``held`` settlement skips the (order, distributor) pending entries,
    whatever their ``settle_after``; staff release it (the entries settle on the next run)
    or reject it (the entries are reversed). One hold per (order, distributor): a rerun of
    the check holds once. ``reason`` is for staff; the distributor sees a plain note.
    """

    __tablename__ = "ledger_holds"
    __table_args__ = (
        UniqueConstraint("order_id", "distributor_id"),
        CheckConstraint(_one_of("state", HOLD_STATES), name="hold_state_known"),
        Index("ix_ledger_holds_state", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    distributor_id: Mapped[int] = mapped_column(ForeignKey("distributors.id"), index=True)
    state: Mapped[str] = mapped_column(String(12), default=HOLD_HELD)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[str] = mapped_column(String(64), default="")
    decision_note: Mapped[str] = mapped_column(String(200), default="")
