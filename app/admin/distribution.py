"""Admin pages of distribution: settings, grades, distributors, customer bindings.

Views read the form (app.admin.distribution_forms), call the services of
app.distribution.admin_services, commit once and redirect; a refused change comes back as
the service's Chinese message on the page (422/409), never a 500.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import User
from app.admin import bp
from app.admin.decorators import owner_required, staff_required
from app.admin.distribution_forms import (
    grade_from_form,
    grade_to_form,
    settings_from_form,
    settings_to_form,
)
from app.admin.orders import actor_label
from app.core.params import bounded_int, page_arg
from app.distribution import admin_services as svc
from app.distribution.distributors import DistributionError, get_distribution_settings
from app.distribution.ledger import balances
from app.distribution.models import DISTRIBUTOR_STATUSES, DistributionSettings, Distributor, Grade
from app.distribution.payout_cap import RateRefused
from app.distribution.team import team_stats
from app.extensions import db
from app.incentives.audit import BINDING_OF_FORM_USER, audited, row, rows
from app.ledger.models import LedgerEntry
from app.orders.states import InvalidTransition

PER_PAGE = 20


def _actor() -> str:
    return current_user.get_id()  # "staff:<id>"


def transition_message(err: InvalidTransition) -> str:
    """A refused status change in people's words (someone else changed it meanwhile)."""
    labels = svc.DISTRIBUTOR_STATUS_LABELS
    return f"分销员当前状态为“{labels.get(err.current, err.current)}”，不能进行此操作，请刷新后查看"


def find_distributor(text: str) -> Distributor | None:
    """A distributor by id (digits) or public code, as staff type it."""
    text = (text or "").strip()
    if not text:
        return None
    if text.lstrip("#").isdecimal() and len(text) < 10:
        return db.session.get(Distributor, int(text.lstrip("#")))
    return db.session.scalar(select(Distributor).where(Distributor.code == text.upper()[:16]))


# --- settings ---------------------------------------------------------------------------


def _render_settings(values: dict[str, str], error: str | None = None, field: str = "", status=200):
    settings = get_distribution_settings()
    return (
        render_template(
            "admin/distribution/settings.html",
            values=values,
            warnings=svc.settings_warnings(settings),
            legal_note=svc.LEGAL_NOTE,
            join_modes=svc.JOIN_MODE_LABELS,
            bind_modes=svc.BIND_MODE_LABELS,
            channels=svc.PAYOUT_CHANNEL_LABELS,
            error=error,
            error_field=field,
        ),
        status,
    )


@bp.get("/distribution/settings")
@owner_required
def distribution_settings():
    """The shop's distribution settings form."""
    settings = get_distribution_settings()
    db.session.commit()  # get_distribution_settings may have created the row
    return _render_settings(settings_to_form(settings))


@bp.post("/distribution/settings")
@owner_required
@audited("distribution_settings.update", rows(DistributionSettings, "distribution_settings"))
def distribution_settings_save():
    """Save the settings; a bad value re-shows the form with the reason."""
    typed = dict(request.form.items())
    try:
        result = svc.update_settings(settings_from_form(request.form), owner=current_user.is_owner)
    except (svc.SettingsError, RateRefused) as exc:
        db.session.rollback()
        return _render_settings(typed, exc.message, exc.field, exc.status)
    db.session.commit()
    flash("分销设置已保存", "success")
    for warning in result.warnings:
        flash(warning, "error")
    return redirect(url_for("admin.distribution_settings"))


# --- grades -----------------------------------------------------------------------------


def _render_grades(
    error: str | None = None,
    status: int = 200,
    new: dict | None = None,
    error_id: int | None = None,
):
    grades = svc.list_grades()
    counts = dict(
        db.session.execute(
            select(Distributor.grade_id, db.func.count(Distributor.id)).group_by(
                Distributor.grade_id
            )
        ).all()
    )
    return (
        render_template(
            "admin/distribution/grades.html",
            grades=[(g, grade_to_form(g)) for g in grades],
            counts=counts,
            new=new or {},
            error=error,
            error_id=error_id,
        ),
        status,
    )


