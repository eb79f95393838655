"""Grade upgrades with a history and a notification.

``commissions.upgrade_grade`` decides (the best grade whose thresholds are met, never
down; a conditional UPDATE so concurrent runs never lower it). This module adds what
the issue asks around it: a ``GradeChange`` row for every move and a template message
to the distributor (kind ``grade_upgraded``, once per distributor and grade).

It runs on the events that can change a grade: the paid-order follow-up (the seller's
chain and a new member's inviter), a completed refund (a no-op in practice: a refund only
lowers team sales, and grades are never lowered automatically) and the periodic
incentives job, which also catches new members that joined by application or staff
approval.
"""

from __future__ import annotations

from sqlalchemy import select

from app.distribution.models import Distributor, Grade
from app.extensions import db
from app.incentives.models import GradeChange
from app.signals import grade_changed


def upgrade(distributor_id: int, reason: str, actor: str = "system") -> Grade | None:
    """Upgrade if the distributor qualifies; record the change and notify (flushes)."""
    from app.distribution.commissions import upgrade_grade

    before = db.session.scalar(select(Distributor.grade_id).where(Distributor.id == distributor_id))
    grade = upgrade_grade(distributor_id)
    if grade is None:
        return None
    db.session.add(
        GradeChange(
            distributor_id=distributor_id,
            from_grade_id=before,
            to_grade_id=grade.id,
            reason=reason[:200],
            actor=actor[:64],
        )
    )
    db.session.flush()
    # Listeners (the WeChat notice) dedupe once per distributor and grade.
    grade_changed.send(__name__, distributor_id=distributor_id, grade=grade, reason=reason)
    return grade


def upgrade_many(distributor_ids, reason: str) -> tuple[int, ...]:
    """``upgrade`` each distributor once; the ids that moved up."""
    return tuple(i for i in dict.fromkeys(distributor_ids) if upgrade(i, reason) is not None)


def history(distributor_id: int) -> list[GradeChange]:
    """The distributor's grade changes, newest first."""
    return list(
        db.session.scalars(
            select(GradeChange)
            .where(GradeChange.distributor_id == distributor_id)
            .order_by(GradeChange.id.desc())
        )
    )
