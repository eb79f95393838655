"""Customer binding: which distributor a customer belongs to, under the shop's rules.

- A ref (link ``?ref=CODE``, a poster or a parametric QR scan) binds on the first visit,
  or, in bind-on-first-payment mode, is remembered and binds when the first order is paid.
- First touch wins while the binding is protected; with protection 0 the latest ref wins.
- After the validity ends the binding lapses and a new ref can bind.
- Nobody binds to themself, and a distributor never binds to one of their own descendants.

Every bind, rebind, lapse and extension is written to ``binding_events``. Concurrent
first visits are settled by the unique key on ``bindings.user_id``; takeovers by a
conditional UPDATE on the previous distributor.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value

from app.core.sql import dialect_insert, insert_on_conflict
from app.core.time import utcnow
from app.distribution.distributors import (
    distributor_for_user,
    get_distribution_settings,
    is_descendant,
)
from app.distribution.models import Binding, BindingEvent, Distributor, RefTouch
from app.extensions import db
from app.signals import member_bound

SOURCES = ("link", "qr", "staff")


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if moment is not None and moment.tzinfo is None:
        from datetime import UTC

        return moment.replace(tzinfo=UTC)
    return moment


_BINDING_OF_USER = select(Binding).where(Binding.user_id == bindparam("user_id"))


def current_binding(user_id: int, now: datetime | None = None) -> Binding | None:
    """The customer's binding if it has not lapsed."""
    now = now or utcnow()
    binding = db.session.scalar(_BINDING_OF_USER, {"user_id": user_id})
    if binding is None:
        return None
    expires = _aware(binding.expires_at)
    if expires is not None and expires <= now:
        return None
    return binding


def may_bind(user_id: int, distributor: Distributor) -> bool:
    """Self-binding and binding a distributor under their own descendant are refused."""
    if distributor.status != "active" or distributor.user_id == user_id:
        return False
    own = distributor_for_user(user_id)
    return not (own is not None and is_descendant(distributor.id, own.id))


def _windows(now: datetime) -> tuple[datetime | None, datetime | None]:
    settings = get_distribution_settings()
    expires = now + timedelta(days=settings.binding_days) if settings.binding_days else None
    protected = now + timedelta(days=settings.protection_days) if settings.protection_days else None
    return expires, protected


# Built once with bound parameters: a QR follow binds inside WeChat's 5 s push window.
_EVENT_INSERT = insert(BindingEvent.__table__)
_FIRST_BINDING = select(Binding).from_statement(
    insert_on_conflict(
        Binding.__table__,
        ("user_id", "distributor_id", "source", "bound_at", "expires_at", "protected_until"),
        conflict=("user_id",),
        returning=tuple(Binding.__table__.columns),
    )
)


def _event(user_id, distributor_id, previous_id, action, source, actor) -> None:
    db.session.execute(
        _EVENT_INSERT,
        {
            "user_id": user_id,
            "distributor_id": distributor_id,
            "previous_distributor_id": previous_id,
            "action": action,
            "source": source,
            "actor": actor,
        },
    )
    if action in ("bind", "rebind") and distributor_id is not None:
        # Listeners (the WeChat notice) write in this transaction; sent after the commit.
        member_bound.send(__name__, user_id=user_id, distributor_id=distributor_id, source=source)


