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


def schedule_in_slot(
    claim_key: str, job_id_prefix: str, func, interval: int, queue: str, at=None
) -> str | None:
    """Schedule ``func`` at the start of the time slot after ``at`` (default now), once.

    Periodic jobs chain themselves: each run schedules the next slot first, so a crash
    keeps the chain. Slots are ``interval`` seconds long; the slot is claimed in Redis
    with ``SET NX`` under ``claim_key:slot:N`` first, so several workers never schedule
    the same slot twice. Returns the job id (``job_id_prefix-N``) when this call
    scheduled it, None when another worker already had.
    """
    from datetime import UTC, datetime

    from app.core.time import utcnow

    slot = int((at or utcnow()).timestamp() // interval) + 1
    if not get_redis().set(f"{claim_key}:slot:{slot}", 1, nx=True, ex=interval * 10):
        return None
    job_id = f"{job_id_prefix}-{slot}"
    get_queue(queue).enqueue_at(
        datetime.fromtimestamp(slot * interval, UTC), func, job_id=job_id, result_ttl=3600
    )
    return job_id
