"""Helpers shared by the admin tests (this module holds no tests).

The test app keeps CSRF on, so every POST carries a token fetched from a real form page.
"""

from __future__ import annotations

import re

from flask import g, has_app_context
from flask.testing import FlaskClient

from app.accounts.staff_sessions import STAFF_SESSION_KEY, start_session
from app.extensions import db
from tests.support.servers import QuickCookieJar

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class FreshClient(QuickCookieJar, FlaskClient):
    """A test client whose every request starts with Flask-Login and Flask-WTF forgetting.

    A test holding an app context (the ``make`` fixture) shares its ``g`` with the
    client's requests, because Flask reuses a pushed app context. Flask-Login caches the
    signed-in principal in ``g._login_user`` and Flask-WTF the CSRF token in
    ``g.csrf_token``; left there, a second client (or a sign-out) would see the first
    one's. A real server starts each request with an empty ``g``; so does this client.
    """

    def open(self, *args, **kwargs):
        if has_app_context():
            g.pop("_login_user", None)
            g.pop("csrf_token", None)
        return super().open(*args, **kwargs)


def fresh_client(app) -> FreshClient:
    """A cookie-keeping ``FreshClient`` for ``app``."""
    return FreshClient(app, app.response_class, use_cookies=True)


def csrf_token(client, path: str = "/admin/login") -> str:
    """The CSRF token of the form on ``path`` (redirects followed), as a browser sees it."""
    response = client.get(path, follow_redirects=True)
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no csrf_token on {path} ({response.status_code})"
    return match.group(1)


def post(client, path: str, data: dict | None = None, *, token_from: str = "/admin/", **kwargs):
    """POST ``data`` to ``path`` with a CSRF token taken from the page ``token_from``."""
    body = {"csrf_token": csrf_token(client, token_from), **(data or {})}
    return client.post(path, data=body, **kwargs)


def sign_in(client, username: str, password: str = "password123", next_path: str = ""):
    """Sign in through the real login form."""
    token = csrf_token(client, "/admin/login")
    return client.post(
        "/admin/login",
        data={"csrf_token": token, "username": username, "password": password, "next": next_path},
    )


def login_staff(client, staff, ip: str = "127.0.0.1", user_agent: str = "pytest") -> str:
    """Sign ``client`` in as ``staff`` without the form: open a real server-side session
    (as the login view does) and put its token in the client's cookie. Returns the token."""
    with client.application.app_context():
        _, token = start_session(staff.id, ip, user_agent)
        db.session.commit()
    with client.session_transaction() as session:
        session["_user_id"] = staff.get_id()
        session["_fresh"] = True
        session[STAFF_SESSION_KEY] = token
    return token


def text(response) -> str:
    return response.get_data(as_text=True)
