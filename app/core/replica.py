"""Reads that may go to a read replica: the report pages and the CSV exports.

With ``DATABASE_REPLICA_URL`` set, config.py adds it as the SQLAlchemy bind ``replica``.
A view wrapped in ``reads_replica`` then runs its SELECT statements on the replica;
everything else (its writes, raw SQL, every other view, every job) stays on the primary.
Without the setting the wrapper changes nothing.

Why only these: a report or an export reads much and may read a few seconds late (a
replica's lag); nothing else may. A page that reads what it has just written (an order,
a payment, a balance) must read the primary, so the choice is made per view, never
globally. The staff check runs before the wrapper, on the primary.
"""

from __future__ import annotations

from functools import wraps

from flask import g, has_app_context
from flask_sqlalchemy.session import Session
from sqlalchemy.sql import Select

REPLICA_BIND = "replica"


def reads_replica(view):
    """Run ``view``'s SELECT statements on the replica (when one is configured)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        g.read_replica = True
        return view(*args, **kwargs)

    return wrapper


class RoutingSession(Session):
    """Flask-SQLAlchemy's session, sending the SELECTs of ``reads_replica`` views to the
    ``replica`` bind."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        replica = (
            bind is None
            and isinstance(clause, Select)
            and has_app_context()
            and g.get("read_replica")
        )
        if replica:
            engine = self._db.engines.get(REPLICA_BIND)
            if engine is not None:
                return engine
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)
