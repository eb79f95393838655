"""How Flask-Login finds the signed-in person, and what happens when there is none."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask_login import LoginManager

from app.extensions import db


def load_principal(user_id: str):
    """Load a customer ("user:ID") or a staff account ("staff:ID") from the session."""
    from app.accounts.models import Staff, User

    kind, _, raw_id = (user_id or "").partition(":")
    if not raw_id.isdecimal():
        return None
    model = {"user": User, "staff": Staff}.get(kind)
    return db.session.get(model, int(raw_id)) if model else None


def configure_login(manager: LoginManager) -> None:
    """Install the loader and the "not signed in" answer for each area."""
    manager.user_loader(load_principal)
    manager.session_protection = "basic"

    @manager.unauthorized_handler
    def unauthorized():
        from app.core.errors import ApiError

        if request.path.startswith("/api/"):
            raise ApiError(401, "unauthorized", "请先登录")
        if request.path.startswith("/admin"):
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
