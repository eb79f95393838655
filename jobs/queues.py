"""Where jobs are enqueued from, and what the worker's ticker needs to keep them moving.

Enqueue only after the database commit.

Besides the queues, this module knows three things about RQ's state in Redis that the
worker's ticker (jobs/worker.py) and the recovery pass rely on:

- **Which workers are alive.** Every worker refreshes ``worker:alive:<name>`` every tick
  with a short TTL (``WORKER_ALIVE_SECONDS``), from a thread, so the key stays fresh while
  the worker runs a long job and lapses within seconds of a ``SIGKILL``. RQ's own worker
  key cannot tell: an in-process worker does not heartbeat while a job runs, so its key
  (and the job's entry in the started registry) are kept for the job's whole timeout.
- **Whether a job is really going to run** (``job_is_live``): waiting in its queue's list,
  scheduled, or registered as started (a started entry whose worker died is requeued by
  ``requeue_abandoned_jobs`` in the same recovery pass). A job hash that says ``queued``
  while its id is in no list was popped by a worker that died before registering it.
- **Periodic runs at most one at a time** (``single_flight``): a Redis lock with a token and
  a TTL of ``WORKER_ALIVE_SECONDS``, renewed every tick by the holder's ticker, released
  at the end. A dead holder's lock lapses before RQ retries its abandoned run.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from datetime import UTC, datetime

from flask import current_app
from redis import Redis
from redis.exceptions import LockError
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.utils import as_text, current_timestamp, parse_composite_key

from app.core.observe import TracedQueue
from app.core.redis import get_redis
from app.core.time import utcnow

log = logging.getLogger(__name__)

WORKER_ALIVE_SECONDS = 15
# A job popped from its list but registered nowhere is taken as lost only when seen so on
# two passes this far apart: a live worker registers it within milliseconds of the pop.
ORPHAN_CONFIRM_SECONDS = 3
# Periodic runs: a killed run is retried once its lock has lapsed (the first retry comes
# at least ``WORKER_ALIVE_SECONDS`` + 10 s after the holder's last renewal).
PERIODIC_RETRY = (10, 30)


def get_queue(name: str = "default") -> Queue:
    """Return the named RQ queue on the app's Redis (its jobs carry the request id)."""
    return TracedQueue(name, connection=get_redis())


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

    Slots are ``interval`` seconds long; the slot is claimed in Redis with ``SET NX``
    under ``claim_key:slot:N`` first, so several workers never schedule the same slot
    twice. Every worker's ticker calls this each tick (and each run calls it first), so
    the chain never breaks with a process. A run killed mid-way is retried (``Retry``)
    once the recovery pass finds its worker dead. Returns the job id (``job_id_prefix-N``)
    when this call scheduled it, None when another worker already had.
    """
    slot = int((at or utcnow()).timestamp() // interval) + 1
    if not get_redis().set(f"{claim_key}:slot:{slot}", 1, nx=True, ex=interval * 10):
        return None
    job_id = f"{job_id_prefix}-{slot}"
    get_queue(queue).enqueue_at(
        datetime.fromtimestamp(slot * interval, UTC),
        func,
        job_id=job_id,
        result_ttl=3600,
        retry=Retry(max=len(PERIODIC_RETRY), interval=list(PERIODIC_RETRY)),
    )
    return job_id


# --- workers alive ------------------------------------------------------------------------


def alive_seconds() -> int:
    """How long a worker stays alive in Redis without a tick (``WORKER_ALIVE_SECONDS``)."""
    return int(current_app.config.get("WORKER_ALIVE_SECONDS", WORKER_ALIVE_SECONDS))


def worker_alive_key(name: str) -> str:
    """The Redis key that says worker ``name`` ticked within ``WORKER_ALIVE_SECONDS``."""
    return f"worker:alive:{name}"


def mark_worker_alive(connection: Redis, name: str, ttl: int) -> None:
    """Say that worker ``name`` is alive for the next ``ttl`` seconds."""
    connection.set(worker_alive_key(name), int(time.time()), ex=ttl)


def worker_is_alive(connection: Redis, name: str | None) -> bool:
    """True when worker ``name`` ticked recently."""
    return bool(name) and bool(connection.exists(worker_alive_key(name)))


# --- what RQ will really run --------------------------------------------------------------


def _started_entries(connection: Redis, queue: Queue, job_id: str) -> list[str]:
    prefix = f"{job_id}:"
    entries = connection.zrange(StartedJobRegistry(queue=queue).key, 0, -1)
    return [as_text(e) for e in entries if as_text(e).startswith(prefix)]


def _orphan_confirmed(connection: Redis, job_id: str) -> bool:
    """True the second time a job is seen popped and unregistered, a few seconds apart."""
    key = f"rq-orphan:{job_id}"
    now = time.time()
    if connection.set(key, now, nx=True, ex=120):
        return False
    return now - float(connection.get(key) or now) >= ORPHAN_CONFIRM_SECONDS


def job_is_live(job_id: str, connection: Redis | None = None) -> bool:
    """True when RQ will run ``job_id`` (again) without help.

    That is: the job waits in its queue's list, is scheduled or deferred, or has an entry
    in the started registry (a live worker runs it; if its worker is dead,
    ``requeue_abandoned_jobs`` retries or fails it, so call that first). Finished, failed,
    stopped or missing jobs are not live, nor is a ``queued`` job whose id is in no list
    and no registry (popped by a worker that died before registering it) once seen so
    on two passes.
    """
    connection = connection or get_redis()
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return True
    if status not in (JobStatus.QUEUED, JobStatus.STARTED):
        return False
    queue = Queue(job.origin, connection=connection)
    if connection.lpos(queue.key, job_id) is not None:
        return True
    if _started_entries(connection, queue, job_id):
        return True
    if status == JobStatus.QUEUED and not _orphan_confirmed(connection, job_id):
        return True  # maybe a live worker between the pop and the registration
    log.warning("job %s (%s) is in no queue and no registry: lost", job_id, status)
    return False


def enqueue_unless_live(queue_name: str, func, *args, job_id: str, **options):
    """Enqueue ``func(*args)`` under ``job_id`` unless RQ already holds that job to run.

    Re-enqueueing a job id that is still in its queue would put the id in the list twice,
    and two workers could then run the same job at once. Returns the job, or None.
    """
    if job_is_live(job_id):
        return None
    return get_queue(queue_name).enqueue(func, *args, job_id=job_id, **options)


# Moves one started-registry entry to another sorted set (score 1: long expired) only if it
# was still there, and says whether it was: of several callers, exactly one gets 1.
_CLAIM_ENTRY = """
if redis.call('zrem', KEYS[1], ARGV[1]) == 1 then
    redis.call('zadd', KEYS[2], 1, ARGV[1])
    redis.call('expire', KEYS[2], ARGV[2])
    return 1
