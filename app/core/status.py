"""Status machinery shared by every area that has a state machine.

A transition is one conditional UPDATE (``WHERE status = <from>``), so two requests, a
notice and a timer, or two workers can never both move the same row: the loser sees zero
rows and gets ``InvalidTransition``. Every successful transition writes a ``StatusChange``
row. Each area keeps its own transition map (orders and refunds in app/orders/states.py,
withdrawals, agents, merchants and distributors in theirs) and moves rows through
``move_status``; nothing else assigns ``status``.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, insert, update

from app.core.models import StatusChange
from app.core.time import utcnow
from app.extensions import db


class InvalidTransition(Exception):
    """A status change the state machine refuses (or another actor got there first)."""

    def __init__(self, subject: str, current: str, wanted: str):
        super().__init__(f"{subject} cannot go from {current} to {wanted}")
        self.subject = subject
        self.current = current
        self.wanted = wanted


@lru_cache(maxsize=64)
def _transition_statement(model, names: tuple[str, ...]):
    """The conditional UPDATE of ``model`` setting status and ``names``, built once.

    Built with bound parameters and reused: constructing a statement with literal values
    and its cache key on every call cost more than running it (half of a pay notice's
    CPU time). Values are plain Python values, typed by their columns.
    """
    columns = model.__table__.c
    return (
        update(model)
        .where(model.id == bindparam("_id"), model.status == bindparam("_from"))
        .values(
            status=bindparam("_to", type_=columns.status.type),
            **{name: bindparam(f"_v_{name}", type_=columns[name].type) for name in names},
        )
        .returning(model)
        # RETURNING the row with populate_existing refreshes ``row`` (status, the values,
        # any onupdate column) from the UPDATE itself: no second SELECT.
        .execution_options(synchronize_session=False, populate_existing=True)
    )


_HISTORY_INSERT = insert(StatusChange.__table__)


def record_transition(
    subject: str,
    subject_id: int,
    from_status: str | None,
    to_status: str,
    actor: str,
    reason: str,
    at: datetime | None = None,
) -> None:
    """Write the history row of a transition that was just made (a plain table INSERT,
    built once: the row is never read back in the session that writes it)."""
    db.session.execute(
        _HISTORY_INSERT,
        {
            "subject": subject,
            "subject_id": subject_id,
            "from_status": from_status,
            "to_status": to_status,
            "actor": actor,
            "reason": reason[:200],
            "created_at": at or utcnow(),
        },
    )


def move_status(
    model, row, table_transitions, subject: str, to: str, actor: str, reason: str, **values: Any
) -> None:
    """Move ``row`` (any model with ``id`` and ``status``) along ``table_transitions``.

    One conditional UPDATE plus a ``StatusChange`` row; raises ``InvalidTransition`` when
    the move is not allowed or another actor moved the row first. Orders, refunds,
    withdrawals and distributors all use it. ``values`` are plain values (not SQL
    expressions) for columns set in the same UPDATE.
    """
    current = row.status
    if to not in table_transitions.get(current, ()):
        raise InvalidTransition(subject, current, to)
    names = tuple(sorted(values))
    params = {"_id": row.id, "_from": current, "_to": to}
    params.update({f"_v_{name}": values[name] for name in names})
    moved = db.session.execute(_transition_statement(model, names), params).scalar_one_or_none()
    if moved is None:
        db.session.refresh(row)
        raise InvalidTransition(subject, row.status, to)
    record_transition(subject, row.id, current, to, actor, reason)


def record_creation(subject: str, subject_id: int, status: str, actor: str, reason: str) -> None:
    """Write the first history row of a new order, refund, agent... (no "from" status)."""
    record_transition(subject, subject_id, None, status, actor, reason)
