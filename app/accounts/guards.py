"""Who may call a customer endpoint: the guard every customer JSON view puts first.

Here, in accounts, so any area's views (orders, cart, addresses, distribution, cloud,
posters, incentives) can reach it without importing one another or ``app.api``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import abort, g
from flask_login import current_user

from app.core.errors import ApiError


def customer_required(view: Callable) -> Callable:
    """Answer 401 before anything else unless a customer (not staff) is signed in.

    Put it between the route and ``spec.validate`` so an anonymous caller learns to sign
    in rather than which fields are wrong.
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        person = current_user
        if not person.is_authenticated or getattr(person, "is_staff", False):
            raise ApiError(401, "unauthorized", "请先登录")
        g.customer_id = person.id
        return view(*args, **kwargs)

    return wrapper


def customer_id() -> int:
    """The signed-in customer's id (set by ``customer_required``)."""
    return g.customer_id


def page_customer_id(after: str = "") -> int:
    """The signed-in customer's id on an H5 page (behind ``login_required``). Staff
    previewing the shop have no orders or coupons: a 403 page says to sign in with WeChat
    (``after`` says what for, e.g. "后再购物")."""
    if current_user.is_staff:
        abort(403, description=f"请使用微信登录顾客账号{after}")
    return current_user.id