@bp.get("/distribution/grades")
@staff_required
def distribution_grades():
    """Grades with their rates and upgrade conditions; a row to add one."""
    return _render_grades()


@bp.post("/distribution/grades")
@staff_required
@audited("grade.create", rows(Grade, "grade"))
def distribution_grade_create():
    """Add a grade."""
    try:
        grade = svc.save_grade(grade_from_form(request.form), owner=current_user.is_owner)
        db.session.commit()
    except (svc.SettingsError, RateRefused) as exc:
        db.session.rollback()
        return _render_grades(exc.message, exc.status, new=dict(request.form.items()))
    except IntegrityError:
        db.session.rollback()
        return _render_grades("等级名称已存在", 409, new=dict(request.form.items()))
    flash(f"已添加等级“{grade.name}”", "success")
    return redirect(url_for("admin.distribution_grades"))


@bp.post("/distribution/grades/<int:grade_id>")
@staff_required
@audited("grade.update", rows(Grade, "grade"))
def distribution_grade_update(grade_id: int):
    """Change a grade's name, rates or conditions."""
    grade = db.get_or_404(Grade, grade_id)
    try:
        svc.save_grade(grade_from_form(request.form), grade, owner=current_user.is_owner)
        db.session.commit()
    except (svc.SettingsError, RateRefused) as exc:
        db.session.rollback()
        return _render_grades(exc.message, exc.status, error_id=grade_id)
    except IntegrityError:
        db.session.rollback()
        return _render_grades("等级名称已存在", 409, error_id=grade_id)
    flash(f"等级“{grade.name}”已保存", "success")
    return redirect(url_for("admin.distribution_grades"))


@bp.post("/distribution/grades/<int:grade_id>/delete")
@staff_required
@audited("grade.delete", rows(Grade, "grade"))
def distribution_grade_delete(grade_id: int):
    """Delete a grade nobody holds."""
    grade = db.get_or_404(Grade, grade_id)
    name = grade.name
    try:
        svc.delete_grade(grade)
    except DistributionError as exc:
        db.session.rollback()
        return _render_grades(exc.message, exc.status, error_id=grade_id)
    db.session.commit()
    flash(f"已删除等级“{name}”", "success")
    return redirect(url_for("admin.distribution_grades"))


# --- distributors -----------------------------------------------------------------------

STATUS_TABS = [
    ("", "全部"),
    ("pending", "待审核"),
    ("active", "正常"),
    ("disabled", "已停用"),
    ("rejected", "已拒绝"),
]


@bp.get("/distributors")
@staff_required
def distributors():
    """Distributors by status (applications first in their tab), searchable."""
    status = request.args.get("status", "")
    status = status if status in DISTRIBUTOR_STATUSES else ""
    q = (request.args.get("q") or "").strip()[:50]
    pagination = db.paginate(
        svc.distributor_query(status or None, q or None),
        page=page_arg(),
        per_page=PER_PAGE,
        error_out=False,
    )
    rows = []
    for d in pagination.items:
        parent = db.session.get(Distributor, d.parent_id) if d.parent_id else None
        rows.append({"d": d, "parent": parent, "team": team_stats(d.id), "money": balances(d.id)})
    args = {k: v for k, v in {"status": status, "q": q}.items() if v}
    return render_template(
        "admin/distribution/distributors.html",
        pagination=pagination,
        rows=rows,
        status=status,
        q=q,
        args=args,
        tabs=STATUS_TABS,
        counts=svc.status_counts(),
        labels=svc.DISTRIBUTOR_STATUS_LABELS,
        join_mode=get_distribution_settings().join_mode,
    )


