"""The audit log: who changed money, bindings, rules or agents, when, and what before/after.

Two doors:

- ``record(actor, action, subject, subject_id, before, after)`` adds one ``AuditLog`` row
  (flushes; the caller commits), for code that knows exactly what it changed.
- ``@audited(action, target)`` on an admin or Open API view (the edge), which is how staff
  actions are recorded. ``target`` reads the subject's state from the database: once before
  the view runs, and again when the view commits (a ``before_commit`` hook), so the row is
  written in the same transaction as the change and only when something changed. A view
  that refuses the input, fails or rolls back leaves no row. Only the keys that differ are
  kept in ``before`` and ``after``.

Values are made JSON-safe (timestamps as ISO text); money stays int fen. The services stay
unaware of the log: recording at the edge keeps one helper instead of a call in every
service, and the actor (``staff:N`` or ``api:N``) is known only there.

The targets naming a domain's rows (a product with its SKUs, a product's commission rules)
live with that domain (``app.catalog.audit_targets``, ``app.distribution.audit_targets``),
so this module imports no area above it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import wraps
from typing import Any

from flask import g, request
from flask_login import current_user
from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import Session

from app.core.models import AuditLog
from app.core.params import bounded_int
from app.extensions import db

PENDING_KEY = "audit_pending"
# Bookkeeping columns whose change says nothing about what staff did; an API token's
# hash is kept out too (the log is read by people who must not hold a way in).
SKIPPED_COLUMNS = frozenset({"updated_at", "token_hash"})


def json_safe(value: Any) -> Any:
    """``value`` as something JSON can hold: ISO text for times, str for the unknown."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return str(value)


