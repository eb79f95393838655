"""``?ref=CODE`` on any H5 page: the binding-by-link door.

An app-wide ``before_request`` (so it runs before the cached catalog pages are served)
looks at the query string only when it carries ``ref``:

- an unknown, pending or disabled code is ignored silently;
- a signed-in customer: ``record_ref(user, distributor, "link")`` and commit, once per
  session for the same code (a customer browsing a shared link would otherwise write on
  every page);
- an anonymous visitor: the code waits in the session and is applied right after WeChat
  sign-in (Flask-Login's ``user_logged_in`` signal, sent by ``login_user`` in the OAuth
  callback, which commits afterwards).

Self-referrals and binding a distributor below their own descendant are refused by the
binding service, not here. Every such GET is also counted as a visit of the promotion
funnel (app/distribution/funnel.py: one Redis call, no database).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, request, session
from flask_login import current_user, user_logged_in
from sqlalchemy.exc import SQLAlchemyError

from app.distribution import funnel
from app.distribution.binding import record_ref
from app.distribution.distributors import active_distributor_by_code
from app.extensions import db

log = logging.getLogger(__name__)

bp = Blueprint("referral", __name__)

PENDING_KEY = "ref_pending"  # code seen while anonymous, applied at sign-in
DONE_KEY = "ref_done"  # "user_id:CODE" already recorded in this session
MAX_CODE = 16
# Machine doors and staff pages are not where customers arrive through a shared link.
SKIP_PREFIXES = ("/api/", "/admin", "/static/", "/media/", "/pay/", "/wechat", "/healthz")


def _ref_code() -> str | None:
    raw = request.args.get("ref")
    if not raw:
        return None
    code = raw.strip().upper()
    if not code or len(code) > MAX_CODE or not code.isalnum():
        return None
    return code


def _customer():
    person = current_user
    if not person.is_authenticated or getattr(person, "is_staff", False):
        return None
    return person


def apply_ref(user_id: int, code: str) -> bool:
    """Record ``code`` for ``user_id`` if it is an active distributor's (flushes).

    True when the code was known (whatever the binding rules then decided).
    """
    distributor = active_distributor_by_code(code)
    if distributor is None:
        return False
    record_ref(user_id, distributor, "link")
    return True


@bp.before_app_request
def capture_ref() -> None:
    """Remember or record the referral of a GET to an H5 page that carries ``?ref=``."""
    if request.method not in ("GET", "HEAD") or request.path.startswith(SKIP_PREFIXES):
        return
    code = _ref_code()
    if code is None:
        return
    if request.method == "GET":
        funnel.count_page_view(code)
    person = _customer()
    if person is None:
        if getattr(current_user, "is_staff", False) or session.get(PENDING_KEY) == code:
            return
        if active_distributor_by_code(code) is not None:
            session[PENDING_KEY] = code
        return
    marker = f"{person.id}:{code}"
    if session.get(DONE_KEY) == marker:
        return
    try:
        if apply_ref(person.id, code):
            db.session.commit()
    except SQLAlchemyError:
        # The page matters more than the referral: show it, log what went wrong.
        db.session.rollback()
        log.exception("recording ref %s for user %s failed", code, person.id)
        return
    session[DONE_KEY] = marker


def _on_login(app: Flask, user, **_extra) -> None:
    """Apply the code an anonymous visitor arrived with, now that we know who they are.

    Runs inside ``login_user``; the sign-in view commits afterwards.
    """
    if not getattr(user, "is_staff", False):
        funnel.merge_on_sign_in(user.id)
    code = session.pop(PENDING_KEY, None)
    if not code or getattr(user, "is_staff", False):
        return
    try:
        with db.session.begin_nested():
            apply_ref(user.id, code)
    except SQLAlchemyError:
        log.exception("applying ref %s after sign-in of user %s failed", code, user.id)
        return
    session[DONE_KEY] = f"{user.id}:{code}"


@bp.record_once
def _connect_signal(state) -> None:
    # One receiver per app (sender=app), so apps built by tests do not see each other.
    user_logged_in.connect(_on_login, sender=state.app, weak=False)
