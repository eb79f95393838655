"""Where jobs are enqueued from. Enqueue only after the database commit."""

from __future__ import annotations

from rq import Queue

from app.core.redis import get_redis


def get_queue(name: str = "default") -> Queue:
    """Return the named RQ queue on the app's Redis."""
    return Queue(name, connection=get_redis())


def enqueue_once_piped(name: str, func, *args, job_id: str, **options):
    """Enqueue ``func(*args)`` under ``job_id`` in one Redis round trip.

    RQ sends the job hash and the queue push as separate commands unless given a
    pipeline; on the request paths WeChat is waiting on (pay notices, pushes) one
    MULTI/EXEC saves a round trip. ``options`` are RQ's (``retry``, ``result_ttl``...).
    """
    queue = get_queue(name)
    with queue.connection.pipeline() as pipe:
        job = queue.enqueue_call(func, args=args, job_id=job_id, pipeline=pipe, **options)
        pipe.execute()
    return job
