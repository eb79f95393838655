"""Staff managing distributors and customers' bindings: approve, reject, disable, enable,
change a parent or a grade, add a distributor by hand, rebind a customer, and the lists and
histories the admin pages and the Open API show. Services flush, never commit.

Audit trail:

- distributor status changes (approve, reject, disable, enable) are ``StatusChange`` rows
  with subject ``"distributor"``, through the shared conditional-UPDATE state machine
  (``app.core.status.move_status``);
- a parent change is a ``StatusChange`` row with subject ``"dist_parent"``: the old and
  the new parent's distributor id in ``from_status`` / ``to_status`` ("none" for no
  parent), the people's version in ``reason``;
- a manual rebinding is a ``BindingEvent`` (source ``staff``, actor the staff member),
  written by ``app.distribution.binding.bind``.
"""

from __future__ import annotations

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import joinedload

from app.accounts.models import User
from app.core.models import StatusChange
from app.core.status import move_status, record_creation
from app.core.time import utcnow
from app.distribution.admin_input import SettingsError
from app.distribution.binding import bind
from app.distribution.distributors import (
    DistributionError,
    create_distributor,
    distributor_for_user,
    set_parent,
)
from app.distribution.models import DISTRIBUTOR_STATUSES, Binding, BindingEvent, Distributor, Grade
from app.extensions import db

DISTRIBUTOR_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"active", "rejected"}),
    "active": frozenset({"disabled"}),
    "disabled": frozenset({"active"}),
    "rejected": frozenset({"active"}),  # staff may change their mind and approve later
}


def set_grade(distributor: Distributor, grade: Grade | None) -> None:
    """Staff give a distributor a grade by hand (or none); automatic upgrades go on from it."""
    distributor.grade_id = grade.id if grade is not None else None
    db.session.flush()


# --- distributors -----------------------------------------------------------------------


def _move_distributor(d: Distributor, to: str, actor: str, reason: str, **values) -> None:
    move_status(Distributor, d, DISTRIBUTOR_TRANSITIONS, "distributor", to, actor, reason, **values)


def approve_distributor(d: Distributor, actor: str) -> Distributor:
    """Approve an application (or a rejected one after all): the distributor can earn."""
    _move_distributor(d, "active", actor, "审核通过", approved_at=d.approved_at or utcnow())
    return d


def reject_distributor(d: Distributor, actor: str, reason: str) -> Distributor:
    """Refuse an application, saying why."""
    reason = (reason or "").strip()
    if not reason:
        raise SettingsError("reason", "reason_required", "请填写拒绝原因")
    _move_distributor(d, "rejected", actor, reason)
    return d


def disable_distributor(d: Distributor, actor: str, reason: str = "") -> Distributor:
    """Stop a distributor earning from now on (entries already written stay theirs).

    Orders attributed before stay attributed; a disabled distributor at a level of a new
    order simply earns nothing (attribution.py). Customers stay bound.
    """
    _move_distributor(d, "disabled", actor, (reason or "").strip() or "停用")
    return d


def enable_distributor(d: Distributor, actor: str) -> Distributor:
    """Let a disabled distributor earn again."""
    _move_distributor(d, "active", actor, "恢复")
    return d


def distributor_label(d: Distributor | None) -> str:
    """``#12 张三（ABCD2345）`` for people; "无" for no distributor."""
    if d is None:
        return "无"
    name = d.user.nickname if d.user is not None and d.user.nickname else f"用户{d.user_id}"
    return f"#{d.id} {name}（{d.code}）"


def change_parent(d: Distributor, new_parent: Distributor | None, actor: str) -> None:
    """Move ``d`` and its whole team under ``new_parent`` (None: to the top); audited.

    Refuses a parent that is ``d`` itself or one of its descendants (``cycle``, 409), and
    a parent that is not an active distributor. Commission already written never moves;
    orders placed from now on follow the new tree.
    """
    old_parent = db.session.get(Distributor, d.parent_id) if d.parent_id else None
    if new_parent is not None:
        if new_parent.id == d.id:
            raise DistributionError("cycle", "不能把分销员设为自己的上级", 409)
        if new_parent.status != "active":
            raise DistributionError("invalid_parent", "新上级不是正常状态的分销员", 422)
    if (old_parent.id if old_parent else None) == (new_parent.id if new_parent else None):
        return
    try:
        set_parent(d, new_parent)
    except DistributionError as exc:
        if exc.code == "cycle":
            exc.status = 409
            exc.message = (
                f"不能把 {distributor_label(d)} 挂到 {distributor_label(new_parent)} 下面："
                "新上级是他自己的下级，会形成循环"
            )
        raise
    db.session.add(
        StatusChange(
            subject="dist_parent",
            subject_id=d.id,
            from_status=str(old_parent.id) if old_parent else "none",
            to_status=str(new_parent.id) if new_parent else "none",
            actor=actor,
            reason=f"上级：{distributor_label(old_parent)} → {distributor_label(new_parent)}"[:200],
        )
    )
    db.session.flush()


