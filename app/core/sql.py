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

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, TextClause, bindparam, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db

T = TypeVar("T")


def dialect_insert(entity: Any):
    """``insert(entity)`` of the current database's dialect (with ``on_conflict_*``)."""
    return (pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert)(entity)


def single_row(model: type[T]) -> T:
    """A settings table's one row (id 1), created with its defaults on first use.

    Race-safe: two workers meeting an empty table both ``INSERT ... ON CONFLICT DO
    NOTHING`` and read the row one of them wrote (an ORM add would fail the second with
    a unique violation). Flushes only.
    """
    row = db.session.get(model, 1)
    if row is None:
        db.session.execute(dialect_insert(model).values(id=1).on_conflict_do_nothing())
        row = db.session.get(model, 1)
    return row


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
    values = f"({', '.join(':' + name for name in columns)})"
    statement = text(_insert_sql(table, columns, f"VALUES {values}", conflict, update, returning))
    statement = statement.bindparams(
        *(bindparam(name, type_=table.c[name].type) for name in columns)
    )
    return statement.columns(*returning) if returning else statement


@lru_cache(maxsize=256)
def insert_rows_on_conflict(
    table: Table,
    columns: tuple[str, ...],
    rows: int,
    *,
    conflict: tuple[str, ...] = (),
    returning: tuple[ColumnElement, ...] = (),
) -> TextClause:
    """``insert_on_conflict`` (``DO NOTHING``) for ``rows`` rows in one statement.

    One statement per row count, built once (cached here); its parameters are
    ``<column>_<row>``, as ``row_params`` lays them out:

        statement = insert_rows_on_conflict(Entry.__table__, COLUMNS, len(rows), ...)
        db.session.execute(statement, row_params(COLUMNS, rows))
    """
    values = ", ".join(
        f"({', '.join(f':{name}_{row}' for name in columns)})" for row in range(rows)
    )
    statement = text(_insert_sql(table, columns, f"VALUES {values}", conflict, (), returning))
    statement = statement.bindparams(
        *(
            bindparam(f"{name}_{row}", type_=table.c[name].type)
            for row in range(rows)
            for name in columns
        )
    )
    return statement.columns(*returning) if returning else statement


# Rows per statement of ``insert_rows_chunked``: few distinct statements (a full chunk
# and each remainder size, compiled once per process), far below any parameter limit.
ROWS_PER_INSERT = 64


def insert_rows_chunked(
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
    *,
    conflict: tuple[str, ...] = (),
    returning: tuple[ColumnElement, ...] = (),
) -> list[tuple]:
    """Insert any number of ``rows`` (``DO NOTHING`` on ``conflict``) in statements of
    ``ROWS_PER_INSERT`` rows, in the order given; the ``returning`` values of the rows
    written. A multi-row INSERT built afresh for every row count costs more CPU to
    compile than the database spends on it; these are built once and cached.

    On PostgreSQL the rows go in one statement of fixed text whatever their number
    (``insert_rows_json``: the rows as one JSON parameter, which ``json.dumps`` writes in
    C), which costs neither the building of thousands of parameters, nor the driver's
    parsing of a long query, nor its quoting of text arrays."""
    if not rows:
        return []
    if db.engine.dialect.name == "postgresql":
        statement = insert_rows_json(table, columns, conflict=conflict, returning=returning)
        result = db.session.execute(statement, {"rows": json_rows(columns, rows)})
        return [tuple(row) for row in result] if returning else []
    found: list[tuple] = []
    for at in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[at : at + ROWS_PER_INSERT]
        statement = insert_rows_on_conflict(
            table, columns, len(chunk), conflict=conflict, returning=returning
        )
        result = db.session.execute(statement, row_params(columns, chunk))
        if returning:
            found += [tuple(row) for row in result]
    return found


@lru_cache(maxsize=64)
def insert_rows_json(
    table: Table,
    columns: tuple[str, ...],
    *,
    conflict: tuple[str, ...] = (),
    returning: tuple[ColumnElement, ...] = (),
) -> TextClause:
    """PostgreSQL only: ``INSERT ... SELECT <columns> FROM json_populate_recordset(NULL::
    <table>, :rows) WITH ORDINALITY ... ON CONFLICT DO NOTHING``; ``:rows`` is the JSON
    array of the rows (``json_rows``), typed by the table's own row type. Rows go in
    (and get their ids) in the order given, as with ``VALUES``; the text is the same for
    any number of rows (built once, cached here)."""
    names = ", ".join(columns)
    select_sql = (
        f"SELECT {names} FROM json_populate_recordset(NULL::{table.name}, "  # noqa: S608
        "CAST(:rows AS json)) WITH ORDINALITY AS given ORDER BY given.ordinality"
    )
    sql = _insert_sql(table, columns, select_sql, conflict, (), returning)
    statement = text(sql)
    return statement.columns(*returning) if returning else statement


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):  # as ``UtcDateTime`` stores it: naive taken as UTC
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"no JSON for {type(value).__name__}")


def json_rows(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """The ``:rows`` parameter of ``insert_rows_json`` (every column given)."""
    return json.dumps(
        [{name: row[name] for name in columns} for row in rows],
        ensure_ascii=False,
        default=_json_value,
    )


def row_params(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of ``insert_rows_on_conflict`` for ``rows`` (every column given)."""
    return {f"{name}_{n}": row[name] for n, row in enumerate(rows) for name in columns}


def _insert_sql(table, columns, source, conflict, update, returning) -> str:
    # Names come from the models (never from input); values are bound parameters.
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) {source} ON CONFLICT "
    if conflict:
        sql += f"({', '.join(conflict)}) "
    if update:
        sql += "DO UPDATE SET " + ", ".join(f"{name} = excluded.{name}" for name in update)
    else:
        sql += "DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(column.name for column in returning)
    return sql
