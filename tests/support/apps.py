"""A second app on the test's database and Redis, with a few settings changed.

Tests of deployment settings (a replica bind, a proxy in front, a short lock timeout)
build the app again as production would with those settings, on the same database,
Redis, upload folder and WeChat stand-in as the test's own app.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask

from app import create_app
from app.extensions import db

# What ties an app to the test's world: its database, Redis, uploads and the stand-ins.
SHARED_KEYS = (
    "SQLALCHEMY_DATABASE_URI",
    "REDIS_URL",
    "UPLOAD_DIR",
    "PUBLIC_BASE_URL",
    "WECHAT_API_BASE",
    "WECHAT_OPEN_BASE",
    "WECHAT_MP_BASE",
    "WECHAT_PAY_API_BASE",
    "KUAIDI100_BASE_URL",
)


def second_app(app: Flask, **overrides: Any) -> Flask:
    """The test app built again (test settings, same world) with ``overrides``."""
    config = {"ENV_NAME": "test", **{key: app.config[key] for key in SHARED_KEYS}}
    other = create_app({**config, **overrides})
    other.test_client_class = app.test_client_class
    return other


@contextmanager
def second_app_running(app: Flask, **overrides: Any) -> Iterator[Flask]:
    """``second_app``, its engines disposed at the end (their connections closed)."""
    other = second_app(app, **overrides)
    try:
        yield other
    finally:
        with other.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()
