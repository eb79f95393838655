"""Who may open an admin page: signed-in, active staff; some pages only the owner.

Every admin view carries one of these decorators, and the blueprint also refuses by
default (``guard_blueprint``), so a view someone forgets to decorate is still closed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import current_app, render_template, request
from flask_login import current_user, logout_user

# Views anyone may open (the login page itself); marked with @public.
PUBLIC_ATTR = "_admin_public"
ROLE_ATTR = "_admin_role"


def refusal():
    """The answer for whoever may not see admin pages, or None when the visitor is staff.

    Anonymous → the login page (Flask-Login's handler adds ``next``); a customer → a
    Chinese 403 page; a deactivated staff account → signed out and refused.
    """
    is_staff = getattr(current_user, "is_staff", False)
    # Checked first: Flask-Login counts an inactive account as not authenticated, and a
    # deactivated clerk deserves to be told why rather than sent to the login form.
    if is_staff and not current_user.active:
        logout_user()
        return forbidden("该员工账号已停用，请联系店主。")
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not is_staff:
        return forbidden("此页面仅限商家员工访问。如果您是员工，请先用员工账号登录。")
    return None


def forbidden(message: str):
    """Render the admin's 403 page with ``message``."""
    return render_template("admin/forbidden.html", message=message), 403


def staff_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only signed-in, active staff (any role) may call ``view``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        refused = refusal()
        if refused is not None:
            return refused
        return view(*args, **kwargs)

    setattr(wrapper, ROLE_ATTR, "staff")
    return wrapper


def owner_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only the shop owner may call ``view`` (e.g. managing staff accounts)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        refused = refusal()
        if refused is not None:
            return refused
        if not current_user.is_owner:
            return forbidden("只有店主可以进行此操作。")
        return view(*args, **kwargs)

    setattr(wrapper, ROLE_ATTR, "owner")
    return wrapper


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``view`` as open to everyone (only the login page)."""
    setattr(view, PUBLIC_ATTR, True)
    return view


def guard_blueprint():
    """``before_request`` of the admin blueprint: refuse by default.

    A view that is neither marked public nor carries a role decorator is still closed to
    anyone but staff, so a forgotten decorator cannot open a page.
    """
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or getattr(view, PUBLIC_ATTR, False):
        return None
    return refusal()
