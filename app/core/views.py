"""Site-wide doors that belong to no area: health check and uploaded media."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, send_from_directory
from sqlalchemy import text

from app.core.redis import get_redis
from app.extensions import db

bp = Blueprint("core", __name__)


@bp.get("/healthz")
def healthz():
    """200 when the database and Redis answer, 503 (with which failed) otherwise."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure at all means "not healthy"
        current_app.logger.warning("healthz database: %s", exc)
        checks["database"] = "error"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        current_app.logger.warning("healthz redis: %s", exc)
        checks["redis"] = "error"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "error", checks=checks), 200 if healthy else 503


@bp.get("/media/<path:filename>")
def media(filename: str):
    """Serve an uploaded file (product images). send_from_directory refuses '..' paths."""
    response = send_from_directory(current_app.config["UPLOAD_DIR"], filename, max_age=86400 * 30)
    return response
