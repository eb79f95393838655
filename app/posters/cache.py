"""Rendered posters kept in Redis under the hash of everything they show, size-bounded.

Key: ``poster_key(parts)`` is the SHA-256 of the canonical JSON of the poster's inputs
(template id and version, kind, distributor, product, price, original price, title,
picture, nickname, avatar URL, QR content and ticket, shop name, renderer version). Any
change to any of them gives another key, so a stale poster is never served; the old one
simply stops being asked for and ages out. The key doubles as a strong ETag: rendering is
deterministic, so the same inputs always give the same bytes.

Storage (Redis, shared by every process and the RQ worker):

- ``poster:img:<key>``: the JPEG bytes;
- ``poster:lru``: a sorted set of keys scored by last use (touched on every hit);
- ``poster:sizes``: a hash key → byte size, and ``poster:total``: their sum.

``put`` stores and evicts in one Lua script (atomic, so two workers never double-count):
while the total is above ``POSTER_CACHE_MAX_BYTES`` (default 64 MB, ~700 posters) the
least recently used posters are deleted. A hit costs one round trip (GET + ZADD in a
pipeline). When Redis does not answer, posters are rendered and not cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

import redis
from flask import current_app

from app.core.redis import get_redis

log = logging.getLogger(__name__)

PREFIX = "poster:img:"
LRU_KEY = "poster:lru"
SIZES_KEY = "poster:sizes"
TOTAL_KEY = "poster:total"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

# KEYS: image, lru, sizes, total. ARGV: key, bytes, now, max total, image prefix.
_PUT = """
local size = string.len(ARGV[2])
local old = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], size)
redis.call('INCRBY', KEYS[4], size - old)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local total = tonumber(redis.call('GET', KEYS[4]) or '0')
local evicted = 0
while total > tonumber(ARGV[4]) do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #oldest == 0 or oldest[1] == ARGV[1] then break end
  local gone = tonumber(redis.call('HGET', KEYS[3], oldest[1]) or '0')
  redis.call('ZREM', KEYS[2], oldest[1])
  redis.call('HDEL', KEYS[3], oldest[1])
  redis.call('DEL', ARGV[5] .. oldest[1])
  total = tonumber(redis.call('DECRBY', KEYS[4], gone))
  evicted = evicted + 1
end
return evicted
"""


def poster_key(parts: dict) -> str:
    """The cache key (and ETag) of a poster: a hash of its inputs."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


def max_bytes() -> int:
    return int(current_app.config.get("POSTER_CACHE_MAX_BYTES", DEFAULT_MAX_BYTES))


def get(key: str) -> bytes | None:
    """The cached poster for ``key`` (marked as just used), or None."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.get(PREFIX + key)
        pipe.zadd(LRU_KEY, {key: time.time()}, xx=True)  # only keys still stored
        data, _ = pipe.execute()
    except redis.RedisError as err:
        log.warning("poster cache unavailable: %s", err)
        return None
    return data


def exists(key: str) -> bool:
    """Whether a poster is cached (the spinner page asks this)."""
    try:
        return bool(get_redis().exists(PREFIX + key))
    except redis.RedisError:
        return False


def put(key: str, data: bytes) -> int:
    """Store a poster and evict the least recently used beyond the bound; returns how
    many were evicted."""
    try:
        client = get_redis()
        script = client.register_script(_PUT)
        return int(
            script(
                keys=[PREFIX + key, LRU_KEY, SIZES_KEY, TOTAL_KEY],
                args=[key, data, time.time(), max_bytes(), PREFIX],
            )
        )
    except redis.RedisError as err:
        log.warning("poster cache unavailable: %s", err)
        return 0


def stats() -> dict[str, int]:
    """How many posters and bytes are cached (admin page, tests)."""
    client = get_redis()
    return {
        "count": int(client.zcard(LRU_KEY)),
        "bytes": int(client.get(TOTAL_KEY) or 0),
    }
