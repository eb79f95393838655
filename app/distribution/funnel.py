"""Counting the visits a distributor's links, posters and QR codes bring (推广效果).

A *visit* is a visitor on a Beijing day arriving through a distributor's code: an H5 page
view carrying ``?ref=CODE`` (``count_page_view``, called by ``referral.capture_ref``) or
a scan of the distributor's WeChat QR code (``count_scan``, called by the WeChat message
handler). Each visitor counts once per distributor and day, however many pages they
open; a product page also counts once per visitor for that product.

Who the visitor is: the signed-in customer (``u<user id>``), else a first-party cookie
(``fv``, a random id set on the first visit: ``c<id>``), else, for a scan by someone
without an account yet, the WeChat openid (``o<openid>``). When an anonymous visitor
signs in, what the cookie was counted in moves to the customer (``merge_on_sign_in``),
so opening a shared link, signing in and coming back stays one visit.

Counting must not slow the page (bench/funnel.py): the request only appends the visit to
a small in-process buffer (``VisitBuffer``); a daemon thread of the process sends the
buffered visits to Redis every ``FLUSH_SECONDS`` in one pipeline (per visit, a Lua script
adding the visitor to sets and refreshing their TTLs). No database, no lookup of the code,
and a slow or absent Redis never slows a page. A process killed outright loses at most
the last fraction of a second of visits; a normal exit sends them (``atexit``). Unknown
codes are counted too and dropped by the rollup, which maps codes to distributors.

Redis sets rather than HyperLogLogs: exact for the small numbers a distributor sees, and
a visitor can be moved at sign-in. The keys live
``FUNNEL_REDIS_DAYS`` days (default 3); the periodic rollup (jobs/funnel.py) copies each
day's counts into the database long before that. Redis not answering never breaks a page:
the visit is simply not counted.

Keys (``D`` is the Beijing day as YYYYMMDD):

- ``funnel:codes:D``: the codes that had visits on day D;
- ``funnel:v:D:CODE``: the visitors of CODE on day D;
- ``funnel:p:D:CODE``: the product ids whose pages CODE's visitors opened;
- ``funnel:v:D:CODE:PID``: the visitors of that product page;
- ``funnel:c:D:COOKIE``: the visitor sets an anonymous cookie was added to (for the
  move at sign-in).
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
import time
from datetime import date

import redis
from flask import after_this_request, current_app, has_request_context, request
from flask_login import current_user

from app.core.redis import get_redis
from app.core.time import shop_today

log = logging.getLogger(__name__)

COOKIE = "fv"
COOKIE_MAX_AGE = 400 * 86400  # the longest browsers keep a cookie
TTL_DAYS = 3
PRODUCT_ENDPOINT = "shop.product"
_COOKIE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")

# One call counts a batch of visits. ARGV[1] is the TTL in seconds, then five values per
# visit: visitor, code, day (YYYYMMDD), product id ('0': not a product page), cookie (''
# unless anonymous). The key names are those of ``visitors_key``, ``codes_key``,
# ``products_key`` and ``cookie_key`` below (the tests read what the script wrote through
# them). Keys built inside the script: fine on one Redis server, not on a Redis Cluster.
_COUNT = """
local ttl = tonumber(ARGV[1])
local function add(key, member)
  redis.call('SADD', key, member)
  redis.call('EXPIRE', key, ttl)
end
for i = 2, #ARGV, 5 do
  local visitor, code, day = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local pid, cookie = ARGV[i + 3], ARGV[i + 4]
  local all = 'funnel:v:' .. day .. ':' .. code
  add(all, visitor)
  add('funnel:codes:' .. day, code)
  local page = nil
  if pid ~= '0' then
    page = all .. ':' .. pid
    add(page, visitor)
    add('funnel:p:' .. day .. ':' .. code, pid)
  end
  if cookie ~= '' then
    local record = 'funnel:c:' .. day .. ':' .. cookie
    add(record, all)
    if page then add(record, page) end
  end
