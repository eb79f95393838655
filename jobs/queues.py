"""Where jobs are enqueued from. Enqueue only after the database commit."""

from __future__ import annotations

from rq import Queue

from app.core.redis import get_redis


def get_queue(name: str = "default") -> Queue:
    """Return the named RQ queue on the app's Redis."""
    return Queue(name, connection=get_redis())
