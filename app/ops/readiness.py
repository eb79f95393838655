"""Is this process ready to serve: database, Redis, and the schema at the migrations' head."""

from __future__ import annotations

from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text

from app.core.redis import get_redis
from app.extensions import db

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migration_heads() -> set[str]:
    """The head revision(s) of the migration files (read once per app)."""
    heads = current_app.extensions.get("ops_migration_heads")
    if heads is None:
        heads = set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
        current_app.extensions["ops_migration_heads"] = heads
    return heads


def database_revisions() -> set[str]:
    """The revision(s) the database says it is at (empty: never migrated)."""
    context = MigrationContext.configure(db.session.connection())
    return set(context.get_current_heads())


def check_database() -> tuple[bool, str]:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"
        db.session.rollback()
        return False, f"database does not answer 数据库无法连接: {type(exc).__name__}"
    return True, "ok"


def check_migrations() -> tuple[bool, str]:
    try:
        current, heads = database_revisions(), migration_heads()
    except Exception as exc:
        db.session.rollback()
        return False, f"cannot read the schema revision 无法读取数据库版本: {type(exc).__name__}"
    if current != heads:
        return False, (
            f"schema at {', '.join(sorted(current)) or 'nothing'}, migrations at "
            f"{', '.join(sorted(heads))}: run `flask db upgrade` 数据库未升级到最新"
        )
    return True, "ok"


def check_redis() -> tuple[bool, str]:
    try:
        get_redis().ping()
    except Exception as exc:
        return False, f"Redis does not answer Redis 无法连接: {type(exc).__name__}"
    return True, "ok"


def readiness() -> dict[str, tuple[bool, str]]:
    """Each check's (ok, what is wrong)."""
    database = check_database()
    return {
        "database": database,
        "redis": check_redis(),
        "migrations": check_migrations() if database[0] else (False, "database down"),
    }
