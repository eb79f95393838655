"""SQL helpers the areas share: the dialect's INSERT, and statements built once.

PostgreSQL (production) and SQLite (development, tests) both support
``INSERT ... ON CONFLICT``, through their own dialect's ``insert``. Once-only writes use it
with ``RETURNING`` (never ``rowcount``: psycopg reports -1 for ORM-executed inserts).

On the hottest paths (a pay notice, a WeChat push) building a statement with literal
``.values(...)`` and computing its cache key cost more CPU than executing it. A statement
built once with bound parameters and executed with a dict of values skips both:

    _CLAIM = built_once(
        lambda insert: insert(Seen.__table__)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Seen.id)
    )
    db.session.execute(_CLAIM(), {"key": key, ...})

Column defaults (``default=utcnow``) still apply to the keys left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db


def dialect_insert(entity: Any):
    """``insert(entity)`` of the current database's dialect (with ``on_conflict_*``)."""
    return (pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert)(entity)


def built_once(build: Callable[[Callable], Any]) -> Callable[[], Any]:
    """A getter for the statement ``build(insert)`` makes, built once per dialect.

    ``build`` receives the dialect's ``insert`` function. Use bound parameters (execute
    with a dict), never literal values, since the statement is shared by every call.
    """
    built: dict[str, Any] = {}

    def statement():
        name = db.engine.dialect.name
        found = built.get(name)
        if found is None:
            found = built[name] = build(pg_insert if name == "postgresql" else sqlite_insert)
        return found

    return statement
