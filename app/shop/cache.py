"""Cached product-page fragments, invalidated by a catalog version kept in Redis.

Loading a product with its SKUs and images through the ORM and rendering the page costs
several times what Flask itself costs per request (see bench/README.md). The rendered
product body only changes when the catalog does, so each worker process keeps it in a
small LRU keyed by (catalog version, product id).

The version is a random token in Redis, replaced after every commit that touched a
catalog table through the SQLAlchemy session: ORM changes (seen in ``after_flush``) and
``session.execute(update/delete/insert)`` on those tables (seen in ``do_orm_execute``,
e.g. stock adjustments). A random token rather than a counter: a Redis flush or restart
can never bring an old version, and so an old fragment, back. Writes that bypass the
session (raw SQL on the engine) are not seen; nothing in the app does that for catalog
tables. When Redis does not answer, pages render uncached.

Asking Redis on every request would cost about as much as Flask's own work, so a process
trusts the version it last read for SHOP_CACHE_VERSION_TTL seconds (default 1; 0 while
testing). A commit in the same process drops its cache at once; other processes follow
within that second. Stock shown on a page can thus be a second old: orders check stock
again when they are placed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

import redis
from flask import current_app, has_app_context

from app.catalog.models import Category, Product, ProductImage, ProductPageSettings, Sku
from app.core.redis import get_redis
from app.core.write_watch import WriteWatch
from app.orders.models import ShopSettings

log = logging.getLogger(__name__)

VERSION_KEY = "shop:catalog-version"
# The product page also shows the shipping rule (ShopSettings) and the owner's service
# promises (ProductPageSettings): saving either must drop the cached pages too.
CATALOG_MODELS = (Category, Product, ProductImage, Sku, ProductPageSettings, ShopSettings)
MAX_ENTRIES = 512


class FragmentCache:
    """A thread-safe LRU of rendered fragments, emptied whenever the version changes."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._version: str | None = None
        self._entries: OrderedDict[object, object] = OrderedDict()
        self._version_read: tuple[str, float] | None = None  # (version, monotonic time)

    def recent_version(self, ttl: float) -> str | None:
        """The version read from Redis less than ``ttl`` seconds ago, if any."""
        with self._lock:
            if self._version_read and time.monotonic() - self._version_read[1] < ttl:
                return self._version_read[0]
        return None

    def remember_version(self, version: str) -> None:
        with self._lock:
            self._version_read = (version, time.monotonic())

    def get_or_build(self, version: str, key: object, build: Callable[[], object]) -> object:
        """The cached value for ``key`` at ``version``, building (and keeping) it if absent."""
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = build()  # outside the lock: rendering may take a few milliseconds
        with self._lock:
            if version == self._version:
                self._entries[key] = value
                if len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._version = None
            self._version_read = None


fragments = FragmentCache()


def catalog_version(ttl: float = 0.0) -> str | None:
    """The current catalog version token (at most ``ttl`` seconds old), or None when Redis
    is unavailable."""
    version = fragments.recent_version(ttl) if ttl > 0 else None
    if version is not None:
        return version
    try:
        client = get_redis()
        version = client.get(VERSION_KEY)
        if version is None:  # first use, or Redis was flushed: start a new version
            client.set(VERSION_KEY, uuid.uuid4().hex, nx=True)
            version = client.get(VERSION_KEY)
    except (redis.RedisError, OSError) as exc:
        log.warning("catalog version unavailable, rendering uncached: %s", exc)
        return None
    version = version.decode() if isinstance(version, bytes) else version
    fragments.remember_version(version)
    return version


def bump_catalog_version() -> None:
    """Invalidate every cached fragment in every process (after a catalog commit)."""
    fragments.clear()
    if not has_app_context():
        return
    try:
        get_redis().set(VERSION_KEY, uuid.uuid4().hex)
    except (redis.RedisError, OSError) as exc:
        current_app.logger.warning("could not bump the catalog version: %s", exc)


def cached(key: object, build: Callable[[], object]) -> object:
    """``build()``'s result for ``key`` at the current catalog version.

    Uncached when Redis does not answer, and in debug mode (``make dev``: an edited
    template shows at once) unless SHOP_FRAGMENT_CACHE says otherwise.
    """
    config = current_app.config
    if not config.get("SHOP_FRAGMENT_CACHE", not current_app.debug):
        return build()
    version = catalog_version(
        config.get("SHOP_CACHE_VERSION_TTL", 0.0 if config["TESTING"] else 1.0)
    )
    if version is None:
        return build()
    return fragments.get_or_build(version, key, build)


# --- noticing catalog writes ------------------------------------------------------------


_catalog_writes = WriteWatch("shop_catalog_changed", CATALOG_MODELS, bump_catalog_version)


def install_listeners() -> None:
    """Bump the catalog version after every commit that wrote catalog rows (once per process)."""
    _catalog_writes.install()
