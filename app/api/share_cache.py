"""Per-process cache of 分享赚 answers, invalidated by the catalog version and a share version.

The shop's catalog pages are cached whole (``app/shop/cache.py``); a distributor's page
view adds one small uncached request, ``GET /api/v1/distributor/share-earnings``. Working
the figure out runs the commission calculator over the product's SKUs and rules and reads
the distributor, their grade, the settings and the precedence plan: about eight queries,
several times Flask's own cost. Its answer only changes when one of those rows does, so
each process keeps answers in an LRU keyed by (catalog version, share version, the
signed-in user id from the signed session cookie, the product ids asked).

- The catalog version is ``app/shop/cache.py``'s: prices, SKUs and the shelf.
- The share version is a random token in Redis (``SHARE_VERSION_KEY``), replaced after
  every commit that touched a table the figure reads (``WATCHED``: commission rules,
  distributors with their status and grade, grades, the distribution and cloud settings,
  ordering merchants) through the SQLAlchemy session, ORM changes and
  ``session.execute(update/insert/delete)`` alike, exactly as the catalog version works.

A process trusts the tokens it read for SHOP_CACHE_VERSION_TTL seconds (1 by default, 0
while testing), so another process's change shows within that second; the process that
made it drops its answers at once. Without Redis, or with SHOP_FRAGMENT_CACHE off
(debug), nothing is cached. The key is the user id the signed cookie carries, which is
the id Flask-Login loads; an answer is only kept when the request's signed-in user was
that id, so a hit is the answer the same user would be computed again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable

import redis
from flask import current_app, has_app_context

from app.cloud.models import CloudSettings, OrderingMerchant
from app.core.redis import get_redis
from app.core.write_watch import WriteWatch
from app.distribution.models import CommissionRule, DistributionSettings, Distributor, Grade
from app.shop.cache import FragmentCache, catalog_version

log = logging.getLogger(__name__)

SHARE_VERSION_KEY = "share:earnings-version"
WATCHED = (
    CommissionRule,
    Distributor,
    Grade,
    DistributionSettings,
    OrderingMerchant,
    CloudSettings,
)
MAX_ENTRIES = 4096


class AnswerCache:
    """A thread-safe LRU of answers, emptied whenever the version changes."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._version: str | None = None
        self._entries: OrderedDict[tuple, bytes] = OrderedDict()

    def get(self, version: str, key: tuple) -> bytes | None:
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
                return None
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
            return body

    def put(self, version: str, key: tuple, body: bytes) -> None:
        with self._lock:
            if version != self._version:
                return  # the versions moved on while this answer was built
            self._entries[key] = body
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._version = None


answers = AnswerCache()
_token = FragmentCache(1)  # only its remembered version is used: the share token


def _ttl() -> float:
    config = current_app.config
    return config.get("SHOP_CACHE_VERSION_TTL", 0.0 if config["TESTING"] else 1.0)


def share_version(ttl: float) -> str | None:
    """The share version token (at most ``ttl`` seconds old), or None without Redis."""
    version = _token.recent_version(ttl) if ttl > 0 else None
    if version is not None:
        return version
    try:
        client = get_redis()
        version = client.get(SHARE_VERSION_KEY)
        if version is None:
            client.set(SHARE_VERSION_KEY, uuid.uuid4().hex, nx=True)
            version = client.get(SHARE_VERSION_KEY)
    except (redis.RedisError, OSError) as exc:
        log.warning("share version unavailable, answering uncached: %s", exc)
        return None
    version = version.decode() if isinstance(version, bytes) else version
    _token.remember_version(version)
    return version


def bump_share_version() -> None:
    """Drop every cached answer in every process (after a commit touching ``WATCHED``)."""
    answers.clear()
    _token.clear()
    if not has_app_context():
        return
    try:
        get_redis().set(SHARE_VERSION_KEY, uuid.uuid4().hex)
    except (redis.RedisError, OSError) as exc:
        current_app.logger.warning("could not bump the share version: %s", exc)


def cached_answer(key: tuple, build: Callable[[], tuple[bytes, bool]]) -> bytes:
    """The answer for ``key`` at the current versions, building it when absent.

    ``build`` returns (body, keep): ``keep`` is False when the answer must not be reused
    (the request's signed-in user was not the one the key names).
    """
    config = current_app.config
    if not config.get("SHOP_FRAGMENT_CACHE", not current_app.debug):
        return build()[0]
    ttl = _ttl()
    catalog, share = catalog_version(ttl), share_version(ttl)
    if catalog is None or share is None:
        return build()[0]
    version = f"{catalog}:{share}"
    body = answers.get(version, key)
    if body is None:
        body, keep = build()
        if keep:
            answers.put(version, key, body)
    return body


# --- noticing writes ----------------------------------------------------------------------


_share_writes = WriteWatch("share_earnings_changed", WATCHED, bump_share_version)


def install_listeners() -> None:
    """Bump the share version after every commit touching ``WATCHED`` (once per process)."""
    _share_writes.install()
