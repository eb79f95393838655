"""How many examples the Hypothesis state machines run on each database (docs/testing.md).

Both machines run on SQLite and on PostgreSQL. The machine and its invariants are the same
on both; what the PostgreSQL run adds is the engine. So the SQLite run takes half the
examples of the PostgreSQL run, never fewer than 3; an environment variable (e.g.
``COMMISSION_EXAMPLES=200``) sets the count on either.
"""

from __future__ import annotations

import os

SQLITE_SHARE = 2  # the SQLite run takes 1/2 of the examples
SQLITE_FLOOR = 3


def example_count(variable: str, default: int) -> int:
    """``variable`` from the environment if set, else ``default`` on PostgreSQL and half of
    it (at least 3) on SQLite."""
    if os.environ.get(variable):
        return int(os.environ[variable])
    if os.environ.get("TEST_DB", "sqlite") == "postgresql":
        return default
    return max(SQLITE_FLOOR, default // SQLITE_SHARE)