def distributor_history(distributor_id: int) -> list[StatusChange]:
    """Status and parent changes of a distributor, oldest first."""
    return list(
        db.session.scalars(
            select(StatusChange)
            .where(
                StatusChange.subject.in_(("distributor", "dist_parent")),
                StatusChange.subject_id == distributor_id,
            )
            .order_by(StatusChange.created_at, StatusChange.id)
        )
    )


def create_distributor_by_staff(user: User, parent: Distributor | None, actor: str) -> Distributor:
    """Staff make a customer a distributor directly (active, under ``parent``); audited."""
    if distributor_for_user(user.id) is not None:
        raise DistributionError("already_distributor", "该用户已经是分销员", 409)
    d = create_distributor(user.id, parent)
    record_creation("distributor", d.id, d.status, actor, "商家添加")
    db.session.flush()
    return d


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"


def distributor_query(status: str | None = None, q: str | None = None) -> Select:
    """Distributors, newest first, filtered by status and by code, nickname or id."""
    query = select(Distributor).join(User, User.id == Distributor.user_id)
    if status:
        query = query.where(Distributor.status == status)
    q = (q or "").strip()
    if q:
        pattern = _like(q)
        conditions = [
            Distributor.code.ilike(pattern, escape="\\"),
            User.nickname.ilike(pattern, escape="\\"),
        ]
        if q.isdecimal() and len(q) < 10:
            conditions += [Distributor.id == int(q), Distributor.user_id == int(q)]
        query = query.where(or_(*conditions))
    return query.options(joinedload(Distributor.user), joinedload(Distributor.grade)).order_by(
        Distributor.created_at.desc(), Distributor.id.desc()
    )


def status_counts() -> dict[str, int]:
    """How many distributors are in each status ('' = all)."""
    counts = dict.fromkeys(DISTRIBUTOR_STATUSES, 0)
    for status, n in db.session.execute(
        select(Distributor.status, func.count()).group_by(Distributor.status)
    ):
        counts[status] = int(n)
    counts[""] = sum(counts.values())
    return counts


# --- bindings ---------------------------------------------------------------------------


def binding_query(q: str | None = None, distributor_id: int | None = None) -> Select:
    """Customer bindings, latest first; search by customer nickname or id, or code."""
    query = select(Binding).join(User, User.id == Binding.user_id)
    if distributor_id:
        query = query.where(Binding.distributor_id == distributor_id)
    q = (q or "").strip()
    if q:
        pattern = _like(q)
        by_code = select(Distributor.id).where(Distributor.code.ilike(pattern, escape="\\"))
        conditions = [
            User.nickname.ilike(pattern, escape="\\"),
            Binding.distributor_id.in_(by_code),
        ]
        if q.isdecimal() and len(q) < 10:
            conditions.append(Binding.user_id == int(q))
        query = query.where(or_(*conditions))
    return query.options(joinedload(Binding.distributor).joinedload(Distributor.user)).order_by(
        Binding.bound_at.desc(), Binding.id.desc()
    )


def binding_events(user_id: int | None = None, limit: int = 100) -> list[BindingEvent]:
    """The latest binding events (of one customer, or everyone), newest first."""
    query = select(BindingEvent).order_by(BindingEvent.created_at.desc(), BindingEvent.id.desc())
    if user_id is not None:
        query = query.where(BindingEvent.user_id == user_id)
    return list(db.session.scalars(query.limit(limit)))


def rebind_customer(user_id: int, distributor: Distributor, actor: str) -> Binding:
    """Staff bind a customer to ``distributor`` by hand, over any protection period.

    The self and cycle rules still hold, and only an active distributor can take a
    customer: those are refused with the reason (422). The change is recorded as a
    ``BindingEvent`` with source ``staff`` and the staff member as actor. Orders already
    placed keep their attribution.
    """
    if db.session.get(User, user_id) is None:
        raise DistributionError("not_found", "客户不存在", 404)
    if distributor.status != "active":
        raise DistributionError("invalid_distributor", "只能绑定到正常状态的分销员", 422)
    if distributor.user_id == user_id:
        raise DistributionError("self_binding", "客户不能绑定到自己", 422)
    binding = bind(user_id, distributor, "staff", actor=actor, force=True)
    if binding is None or binding.distributor_id != distributor.id:
        raise DistributionError(
            "cycle", "该客户本身是分销员，不能绑定到他自己团队里的分销员（会形成循环）", 422
        )
    return binding