def bind(
    user_id: int,
    distributor: Distributor,
    source: str,
    *,
    now: datetime | None = None,
    actor: str = "",
    force: bool = False,
) -> Binding | None:
    """Bind a customer to ``distributor`` if the rules allow; return the binding in force.

    ``force`` (staff rebinding by hand) ignores the protection period but never the
    self/cycle rules. Returns None when the customer stays unbound.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown binding source {source!r}")
    now = now or utcnow()
    if not may_bind(user_id, distributor):
        return current_binding(user_id, now)
    expires, protected = _windows(now)
    existing = db.session.scalar(_BINDING_OF_USER, {"user_id": user_id})
    if existing is None:
        # RETURNING the whole row (an ORM object) rather than rowcount, which psycopg does
        # not report reliably here, and rather than re-reading the row we just wrote.
        inserted = db.session.scalar(
            _FIRST_BINDING,
            {
                "user_id": user_id,
                "distributor_id": distributor.id,
                "source": source,
                "bound_at": now,
                "expires_at": expires,
                "protected_until": protected,
            },
        )
        if inserted is not None:
            _event(user_id, distributor.id, None, "bind", source, actor)
            return inserted
        # A concurrent first touch inserted first: it holds the binding.
        return db.session.scalar(
            select(Binding)
            .where(Binding.user_id == user_id)
            .execution_options(populate_existing=True)
        )

    lapsed = _aware(existing.expires_at) is not None and _aware(existing.expires_at) <= now
    if existing.distributor_id == distributor.id and not lapsed:
        return existing
    protected_now = _aware(existing.protected_until) is not None and (
        _aware(existing.protected_until) > now
    )
    if protected_now and not lapsed and not force:
        return existing
    previous_id = existing.distributor_id
    moved = db.session.execute(
        update(Binding)
        .where(Binding.id == existing.id, Binding.distributor_id == previous_id)
        .values(
            distributor_id=distributor.id,
            source=source,
            bound_at=now,
            expires_at=expires,
            protected_until=protected,
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount == 1:
        if lapsed:
            _event(user_id, None, previous_id, "lapse", source, actor)
        _event(user_id, distributor.id, previous_id, "rebind", source, actor)
        db.session.flush()
    db.session.refresh(existing)
    return existing


def record_ref(
    user_id: int, distributor: Distributor, source: str, now: datetime | None = None
) -> Binding | None:
    """A customer arrived through ``distributor``'s link, poster or QR code."""
    now = now or utcnow()
    settings = get_distribution_settings()
    if not settings.enabled:
        return None
    if settings.bind_mode == "first_visit":
        return bind(user_id, distributor, source, now=now)
    if may_bind(user_id, distributor):
        db.session.execute(
            dialect_insert(RefTouch)
            .values(user_id=user_id, distributor_id=distributor.id, source=source, seen_at=now)
            .on_conflict_do_update(
                index_elements=["user_id"],
                set_={"distributor_id": distributor.id, "source": source, "seen_at": now},
            )
        )
        db.session.flush()
    return current_binding(user_id, now)


def on_first_payment(user_id: int, now: datetime | None = None) -> Binding | None:
    """Bind-on-first-payment: bind the last ref the customer arrived with."""
    now = now or utcnow()
    settings = get_distribution_settings()
    if settings.bind_mode != "first_payment":
        return current_binding(user_id, now)
    touch = db.session.get(RefTouch, user_id)
    if touch is None:
        return current_binding(user_id, now)
    distributor = db.session.get(Distributor, touch.distributor_id)
    return bind(user_id, distributor, touch.source, now=now)


_bindings = Binding.__table__
# Compare-and-set: two commission jobs of one customer's orders each add their days.
_EXTEND = (
    update(_bindings)
    .where(
        _bindings.c.id == bindparam("binding_id"),
        _bindings.c.protected_until.is_not_distinct_from(
            bindparam("was", type_=_bindings.c.protected_until.type)
        ),
    )
    .values(protected_until=bindparam("until"))
)


def extend_protection(user_id: int, now: datetime | None = None) -> None:
    """A paid order extends the customer's protection period by the set number of days,
    from the end of the current protection (or from now, if it has run out)."""
    now = now or utcnow()
    days = get_distribution_settings().protection_extend_days
    if not days:
        return
    while True:
        binding = current_binding(user_id, now)
        if binding is None:
            return
        was = binding.protected_until
        until = max(_aware(was) or now, now) + timedelta(days=days)
        moved = db.session.execute(_EXTEND, {"binding_id": binding.id, "was": was, "until": until})
        if moved.rowcount == 1:
            set_committed_value(binding, "protected_until", until)
            _event(
                user_id,
                binding.distributor_id,
                binding.distributor_id,
                "extend",
                binding.source,
                "",
            )
            return
        db.session.expire(binding)  # another job extended it first: add to theirs
