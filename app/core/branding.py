"""The shop's name as customers read it, on pages and posters."""

from __future__ import annotations

from flask import current_app

DEFAULT_SHOP_NAME = "好物小店"  # when SHOP_NAME is not set


def shop_name() -> str:
    """The configured ``SHOP_NAME``, else the default."""
    return current_app.config.get("SHOP_NAME", DEFAULT_SHOP_NAME)