def _render_detail(d: Distributor, error: str | None = None, status: int = 200):
    parent = db.session.get(Distributor, d.parent_id) if d.parent_id else None
    history = svc.distributor_history(d.id)
    from app.admin.orders import _actor_names

    names = _actor_names(history)
    customers = db.paginate(
        svc.binding_query(distributor_id=d.id), page=page_arg(), per_page=PER_PAGE, error_out=False
    )
    entries = list(
        db.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.distributor_id == d.id)
            .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
            .limit(10)
        )
    )
    children = list(
        db.session.scalars(
            select(Distributor)
            .where(Distributor.parent_id == d.id)
            .order_by(Distributor.id)
            .limit(50)
        )
    )
    return (
        render_template(
            "admin/distribution/distributor_detail.html",
            d=d,
            parent=parent,
            children=children,
            team=team_stats(d.id),
            money=balances(d.id),
            customers=customers,
            entries=entries,
            history=[(c, actor_label(c.actor, names)) for c in history],
            grades=svc.list_grades(),
            labels=svc.DISTRIBUTOR_STATUS_LABELS,
            kind_labels=svc.KIND_LABELS,
            state_labels=svc.STATE_LABELS,
            label=svc.distributor_label,
            error=error,
        ),
        status,
    )


@bp.get("/distributors/<int:distributor_id>")
@staff_required
def distributor_detail(distributor_id: int):
    """One distributor: team counts, balances, parent, grade, customers, history."""
    return _render_detail(db.get_or_404(Distributor, distributor_id))


def _back(d: Distributor) -> str:
    if request.form.get("back") == "list":
        return url_for("admin.distributors", status=request.form.get("status") or None)
    return url_for("admin.distributor_detail", distributor_id=d.id)


def _status_action(distributor_id: int, action, done: str):
    d = db.get_or_404(Distributor, distributor_id)
    back = _back(d)
    try:
        action(d)
    except InvalidTransition as exc:
        db.session.rollback()
        flash(transition_message(exc), "error")
        return redirect(back)
    except DistributionError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back)
    db.session.commit()
    flash(f"{svc.distributor_label(d)} {done}", "success")
    return redirect(back)


@bp.post("/distributors/<int:distributor_id>/approve")
@staff_required
@audited("distributor.approve", row(Distributor, "distributor_id"))
def distributor_approve(distributor_id: int):
    """Approve an application."""
    return _status_action(
        distributor_id, lambda d: svc.approve_distributor(d, _actor()), "已通过审核"
    )


@bp.post("/distributors/<int:distributor_id>/reject")
@staff_required
@audited("distributor.reject", row(Distributor, "distributor_id"))
def distributor_reject(distributor_id: int):
    """Refuse an application with a reason."""
    reason = request.form.get("reason", "")[:200]
    return _status_action(
        distributor_id, lambda d: svc.reject_distributor(d, _actor(), reason), "的申请已拒绝"
    )


@bp.post("/distributors/<int:distributor_id>/disable")
@staff_required
@audited("distributor.disable", row(Distributor, "distributor_id"))
def distributor_disable(distributor_id: int):
    """Stop a distributor earning."""
    reason = request.form.get("reason", "")[:200]
    return _status_action(
        distributor_id, lambda d: svc.disable_distributor(d, _actor(), reason), "已停用"
    )


@bp.post("/distributors/<int:distributor_id>/enable")
@staff_required
@audited("distributor.enable", row(Distributor, "distributor_id"))
def distributor_enable(distributor_id: int):
    """Let a disabled distributor earn again."""
    return _status_action(distributor_id, lambda d: svc.enable_distributor(d, _actor()), "已恢复")


