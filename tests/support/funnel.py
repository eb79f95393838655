"""Helpers for the promotion-funnel tests: visits as a browser makes them, the rollup as
the periodic job runs it, and the figures as the distributor reads them."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.core.redis import get_redis
from app.core.time import utcnow
from app.distribution.funnel import COOKIE
from app.distribution.funnel_days import funnel_report
from app.extensions import db
from jobs.funnel import roll_up


def visit(client, path: str, code: str) -> str | None:
    """GET ``path?ref=code`` (200 expected); the visitor cookie the response set, if any."""
    sep = "&" if "?" in path else "?"
    response = client.get(f"{path}{sep}ref={code}")
    assert response.status_code == 200, response.status_code
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{COOKIE}="):
            return header.split(";", 1)[0].split("=", 1)[1]
    return None


def totals(distributor, days: int = 7, now: datetime | None = None) -> dict[str, int]:
    """The funnel's totals of ``distributor`` (None: the whole shop), read afresh."""
    db.session.rollback()
    return funnel_report(distributor, days, now).totals.as_dict()


def roll_up_then_flush(now: datetime | None = None) -> None:
    """Run the rollup (it commits) and empty Redis, as a restart without persistence would."""
    roll_up(now)
    get_redis().flushdb()


def tomorrow() -> datetime:
    return utcnow() + timedelta(days=1)