end
return 0
"""
# A claimed entry waits in its pass's own set only while the pass hands it over; if the
# process dies in between, the set goes away after this long (and the job, ``started``
# with no started entry, counts as lost: ``job_is_live``).
CLAIMED_TTL = 3600


class _ClaimedJobRegistry(StartedJobRegistry):
    """The started entries one recovery pass took from a queue's started registry.

    A set of its own, named per pass, that no one else reads: RQ's ``cleanup`` run on it
    is RQ's abandoned-job handling (failure callback, retry or failed registry) for
    exactly these entries, once.
    """

    def __init__(self, queue: Queue, token: str) -> None:
        super().__init__(queue=queue)
        self.key = f"worker:abandoned:{queue.name}:{token}"


def requeue_abandoned_jobs(queues: list[Queue], alive_worker: str | None = None) -> list[str]:
    """Hand the started jobs of dead workers to RQ's abandoned-job handling now.

    RQ notices an abandoned job only when its started-registry entry expires (the job's
    timeout plus a minute) and a worker's maintenance pass (every 10 minutes) looks. Here
    an entry whose worker has no alive key is taken out of the started registry at once
    and handed to RQ's own handling: a job with retries left is retried (after its retry
    interval), others go to the failed registry. ``alive_worker`` (the caller's own
    worker, running this very pass) is never taken for dead, even if its key lapsed while
    the pass was slow. Returns the job ids handed over.

    Each job is handed over once. The entry is moved, in one Redis script, to a set of
    this pass's own, and only if it was still in the started registry; it is never left
    there with an expired score. (It once was, and RQ's registry cleanup, which every
    worker runs at start and every 10 minutes, could then see it too and hand the job
    over a second time: two retries spent, and the second one's longer interval, a
    minute for the commission job, had the last word.)
    """
    handed: list[str] = []
    claim = None
    for queue in queues:
        connection = queue.connection
        registry = StartedJobRegistry(queue=queue)
        dead: list[str] = []
        for raw in connection.zrange(registry.key, 0, -1):
            entry = as_text(raw)
            job_id, execution_id = parse_composite_key(entry)
            execution = Execution(execution_id, job_id, connection=connection)
            worker = as_text(connection.hget(execution.key, "worker_name") or b"")
            if worker and worker == alive_worker:
                continue
            if not worker_is_alive(connection, worker):
                dead.append(entry)
        if not dead:
            continue
        claim = claim or connection.register_script(_CLAIM_ENTRY)
        claimed = _ClaimedJobRegistry(queue, uuid.uuid4().hex)
        taken = [
            entry
            for entry in dead
            if claim(keys=[registry.key, claimed.key], args=[entry, CLAIMED_TTL])
        ]
        if not taken:
            continue  # another pass (or RQ's cleanup) had them first
        log.warning("jobs of dead workers on %s: %s", queue.name, ", ".join(taken))
        claimed.cleanup(timestamp=1)
        connection.delete(claimed.key)
        handed.extend(parse_composite_key(entry)[0] for entry in taken)
    return handed


def enqueue_due_jobs(queues: list[Queue], lock_seconds: int = WORKER_ALIVE_SECONDS) -> int:
    """Move scheduled jobs whose time has come to their queues (what RQ's scheduler does).

    Any worker may call it; a short lock makes one do it at a time, and the moves of a
    queue happen in one MULTI/EXEC, so a worker killed mid-way moves all or nothing.
    Returns how many jobs were moved, or -1 when another worker held the lock.
    """
    if not queues:
        return 0
    connection = queues[0].connection
    lock = connection.lock("worker:tick:scheduled", timeout=lock_seconds)
    if not lock.acquire(blocking=False):
        return -1
    moved = 0
    try:
        for queue in queues:
            registry = ScheduledJobRegistry(queue=queue)
            job_ids = registry.get_jobs_to_schedule(current_timestamp())
            if not job_ids:
                continue
            with connection.pipeline() as pipe:
                for job in Job.fetch_many(job_ids, connection=connection):
                    if job is not None:
                        # RQ's scheduler uses the same call: it skips the dependency check,
                        # which ran when the job was scheduled.
                        queue._enqueue_job(
                            job, pipeline=pipe, at_front=job.should_enqueue_at_front()
                        )
                for job_id in job_ids:
                    registry.remove(job_id, pipeline=pipe)
                pipe.execute()
            moved += len(job_ids)
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("the scheduled-jobs lock lapsed while moving jobs")
    return moved


# --- one periodic run at a time -----------------------------------------------------------

_held_locks: set = set()
_held_guard = threading.Lock()


def single_flight(name: str):
    """Decorate a periodic job so that at most one run of it works at any moment.

    The run takes ``periodic:<name>:running`` (a token lock, TTL ``WORKER_ALIVE_SECONDS``,
    renewed by this process's ticker through ``renew_held_locks``) or, if another run holds
    it, returns None at once: the other run does the work.
    """

    def decorate(func):
        @functools.wraps(func)
        def run(*args, **kwargs):
            lock = get_redis().lock(
                f"periodic:{name}:running", timeout=alive_seconds(), thread_local=False
            )
            if not lock.acquire(blocking=False):
                log.info("%s: another run is working, skipped", name)
                return None
            with _held_guard:
                _held_locks.add(lock)
            try:
                return func(*args, **kwargs)
            finally:
                with _held_guard:
                    _held_locks.discard(lock)
                try:
                    lock.release()
                except LockError:
                    log.warning("%s: the run lock lapsed before the run ended", name)

        return run

    return decorate


def renew_held_locks() -> int:
    """Renew the TTL of every periodic-run lock this process holds; return how many."""
    with _held_guard:
        locks = list(_held_locks)
    renewed = 0
    for lock in locks:
        try:
            lock.reacquire()
            renewed += 1
        except LockError:
            log.warning("a periodic-run lock was lost before it could be renewed")
    return renewed
