"""SQL helpers the areas share: the dialect's INSERT, and cacheable upserts.

PostgreSQL (production) and SQLite (development, tests) both support
``INSERT ... ON CONFLICT``, through their own dialect's ``insert``. Once-only writes use it
with ``RETURNING`` (never ``rowcount``: psycopg reports -1 for ORM-executed inserts).

SQLAlchemy 2.0 cannot cache the compiled SQL of a dialect ``insert`` that has an
``ON CONFLICT`` clause (``inherit_cache = False``), so such a statement is compiled again
on every execution: on the hottest paths (a WeChat push runs four) that cost more CPU
than running it. ``insert_on_conflict`` writes the same SQL, which both databases
accept word for word, as a ``text()`` with typed bound parameters, which is cached:

    _CLAIM = insert_on_conflict(
        Seen.__table__, ("key", "openid", "received_at"), conflict=("key",),
        returning=(Seen.id,),
    )
    db.session.execute(_CLAIM, {"key": key, "openid": openid, "received_at": now})

Every column listed must be given (no column defaults apply to a text statement).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db


def dialect_insert(entity: Any):
    """``insert(entity)`` of the current database's dialect (with ``on_conflict_*``)."""
    return (pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert)(entity)


def insert_on_conflict(
    table: Table,
    columns: Sequence[str],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] = (),
    returning: Sequence[ColumnElement] = (),
) -> TextClause:
    """``INSERT INTO table (columns) VALUES (:columns) ON CONFLICT ...`` as cacheable SQL.

    ``conflict``: the unique columns (empty: any unique key). ``update``: columns set from
    the new row (``excluded``) on conflict; empty: ``DO NOTHING``. ``returning``: columns
    to return, typed (pass ``Model.__table__.columns`` to load the model with
    ``select(Model).from_statement(...)``). Bound parameters are typed by their columns.
    """
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) "
    sql += f"VALUES ({', '.join(':' + name for name in columns)}) ON CONFLICT "
    if conflict:
        sql += f"({', '.join(conflict)}) "
    if update:
        sql += "DO UPDATE SET " + ", ".join(f"{name} = excluded.{name}" for name in update)
    else:
        sql += "DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(column.name for column in returning)
    statement = text(sql).bindparams(
        *(bindparam(name, type_=table.c[name].type) for name in columns)
    )
    return statement.columns(*returning) if returning else statement
