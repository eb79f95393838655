"""Merchant admin site under /admin (staff only)."""

from flask import Blueprint

bp = Blueprint("admin", __name__)

from app.admin import views  # noqa: E402,F401  (routes attach to bp)
