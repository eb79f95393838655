"""Account operations. They flush; the caller (request, CLI) commits."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.accounts.models import STAFF_ROLES, Staff
from app.extensions import db

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")


class StaffError(ValueError):
    """A staff account request that cannot be carried out (message in Chinese)."""


def upsert_staff(username: str, password: str, role: str = "staff") -> tuple[Staff, bool]:
    """Create the staff account ``username``, or reset its password and role.

    Returns (staff, created). Passwords shorter than 8 characters are refused.
    """
    if not USERNAME_RE.match(username or ""):
        raise StaffError("用户名需为 3-64 位字母、数字、点、下划线或短横线")
    if len(password or "") < 8:
        raise StaffError("密码至少 8 位")
    if role not in STAFF_ROLES:
        raise StaffError("角色只能是 owner 或 staff")
    staff = db.session.scalar(select(Staff).where(Staff.username == username))
    created = staff is None
    if created:
        staff = Staff(username=username)
        db.session.add(staff)
    staff.role = role
    staff.active = True
    staff.set_password(password)
    db.session.flush()
    return staff, created
