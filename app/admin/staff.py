"""Staff accounts (owner only): list, add, deactivate and reactivate, reset a password,
see who is signed in where and sign a member out everywhere."""

from __future__ import annotations

from collections import defaultdict

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user
from sqlalchemy import func, select

from app.accounts.models import Staff
from app.accounts.services import StaffError, change_password, upsert_staff
from app.accounts.staff_sessions import active_sessions, describe_device, end_all
from app.admin import bp
from app.admin.decorators import owner_required
from app.admin.forms import ActionForm, PasswordResetForm, StaffForm
from app.core.audit import edge_actor, record
from app.extensions import db


def set_staff_active(staff: Staff, active: bool, by: Staff) -> int:
    """Deactivate or reactivate ``staff``; nobody locks themself or the last owner out.

    Deactivating ends every session the member had open; returns how many ended.
    """
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
    return 0 if active else end_all(staff.id, "deactivated")


def sign_out_everywhere(staff: Staff) -> int:
    """End every session of ``staff`` and audit it (flushes); returns how many ended.

    The edge that calls it signs the browser out too when ``staff`` is the one asking.
    """
    ended = end_all(staff.id, "signed_out_everywhere")
    record(
        edge_actor(),
        "staff.sign_out_everywhere",
        "staff",
        staff.id,
        {"active_sessions": ended},
        {"active_sessions": 0},
    )
    return ended


def finish_own_sign_out(message: str):
    """After ending the sessions of the signed-in member: sign this browser out too."""
    logout_user()
    session.clear()
    flash(message, "success")
    return redirect(url_for("admin.login"))


def _render(form: StaffForm, error: str | None = None, status: int = 200):
    rows = db.session.scalars(select(Staff).order_by(Staff.active.desc(), Staff.id)).all()
    sessions = defaultdict(list)
    for row in active_sessions():
        sessions[row.staff_id].append(row)
    return (
        render_template(
            "admin/staff.html",
            staff_list=rows,
            sessions=sessions,
            describe_device=describe_device,
            form=form,
            reset_form=PasswordResetForm(formdata=None),
            action=ActionForm(),
            error=error,
        ),
        status,
    )


@bp.get("/staff")
@owner_required
def staff_list():
    """Every staff account with where it is signed in, and a form to add one."""
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
    """Deactivate (``active=0``, signing the member out everywhere) or reactivate (``active=1``)."""
    staff = db.get_or_404(Staff, staff_id)
    active = request.form.get("active") == "1"
    was_active = staff.active
    try:
        ended = set_staff_active(staff, active, current_user)
    except StaffError as exc:
        db.session.rollback()
        return _render(StaffForm(formdata=None), str(exc), 422)
    if was_active != active:
        record(
            edge_actor(),
            "staff.activate" if active else "staff.deactivate",
            "staff",
            staff.id,
            {"active": was_active},
            {"active": active, **({} if active else {"sessions_ended": ended})},
        )
    db.session.commit()
    flash(f"已{'启用' if active else '停用'}账号“{staff.username}”", "success")
    return redirect(url_for("admin.staff_list"))


@bp.post("/staff/<int:staff_id>/password")
@owner_required
def staff_reset_password(staff_id: int):
    """Give another member a new password; every session they had open ends."""
    staff = db.get_or_404(Staff, staff_id)
    if staff.id == current_user.id:
        return _render(StaffForm(formdata=None), "请在“我的账号”中修改自己的密码", 422)
    form = PasswordResetForm()
    if not form.validate():
        return _render(StaffForm(formdata=None), next(iter(form.errors.values()))[0], 422)
    try:
        ended = change_password(staff, form.password.data)
    except StaffError as exc:
        db.session.rollback()
        return _render(StaffForm(formdata=None), str(exc), 422)
    record(edge_actor(), "staff.password_reset", "staff", staff.id, {}, {"sessions_ended": ended})
    db.session.commit()
    flash(f"已重置“{staff.username}”的密码，其登录中的设备已全部退出", "success")
    return redirect(url_for("admin.staff_list"))


@bp.post("/staff/<int:staff_id>/sign-out-everywhere")
@owner_required
def staff_sign_out_everywhere(staff_id: int):
    """End every session of a member (the owner's own included, when it is theirs)."""
    staff = db.get_or_404(Staff, staff_id)
    ended = sign_out_everywhere(staff)
    db.session.commit()
    if staff.id == current_user.id:
        return finish_own_sign_out(f"已退出所有设备（{ended} 个），请重新登录")
    flash(f"已让“{staff.username}”退出所有设备（{ended} 个）", "success")
    return redirect(url_for("admin.staff_list"))