def snapshot(obj: Any) -> dict[str, Any]:
    """The column values of a model instance (JSON-safe), or {} for None."""
    if obj is None:
        return {}
    mapper = inspect(obj).mapper
    return {
        attr.key: json_safe(getattr(obj, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in SKIPPED_COLUMNS
    }


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict, dict]:
    """Only the keys whose values differ, from each side (a missing key is absent)."""
    keys = [k for k in {**before, **after} if before.get(k, ...) != after.get(k, ...)]
    return (
        {k: before[k] for k in keys if k in before},
        {k: after[k] for k in keys if k in after},
    )


def record(
    actor: str,
    action: str,
    subject: str,
    subject_id: object,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> AuditLog:
    """Add one audit row (flushes, never commits)."""
    entry = AuditLog(
        actor=actor[:64],
        action=action[:64],
        subject=subject[:32],
        subject_id=str(subject_id if subject_id is not None else "")[:64],
        before=json_safe(dict(before or {})),
        after=json_safe(dict(after or {})),
    )
    db.session.add(entry)
    db.session.flush()
    return entry


# --- targets: how a view's subject is read ---------------------------------------------------


@dataclass(frozen=True)
class State:
    """What a target read: the subject, its id ("" for a collection) and its values."""

    subject: str
    subject_id: str
    values: dict[str, Any]


Target = Callable[..., State]


def row(model: type, key: str, subject: str | None = None, extra: Callable | None = None) -> Target:
    """A target reading one row of ``model`` whose id is the view argument ``key``.

    ``extra(obj)`` may add more keys (e.g. a product's SKUs).
    """
    name = subject or model.__tablename__.rstrip("s")

    def read(**kwargs: Any) -> State:
        ident = kwargs.get(key)
        obj = db.session.get(model, ident) if ident is not None else None
        values = snapshot(obj)
        if obj is not None and extra is not None:
            values.update(extra(obj))
        return State(name, str(ident or ""), values)

    return read


def rows(model: type, subject: str, where: Callable[..., Any] | None = None) -> Target:
    """A target reading a set of rows keyed by id (e.g. all grades, a product's rules).

    A change to one row shows as that key alone; the subject id is the row's id when
    exactly one row changed (a creation or a deletion).
    """

    def read(**kwargs: Any) -> State:
        query = select(model).order_by(model.id)
        if where is not None:
            query = query.where(where(**kwargs))
        values = {str(obj.id): snapshot(obj) for obj in db.session.scalars(query)}
        return State(subject, "", values)

    return read


def created(model: type, subject: str | None = None, extra: Callable | None = None) -> Target:
    """A target for a view that creates one row of ``model`` (no id in the URL yet).

    The first read (before the view) notes the highest id and shows nothing; the second
    (at the commit) shows the rows of ``model`` above it that this session itself holds,
    so a row created at the same moment by another request is never taken for ours.
    ``before`` is then empty and ``after`` the new row (with ``extra(obj)``).
    """
    name = subject or model.__tablename__.rstrip("s")
    floor_key = f"audit_created_floor_{model.__tablename__}"

    def read(**_: Any) -> State:
        floor = g.get(floor_key)
        if floor is None:
            highest = db.session.scalar(select(func.max(model.id)))
            setattr(g, floor_key, highest or 0)
            return State(name, "", {})
        mine = sorted(
            (obj for obj in list(db.session.identity_map.values()) if isinstance(obj, model)),
            key=lambda obj: obj.id,
        )
        new = [obj for obj in mine if obj.id is not None and obj.id > floor]
        if len(new) != 1:
            return State(name, "", {str(obj.id): snapshot(obj) for obj in new})
        values = snapshot(new[0])
        if extra is not None:
            values.update(extra(new[0]))
        return State(name, str(new[0].id), values)

    return read


def single(model: type, subject: str) -> Target:
    """A target reading a settings table (its rows keyed by id; usually one)."""
    return rows(model, subject)


def combined(*targets: Target, subject: str) -> Target:
    """Several targets as one subject, each prefixed by its own subject name."""

    def read(**kwargs: Any) -> State:
        values: dict[str, Any] = {}
        ident = ""
        for target in targets:
            state = target(**kwargs)
            ident = ident or state.subject_id
            values.update({f"{state.subject}.{k}": v for k, v in state.values.items()})
        return State(subject, ident, values)

    return read


# --- the edge decorator -----------------------------------------------------------------------


def edge_actor() -> str:
    """Who is acting in this request: ``api:N`` (Open API token) or ``staff:N``."""
    token = g.get("api_token")
    if token is not None:
        return f"api:{token.id}"
    return current_user.get_id() or "anonymous"


@dataclass
class _Pending:
    actor: str
    action: str
    target: Target
    kwargs: dict[str, Any]
    before: State


MAX_DB_INT = 2**31 - 1  # the largest id an INTEGER primary key can hold


def audited(action: str, target: Target) -> Callable:
    """Record ``action`` on ``target`` when the decorated view commits a change.

    Put it under the route and role decorators (and above ``spec.validate`` in the API),
    so refused requests never reach it.
    """

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            if any(isinstance(v, int) and not 0 <= v <= MAX_DB_INT for v in kwargs.values()):
                # An id no row can have: the view answers 404 and changes nothing, and
                # reading the "before" state would overflow PostgreSQL's integer.
                return view(*args, **kwargs)
            session = db.session()
            pending = _Pending(edge_actor(), action, target, dict(kwargs), target(**kwargs))
            session.info.setdefault(PENDING_KEY, []).append(pending)
            try:
                return view(*args, **kwargs)
            finally:
                stack = db.session().info.get(PENDING_KEY, [])
                if pending in stack:
                    stack.remove(pending)

        return wrapper

    return decorate


def _write_pending(session: Session) -> None:
    """Add a row for each pending action whose subject changed (runs before the commit)."""
    stack: list[_Pending] = session.info.get(PENDING_KEY) or []
    while stack:
        pending = stack.pop(0)
        after = pending.target(**pending.kwargs)
        before_values, after_values = diff(pending.before.values, after.values)
        if not before_values and not after_values:
            continue
        ident = after.subject_id or pending.before.subject_id
        if not ident:
            changed = {*before_values, *after_values}
            if len(changed) == 1:
                ident = next(iter(changed)).rpartition(".")[2]
        session.add(
            AuditLog(
                actor=pending.actor[:64],
                action=pending.action[:64],
                subject=after.subject[:32],
                subject_id=ident[:64],
                before=before_values,
                after=after_values,
            )
        )


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # Only sessions with a decorated view in flight carry the key; others pay a dict lookup.
    if session.info.get(PENDING_KEY):
        _write_pending(session)


def form_int(name: str) -> int | None:
    """The posted form field ``name`` as an id, or None (for targets named by the form)."""
    return bounded_int(request.form.get(name))