@bp.post("/distributors/<int:distributor_id>/parent")
@staff_required
@audited("distributor.change_parent", row(Distributor, "distributor_id"))
def distributor_parent(distributor_id: int):
    """Move a distributor (and their team) under another parent, or to the top."""
    d = db.get_or_404(Distributor, distributor_id)
    text = (request.form.get("parent") or "").strip()
    new_parent = None
    if text:
        new_parent = find_distributor(text)
        if new_parent is None:
            return _render_detail(d, f"找不到分销员“{text[:20]}”（请输入编号或推广码）", 422)
    try:
        svc.change_parent(d, new_parent, _actor())
    except DistributionError as exc:
        db.session.rollback()
        d = db.session.get(Distributor, distributor_id)
        return _render_detail(d, exc.message, exc.status)
    db.session.commit()
    flash(f"上级已改为 {svc.distributor_label(new_parent)}", "success")
    return redirect(url_for("admin.distributor_detail", distributor_id=d.id))


@bp.post("/distributors/<int:distributor_id>/grade")
@staff_required
@audited("distributor.set_grade", row(Distributor, "distributor_id"))
def distributor_grade(distributor_id: int):
    """Give a distributor a grade by hand (or none)."""
    d = db.get_or_404(Distributor, distributor_id)
    raw = request.form.get("grade_id", "")
    grade = None
    if raw:
        grade_id = bounded_int(raw)
        grade = db.session.get(Grade, grade_id) if grade_id is not None else None
        if grade is None:
            return _render_detail(d, "等级不存在", 422)
    svc.set_grade(d, grade)
    db.session.commit()
    flash(f"等级已改为“{grade.name if grade else '无'}”", "success")
    return redirect(url_for("admin.distributor_detail", distributor_id=d.id))


# --- bindings ---------------------------------------------------------------------------


def _render_bindings(error: str | None = None, status: int = 200, form: dict | None = None):
    q = (request.args.get("q") or "").strip()[:50]
    pagination = db.paginate(
        svc.binding_query(q or None), page=page_arg(), per_page=PER_PAGE, error_out=False
    )
    user_id = bounded_int(request.args.get("user"))
    events = svc.binding_events(user_id, limit=50)
    people = {
        u.id: u
        for u in db.session.scalars(
            select(User).where(
                User.id.in_({b.user_id for b in pagination.items} | {e.user_id for e in events})
            )
        )
    }
    ids = {e.distributor_id for e in events} | {e.previous_distributor_id for e in events}
    ids.discard(None)
    dists = {
        d.id: d for d in db.session.scalars(select(Distributor).where(Distributor.id.in_(ids)))
    }
    return (
        render_template(
            "admin/distribution/bindings.html",
            pagination=pagination,
            events=events,
            people=people,
            dists=dists,
            q=q,
            user_id=user_id,
            form=form or {},
            label=svc.distributor_label,
            action_labels=svc.BINDING_ACTION_LABELS,
            source_labels=svc.BINDING_SOURCE_LABELS,
            error=error,
        ),
        status,
    )


@bp.get("/distribution/bindings")
@staff_required
def distribution_bindings():
    """Who is bound to whom (searchable), manual rebinding, and the binding history."""
    return _render_bindings()


@bp.post("/distribution/bindings")
@staff_required
@audited("binding.rebind", BINDING_OF_FORM_USER)
def distribution_rebind():
    """Bind a customer to a distributor by hand (over the protection period); audited."""
    form = dict(request.form.items())
    user_raw = (request.form.get("user_id") or "").strip()
    if not user_raw.isdecimal() or len(user_raw) >= 10:
        return _render_bindings("请输入客户编号（数字）", 422, form)
    distributor = find_distributor(request.form.get("distributor", ""))
    if distributor is None:
        return _render_bindings("找不到该分销员（请输入编号或推广码）", 422, form)
    try:
        binding = svc.rebind_customer(int(user_raw), distributor, _actor())
    except DistributionError as exc:
        db.session.rollback()
        return _render_bindings(exc.message, exc.status, form)
    db.session.commit()
    flash(f"客户 #{binding.user_id} 已绑定到 {svc.distributor_label(distributor)}", "success")
    return redirect(url_for("admin.distribution_bindings", user=binding.user_id))
