"""Staff sign-in and sign-out, with failed attempts limited per username and IP in Redis."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from app.accounts.models import Staff
from app.admin import bp
from app.admin.decorators import public, staff_required
from app.admin.forms import LoginForm
from app.core.redis import get_redis
from app.core.time import utcnow
from app.extensions import db

MAX_FAILURES = 10
LOCK_SECONDS = 15 * 60
BAD_CREDENTIALS = "用户名或密码错误"
LOCKED = "登录失败次数过多，请 15 分钟后再试"

# Checked against when the username is unknown, so a wrong username costs the same
# hashing time as a wrong password and timing does not reveal which accounts exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def _failure_key(username: str, ip: str) -> str:
    digest = hashlib.sha256(f"{username.lower()}|{ip}".encode()).hexdigest()[:32]
    return f"admin:login-failures:{digest}"


def is_locked(username: str, ip: str) -> bool:
    """Whether ``username`` from ``ip`` has failed too often in the last 15 minutes."""
    count = get_redis().get(_failure_key(username, ip))
    return count is not None and int(count) >= MAX_FAILURES


def record_failure(username: str, ip: str) -> int:
    """Count one failed sign-in; the window starts at the first failure."""
    key = _failure_key(username, ip)
    pipe = get_redis().pipeline()
    pipe.set(key, 0, ex=LOCK_SECONDS, nx=True)  # INCR keeps this TTL: a fixed window
    pipe.incr(key)
    _, count = pipe.execute()
    return int(count)


def clear_failures(username: str, ip: str) -> None:
    """Forget failed attempts after a successful sign-in."""
    get_redis().delete(_failure_key(username, ip))


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
    if form.validate_on_submit():
        username = form.username.data.strip()
        ip = request.remote_addr or "-"
        if is_locked(username, ip):
            error, status = LOCKED, 429
        else:
            staff = authenticate(username, form.password.data)
            if staff is None:
                locked = record_failure(username, ip) >= MAX_FAILURES
                error, status = (LOCKED, 429) if locked else (BAD_CREDENTIALS, 401)
            elif not staff.active:
                error, status = "该账号已停用，请联系店主", 403
            else:
                clear_failures(username, ip)
                target = safe_next(form.next.data)
                # A fresh session: drop whatever the browser held before (a customer's
                # sign-in, old flashes) so nothing carries over into the staff session.
                session.clear()
                login_user(staff)
                staff.last_login_at = utcnow()
                db.session.commit()
                return redirect(target)
    elif request.method == "POST":
        status = 400
    return render_template("admin/login.html", form=form, error=error), status


@bp.post("/logout")
@staff_required
def logout():
    """Sign out (POST with the CSRF token, so a link elsewhere cannot sign staff out)."""
    logout_user()
    session.clear()
    flash("已退出登录", "success")
    return redirect(url_for("admin.login"))
