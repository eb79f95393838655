"""Staff accounts (owner only): list, add, deactivate and reactivate."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from app.accounts.models import Staff
from app.accounts.services import StaffError, upsert_staff
from app.admin import bp
from app.admin.decorators import owner_required
from app.admin.forms import ActionForm, StaffForm
from app.extensions import db


def set_staff_active(staff: Staff, active: bool, by: Staff) -> None:
    """Deactivate or reactivate ``staff``; nobody locks themself or the last owner out."""
    if not active:
        if staff.id == by.id:
            raise StaffError("不能停用自己的账号")
        if staff.is_owner:
            owners = db.session.scalar(
                select(func.count(Staff.id)).where(Staff.role == "owner", Staff.active.is_(True))
            )
            if (owners or 0) <= 1:
                raise StaffError("至少需要保留一个启用的店主账号")
    staff.active = active
    db.session.flush()


def _render(form: StaffForm, error: str | None = None, status: int = 200):
    rows = db.session.scalars(select(Staff).order_by(Staff.active.desc(), Staff.id)).all()
    return (
        render_template(
            "admin/staff.html", staff_list=rows, form=form, action=ActionForm(), error=error
        ),
        status,
    )


@bp.get("/staff")
@owner_required
def staff_list():
    """Every staff account, with a form to add one."""
    return _render(StaffForm(formdata=None))


@bp.post("/staff")
@owner_required
def staff_create():
    """Add a staff account (an existing username is refused, not overwritten)."""
    form = StaffForm()
    if not form.validate():
        field, errors = next((k, v) for k, v in form.errors.items() if v)
        label = getattr(form, field).label.text if hasattr(form, field) else ""
        return _render(form, f"{label}：{errors[0]}", 422)
    username = form.username.data.strip()
    if db.session.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        return _render(form, f"用户名“{username}”已存在", 422)
    try:
        staff, _ = upsert_staff(username, form.password.data, form.role.data)
    except StaffError as exc:
        db.session.rollback()
        return _render(form, str(exc), 422)
    db.session.commit()
    flash(f"已添加员工账号“{staff.username}”", "success")
    return redirect(url_for("admin.staff_list"))


@bp.post("/staff/<int:staff_id>/active")
@owner_required
def staff_toggle(staff_id: int):
    """Deactivate (``active=0``) or reactivate (``active=1``) a staff account."""
    staff = db.get_or_404(Staff, staff_id)
    active = request.form.get("active") == "1"
    try:
        set_staff_active(staff, active, current_user)
    except StaffError as exc:
        db.session.rollback()
        return _render(StaffForm(formdata=None), str(exc), 422)
    db.session.commit()
    flash(f"已{'启用' if active else '停用'}账号“{staff.username}”", "success")
    return redirect(url_for("admin.staff_list"))