end
return (#ARGV - 1) / 5
"""
BATCH = 1000  # visits per script call

Visit = tuple[str, str, str, int, str]  # visitor, code, day key, product id or 0, cookie or ""


def day_key(day: date) -> str:
    """The day as the keys spell it: YYYYMMDD."""
    return day.strftime("%Y%m%d")


_today: tuple[int, str] = (-1, "")


def _today_key() -> str:
    """Today's key, worked out once a minute: the Beijing day starts on a whole minute of
    the epoch (a whole-hour offset), so a minute never spans two days. Saves the time
    zone arithmetic on every counted page view."""
    global _today
    minute = int(time.time() // 60)
    if _today[0] != minute:
        _today = (minute, day_key(shop_today()))
    return _today[1]


def visitors_key(day: date, code: str, product_id: int | None = None) -> str:
    """The set of visitors of ``code`` on ``day`` (of one product page when given)."""
    base = f"funnel:v:{day_key(day)}:{code}"
    return f"{base}:{product_id}" if product_id else base


def codes_key(day: date) -> str:
    return f"funnel:codes:{day_key(day)}"


def products_key(day: date, code: str) -> str:
    return f"funnel:p:{day_key(day)}:{code}"


def cookie_key(day: date, cookie: str) -> str:
    return f"funnel:c:{day_key(day)}:{cookie}"


def _ttl() -> int:
    return int(current_app.config.get("FUNNEL_REDIS_DAYS", TTL_DAYS)) * 86400


def _script(client: redis.Redis):
    """The counting script, registered once per app (EVALSHA, reloaded if Redis lost it)."""
    extensions = current_app.extensions
    script = extensions.get("funnel_count_script")
    if script is None:
        script = extensions["funnel_count_script"] = client.register_script(_COUNT)
    return script


def _send(client: redis.Redis, script, ttl: int, visits: list[Visit]) -> None:
    """Count ``visits`` in Redis: one script call per ``BATCH`` visits, pipelined."""
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(visits), BATCH):
        args: list = [ttl]
        for visit in visits[start : start + BATCH]:
            args.extend(visit)
        script(keys=[], args=args, client=pipe)
    pipe.execute()


class VisitBuffer:
    """Visits of page views waiting to be sent to Redis, one buffer per app and process.

    ``add`` is what a request pays: a lock and a list append. A daemon thread, started by
    the first ``add`` in a process (so a forked server worker starts its own), sends the
    buffer every ``FLUSH_SECONDS`` with ``flush``. At most ``MAX_WAITING`` visits wait:
    while Redis is away, newer visits are dropped rather than growing without bound.
    """

    FLUSH_SECONDS = 0.1
    MAX_WAITING = 50_000

    def __init__(self, client: redis.Redis, script, ttl: int):
        self._client, self._script, self._ttl = client, script, ttl
        self._items: list[Visit] = []
        self._lock = threading.Lock()  # the list (held by requests for an append only)
        self._sending = threading.Lock()  # one flush at a time
        self._pid: int | None = None
        # A forked child (a server worker) starts afresh: no thread, maybe a lock held.
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock, self._sending = threading.Lock(), threading.Lock()
        self._items, self._pid = [], None

    def add(self, visit: Visit) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._start()
            if len(self._items) < self.MAX_WAITING:
                self._items.append(visit)

    def _start(self) -> None:
        self._pid = os.getpid()
        threading.Thread(target=self._run, name="funnel-visits", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            self.flush()

    def flush(self) -> int:
        """Send the waiting visits now (one pipeline); how many were sent. Never raises.

        A flush waits for one already sending (the background thread's), so when it
        returns every visit added before it is in Redis (what readers rely on).
        """
        with self._sending:
            with self._lock:
                items, self._items = self._items, []
            if not items:
                return 0
            try:
                _send(self._client, self._script, self._ttl, items)
            except (redis.RedisError, OSError) as exc:
                log.warning("funnel: %s visits not counted: %s", len(items), exc)
                return 0
            return len(items)


_buffers_lock = threading.Lock()


def visit_buffer() -> VisitBuffer:
    """The current app's buffer of page-view visits (made on first use)."""
    extensions = current_app.extensions
    buffer = extensions.get("funnel_visits")
    if buffer is None:
        with _buffers_lock:
            buffer = extensions.get("funnel_visits")
            if buffer is None:
                client = get_redis()
                buffer = VisitBuffer(client, _script(client), _ttl())
                extensions["funnel_visits"] = buffer
    return buffer


def flush_visits() -> int:
    """Send the current app's buffered page views to Redis now (tests, sign-in, reads)."""
    buffer = current_app.extensions.get("funnel_visits")
    return buffer.flush() if buffer is not None else 0


def count(
    code: str,
    visitor: str,
    product_id: int | None = None,
    cookie: str | None = None,
    day: date | None = None,
) -> bool:
    """Add ``visitor`` to ``code``'s visitors of ``day`` (and of the product page) now.

    ``cookie``: the anonymous visitor's cookie id, recorded for ``merge_on_sign_in``.
    False when Redis did not answer (the visit is lost). Page views go through the
    buffer instead (``count_page_view``); a QR scan, rare, is counted at once.
    """
    visit = (visitor, code, day_key(day or shop_today()), product_id or 0, cookie or "")
    try:
        client = get_redis()
        _send(client, _script(client), _ttl(), [visit])
    except (redis.RedisError, OSError) as exc:
        log.warning("funnel: visit of %s not counted: %s", code, exc)
        return False
    return True


def _cookie_id() -> str | None:
    raw = request.cookies.get(COOKIE)
    if raw and 8 <= len(raw) <= 32 and set(raw) <= _COOKIE_CHARS:
        return raw
    return None


def _set_cookie(value: str) -> None:
    """Send the visitor cookie with this response (the page body may come from the
    fragment cache; headers are the response's own)."""

    @after_this_request
    def _send(response):
        response.set_cookie(
            COOKIE,
            value,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
        return response


def count_page_view(code: str) -> None:
    """Count this H5 GET carrying ``?ref=CODE`` (code already checked for shape).

    Staff previewing the shop are not counted. An anonymous visitor without the cookie
    gets one with this response. ``FUNNEL_COUNTING = False`` turns counting off (the
    benchmark's baseline; an escape hatch should Redis struggle).
    """
    if not current_app.config.get("FUNNEL_COUNTING", True):
        return
    person = current_user
    product_id = None
    if request.endpoint == PRODUCT_ENDPOINT and request.view_args:
        product_id = request.view_args.get("product_id")
    if person.is_authenticated:
        if getattr(person, "is_staff", False):
            return
        visit = (f"u{person.id}", code, _today_key(), product_id or 0, "")
    else:
        cookie = _cookie_id()
        if cookie is None:
            cookie = secrets.token_urlsafe(12)
            _set_cookie(cookie)
        visit = (f"c{cookie}", code, _today_key(), product_id or 0, cookie)
    try:
        visit_buffer().add(visit)
    except (redis.RedisError, OSError) as exc:  # the first use registers the script
        log.warning("funnel: visit of %s not counted: %s", code, exc)


def count_scan(code: str, user_id: int | None, openid: str) -> bool:
    """Count a scan of ``code``'s QR code (a WeChat subscribe or SCAN event)."""
    return count(code, f"u{user_id}" if user_id else f"o{openid}")


def merge_on_sign_in(user_id: int) -> None:
    """Move today's visits counted under this browser's cookie to the customer who just
    signed in, so the same person is not counted twice. Never raises."""
    if not has_request_context():
        return
    cookie = _cookie_id()
    if cookie is None:
        return
    flush_visits()  # this browser's last page view may still be waiting in the buffer
    record = cookie_key(shop_today(), cookie)
    try:
        client = get_redis()
        keys = [k.decode() if isinstance(k, bytes) else k for k in client.smembers(record)]
        if not keys:
            return
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.srem(key, f"c{cookie}")
            pipe.sadd(key, f"u{user_id}")
        pipe.delete(record)
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("funnel: visits of cookie not moved to user %s: %s", user_id, exc)


def day_visits(day: date, codes: list[str] | None = None) -> dict[str, dict[int, int]]:
    """Visitors counted in Redis on ``day``: ``{code: {0: whole day, product id: n}}``.

    Every code seen that day when ``codes`` is None. Empty when Redis has nothing (or
    does not answer: the caller keeps what the database has). This process's buffered
    page views are sent first.
    """
    flush_visits()
    try:
        client = get_redis()
        if codes is None:
            codes = sorted(c.decode() for c in client.smembers(codes_key(day)))
        if not codes:
            return {}
        pipe = client.pipeline(transaction=False)
        for code in codes:
            pipe.scard(visitors_key(day, code))
            pipe.smembers(products_key(day, code))
        first = pipe.execute()
        out: dict[str, dict[int, int]] = {}
        wanted: list[tuple[str, int]] = []
        for i, code in enumerate(codes):
            whole, products = first[2 * i], first[2 * i + 1]
            if whole:
                out[code] = {0: int(whole)}
            wanted += [(code, int(p)) for p in products]
        if wanted:
            for code, product_id in wanted:
                pipe.scard(visitors_key(day, code, product_id))
            for (code, product_id), n in zip(wanted, pipe.execute(), strict=True):
                if n:
                    out.setdefault(code, {0: 0})[product_id] = int(n)
        return out
    except (redis.RedisError, OSError) as exc:
        log.warning("funnel: visits of %s unavailable: %s", day, exc)
        return {}
