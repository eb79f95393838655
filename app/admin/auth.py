"""Staff sign-in and sign-out.

Each sign-in opens a server-side session (``app.accounts.staff_sessions``) whose token is
the only thing the cookie carries; sign-out ends it, so the old cookie opens nothing.
Failed attempts are limited per account and address (``app.admin.login_limits``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts.models import Staff
from app.accounts.staff_sessions import STAFF_SESSION_KEY, end_session, start_session
from app.admin import bp
from app.admin.decorators import public, staff_required
from app.admin.forms import LoginForm
from app.admin.login_limits import current_lock, record_failure, record_success
from app.core.time import utcnow
from app.extensions import db

BAD_CREDENTIALS = "用户名或密码错误"

# Checked against when the username is unknown, so a wrong username costs the same
# hashing time as a wrong password and timing does not reveal which accounts exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def safe_next(target: str | None) -> str:
    """``target`` when it is a local /admin path, else the dashboard (no open redirect)."""
    default = url_for("admin.dashboard")
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return default
    if parts.path != "/admin" and not parts.path.startswith("/admin/"):
        return default
    if parts.path.rstrip("/") in ("/admin/login", "/admin/logout"):
        return default
    return target


def authenticate(username: str, password: str) -> Staff | None:
    """The staff account whose password matches, or None (inactive accounts included)."""
    staff = db.session.scalar(select(Staff).where(Staff.username == username))
    if staff is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return staff if staff.check_password(password) else None


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """Show the sign-in form; on success go to ``next`` (a local admin path)."""
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
        if getattr(current_user, "is_staff", False) and current_user.active:
            return redirect(safe_next(form.next.data))
    error = None
    status = 200
    headers: dict[str, str] = {}
    if form.validate_on_submit():
        username = form.username.data.strip()
        ip = request.remote_addr or "-"
        lock = current_lock(username, ip)
        staff = None if lock else authenticate(username, form.password.data)
        if lock is None and staff is None:
            known = db.session.scalar(select(Staff.id).where(Staff.username == username))
            lock = record_failure(username, ip, known)
            db.session.commit()  # the audit rows of a lock that just started
            if lock is None:
                error, status = BAD_CREDENTIALS, 401
        if lock is not None:
            error, status = lock.message, 429
            headers["Retry-After"] = str(lock.seconds)
        elif staff is not None and not staff.active:
            error, status = "该账号已停用，请联系店主", 403
        elif staff is not None:
            record_success(username, ip)
            target = safe_next(form.next.data)
            # A fresh session: drop whatever the browser held before (a customer's
            # sign-in, old flashes) so nothing carries over into the staff session.
            session.clear()
            _, token = start_session(staff.id, ip, request.user_agent.string)
            login_user(staff)
            session[STAFF_SESSION_KEY] = token
            staff.last_login_at = utcnow()
            db.session.commit()
            return redirect(target)
    elif request.method == "POST":
        status = 400
    return render_template("admin/login.html", form=form, error=error), status, headers


@bp.post("/logout")
@staff_required
def logout():
    """Sign out (POST with the CSRF token, so a link elsewhere cannot sign staff out).

    The server-side session ends, so a copy of the cookie opens nothing afterwards."""
    if current_user.current_session is not None:
        end_session(current_user.current_session, "logout")
        db.session.commit()
    logout_user()
    session.clear()
    flash("已退出登录", "success")
    return redirect(url_for("admin.login"))
