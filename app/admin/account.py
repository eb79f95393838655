"""我的账号 (every staff member): change one's own password, see where one is signed in,
and sign out everywhere."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from app.accounts.services import StaffError, change_password
from app.accounts.staff_sessions import active_sessions, describe_device
from app.admin import bp
from app.admin.decorators import staff_required
from app.admin.forms import ActionForm, PasswordChangeForm
from app.admin.staff import finish_own_sign_out, sign_out_everywhere
from app.core.audit import edge_actor, record
from app.extensions import db


def _render(form: PasswordChangeForm, error: str | None = None, status: int = 200):
    return (
        render_template(
            "admin/account.html",
            form=form,
            sessions=active_sessions(current_user.id),
            current_session_id=current_user.current_session.id,
            describe_device=describe_device,
            action=ActionForm(),
            error=error,
        ),
        status,
    )


@bp.get("/account")
@staff_required
def account():
    """One's own account: the password form and the devices signed in."""
    return _render(PasswordChangeForm(formdata=None))


@bp.post("/account/password")
@staff_required
def account_password():
    """Change one's own password (the current one first); other devices are signed out."""
    form = PasswordChangeForm()
    if not form.validate():
        return _render(form, next(iter(form.errors.values()))[0], 422)
    me = current_user._get_current_object()
    if not me.check_password(form.current.data):
        return _render(form, "当前密码不正确", 422)
    try:
        ended = change_password(me, form.password.data, keep_session_id=me.current_session.id)
    except StaffError as exc:
        db.session.rollback()
        return _render(form, str(exc), 422)
    record(edge_actor(), "staff.password_change", "staff", me.id, {}, {"sessions_ended": ended})
    db.session.commit()
    flash("密码已修改，其他设备上的登录已全部退出", "success")
    return redirect(url_for("admin.account"))


@bp.post("/account/sign-out-everywhere")
@staff_required
def account_sign_out_everywhere():
    """End every session of one's own, this one included."""
    ended = sign_out_everywhere(current_user._get_current_object())
    db.session.commit()
    return finish_own_sign_out(f"已退出所有设备（{ended} 个），请重新登录")
