"""How Flask-Login finds the signed-in person, and what happens when there is none.

Customers are found by id alone. Staff are found only through an active server-side
session (``app.accounts.staff_sessions``): the cookie must carry the token of a session
that was not ended and has not expired, so a copied or replayed cookie stops working the
moment the session ends. Flask-Login's remember-me cookie cannot bring a staff member
back either: it carries no session token, so the loader refuses it.
"""

from __future__ import annotations

from flask import current_app, g, redirect, request, session, url_for
from flask_login import LoginManager, current_user

from app.accounts.customer_tokens import ACCESS_PREFIX, token_for_access
from app.accounts.models import Staff, User
from app.accounts.staff_sessions import STAFF_SESSION_KEY, find_active, touch
from app.core.errors import ApiError
from app.core.params import MAX_ID
from app.extensions import db

# Flask-Login's own keys in the session, dropped with ours when a staff session is gone.
_SIGN_IN_KEYS = ("_user_id", "_fresh", "_id", STAFF_SESSION_KEY)


def load_principal(user_id: str):
    """Load a customer ("user:ID") or a staff account ("staff:ID") from the session."""
    kind, _, raw_id = (user_id or "").partition(":")
    if not raw_id.isdecimal() or int(raw_id) > MAX_ID:
        return None
    if kind == "user":
        return db.session.get(User, int(raw_id))
    if kind != "staff":
        return None
    row = find_active(session.get(STAFF_SESSION_KEY), int(raw_id))
    if row is None:
        return None
    staff = db.session.get(Staff, row.staff_id)
    if staff is not None:
        staff.current_session = row  # the session this request runs in (log-out ends it)
    return staff


# The customer JSON API; the merchant Open API (/api/v1/admin) has its own sk_ tokens.
CUSTOMER_API_PREFIX = "/api/v1/"
MERCHANT_API_PREFIX = "/api/v1/admin"


def load_customer_from_bearer(req):
    """A customer named by ``Authorization: Bearer ca_...`` on the customer JSON API (the
    mini-program), or None. Sets ``g.customer_token`` (pay reads its channel)."""
    if not req.path.startswith(CUSTOMER_API_PREFIX) or req.path.startswith(MERCHANT_API_PREFIX):
        return None
    scheme, _, secret = req.headers.get("Authorization", "").strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(ACCESS_PREFIX):
        return None
    row = token_for_access(secret)
    if row is None:
        return None
    g.customer_token = row
    return db.session.get(User, row.user_id)


def refresh_staff_session() -> None:
    """``before_request``: keep a staff session alive, or drop one that has ended.

    Runs before any view, so the last-seen write (at most once a minute) commits alone.
    A cookie whose staff session ended or expired loses its sign-in keys, and the request
    goes on as anonymous (admin pages then send it to the login form).
    """
    if (
        request.endpoint == "static"
        or current_app.config["SESSION_COOKIE_NAME"] not in request.cookies
    ):
        return  # nothing to check (and no Vary: Cookie on WeChat's pushes and pay notices)
    if not str(session.get("_user_id", "")).startswith("staff:"):
        return
    user = current_user._get_current_object()
    if not getattr(user, "is_staff", False):
        for key in _SIGN_IN_KEYS:
            session.pop(key, None)
        return
    if touch(user.current_session):
        db.session.commit()


def configure_login(manager: LoginManager) -> None:
    """Install the loader and the "not signed in" answer for each area."""
    manager.user_loader(load_principal)
    manager.request_loader(load_customer_from_bearer)
    manager.session_protection = "basic"

    @manager.unauthorized_handler
    def unauthorized():
        if request.path.startswith("/api/"):
            raise ApiError(401, "unauthorized", "请先登录")
        if request.path.startswith("/admin"):
            return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
