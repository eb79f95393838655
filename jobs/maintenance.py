"""Housekeeping jobs."""

from __future__ import annotations

from app.core.redis import get_redis
from app.core.time import utcnow

HEARTBEAT_KEY = "worker:heartbeat"


def record_heartbeat() -> str:
    """Store the time this job ran, so the admin dashboard can show the worker is alive."""
    stamp = utcnow().isoformat()
    get_redis().set(HEARTBEAT_KEY, stamp, ex=24 * 3600)
    return stamp
