"""Writing ledger entries: line earnings, their reversal on refund.

Services flush; the caller's edge (job, request, CLI) commits.

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
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from app.core.sql import dialect_insert, insert_rows_on_conflict, row_params
from app.core.time import utcnow
from app.extensions import db
from app.ledger.kinds import LINE_EARNING_KINDS, PENDING, REVERSAL, REVERSED, SETTLED, WITHDRAWN
from app.ledger.models import LedgerEntry
from app.orders.models import REFUND_REFUNDED, OrderLine, Refund

# What every caller of ``write_line_earnings`` gives for each entry (the rest stay NULL).
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


def write_line_earnings(line: OrderLine, values: list[dict], now: datetime) -> list[int]:
    """Insert a line's pending earnings (commissions, dividends or price differences) once,
    then reverse the share of any refund the line already had; the new entries' ids.

    The unique key (order line, beneficiary, kind) makes a repeat insert nothing; RETURNING
    rather than rowcount, which psycopg reports as -1 for ORM-executed inserts. The SQL is
    built once per number of rows (``insert_rows_on_conflict``): every paid order runs it.
    """
    statement = insert_rows_on_conflict(
        LedgerEntry.__table__,
        EARNING_COLUMNS,
        len(values),
        conflict=("order_line_id", "distributor_id", "kind"),
        returning=(LedgerEntry.__table__.c.id,),
    )
    written = db.session.scalars(statement, row_params(EARNING_COLUMNS, values)).all()
    if line.refunded_fen:
        for refund_id in db.session.scalars(
            select(Refund.id)
            .where(Refund.order_line_id == line.id, Refund.status == REFUND_REFUNDED)
            .order_by(Refund.id)
        ):
            _reverse_line(line, refund_id, now)
    return list(written)


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
        reversed_so_far = db.session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
                LedgerEntry.reverses_id == earning.id
            )
        )
        target = reversal_target(earning.amount_fen, remaining, line.amount_fen)
        delta = target - (earning.amount_fen + int(reversed_so_far))
        settled = earning.state in (SETTLED, WITHDRAWN)
        if delta < 0:
            written += db.session.scalars(
                dialect_insert(LedgerEntry)
                .values(
                    distributor_id=earning.distributor_id,
                    kind=REVERSAL,
                    amount_fen=delta,
                    state=SETTLED if settled else PENDING,
                    order_id=earning.order_id,
                    order_line_id=None,  # the (line, beneficiary, kind) key is the earning's
                    refund_id=refund_id,
                    reverses_id=earning.id,
                    rule_source="退款冲回",
                    note=f"退款后剩余实付 {remaining} 分：佣金 {earning.amount_fen} → {target} 分",
                    created_at=now,
                    settled_at=now if settled else None,
                )
                .on_conflict_do_nothing(index_elements=["reverses_id", "refund_id"])
                .returning(LedgerEntry.id)
            ).all()
        if target == 0 and not settled:
            # Refunded in full before settlement: the earning and its reversals lapse.
            db.session.execute(
                update(LedgerEntry)
                .where(
                    (LedgerEntry.id == earning.id) | (LedgerEntry.reverses_id == earning.id),
                    LedgerEntry.state == PENDING,
                )
                .values(state=REVERSED)
                .execution_options(synchronize_session=False)
            )
    return written


def reverse_for_refund(refund: Refund, now: datetime | None = None) -> list[int]:
    """Take back the refunded share of every line earning on the refund's line (flushes).

    Called by ``complete_refund`` in its transaction, after the line's ``refunded_fen``
    includes this refund. Returns the ids of the reversal entries written now (none when
    the earnings are not written yet: the job applies the refund then). Rewards that fall
    back with the refund are the incentives' business (``incentives.events.after_refund``),
    which the caller runs next.
    """
    # complete_refund holds this line's row lock already (its conditional UPDATE); locking
    # the order's other lines too could deadlock two refunds of one order.
    line = db.session.scalar(
        select(OrderLine)
        .where(OrderLine.id == refund.order_line_id)
        .execution_options(populate_existing=True)
    )
    written = _reverse_line(line, refund.id, now or utcnow())
    db.session.flush()
    return written
