"""Grade upgrades with a history and a notification: the one place grades move up.

``upgrade_grade`` decides (the best grade whose thresholds are met, never down; a
conditional UPDATE so concurrent runs never lower it). ``upgrade`` adds what goes around
it: a ``GradeChange`` row for every move and a template message to the distributor (kind
``grade_upgraded``, once per distributor and grade).

It runs on the events that can change a grade: the paid-order follow-up (the seller's
chain and a new member's inviter), a completed refund (a no-op in practice: a refund only
lowers team sales, and grades are never lowered automatically) and the periodic
incentives job, which also catches new members that joined by application or staff
approval.
"""

from __future__ import annotations

from sqlalchemy import exists, func, select, update

from app.core.batch import memo
from app.distribution.models import Distributor, Grade
from app.distribution.team import team_sales_fen
from app.extensions import db
from app.incentives.models import GradeChange
from app.signals import grade_changed

_ANY_GRADE_CONDITION = select(
    exists().where((Grade.upgrade_team_sales_fen > 0) | (Grade.upgrade_direct_count > 0))
)


def grades_with_conditions() -> bool:
    """Whether any grade can be reached automatically (else upgrade checks are moot)."""
    return memo("grades_with_conditions", lambda: db.session.scalar(_ANY_GRADE_CONDITION))


def reachable_grades() -> list[Grade]:
    """The grades with an upgrade condition, the best first."""
    return memo(
        "reachable_grades",
        lambda: list(
            db.session.scalars(
                select(Grade)
                .where((Grade.upgrade_team_sales_fen > 0) | (Grade.upgrade_direct_count > 0))
                .order_by(Grade.rank.desc())
            )
        ),
    )


def grade_ranks() -> dict[int, int]:
    """{grade id: rank} of every grade."""
    return memo("grade_ranks", lambda: dict(db.session.execute(select(Grade.id, Grade.rank)).all()))


def upgrade_grade(distributor_id: int) -> Grade | None:
    """Move a distributor up to the best grade whose condition they meet; never down.

    A grade's condition is every threshold it sets (team sales per ``team.py``, active
    direct sub-distributors); a grade with neither is assigned by staff only. The UPDATE
    is conditional on the current grade ranking lower, so concurrent jobs never lower it.
    """
    grades = reachable_grades()
    distributor = db.session.get(Distributor, distributor_id)
    if not grades or distributor is None or distributor.status != "active":
        return None
    current_rank = grade_ranks().get(distributor.grade_id)
    candidates = [g for g in grades if current_rank is None or g.rank > current_rank]
    if not candidates:
        return None
    # Each figure is read only when a grade within reach sets that threshold.
    sales = (
        team_sales_fen(distributor_id) if any(g.upgrade_team_sales_fen for g in candidates) else 0
    )
    direct = (
        db.session.scalar(
            select(func.count())
            .select_from(Distributor)
            .where(Distributor.parent_id == distributor_id, Distributor.status == "active")
        )
        if any(g.upgrade_direct_count for g in candidates)
        else 0
    )
    for grade in candidates:
        if grade.upgrade_team_sales_fen and sales < grade.upgrade_team_sales_fen:
            continue
        if grade.upgrade_direct_count and direct < grade.upgrade_direct_count:
            continue
        lower = select(Grade.id).where(Grade.rank < grade.rank)
        moved = db.session.execute(
            update(Distributor)
            .where(
                Distributor.id == distributor_id,
                Distributor.grade_id.is_(None) | Distributor.grade_id.in_(lower),
            )
            .values(grade_id=grade.id)
            .execution_options(synchronize_session=False)
        )
        db.session.refresh(distributor)
        return grade if moved.rowcount == 1 else None
    return None


def upgrade(distributor_id: int, reason: str, actor: str = "system") -> Grade | None:
    """Upgrade if the distributor qualifies; record the change and notify (flushes)."""
    # Read fresh once; ``upgrade_grade`` then finds the same row in the identity map.
    distributor = db.session.get(Distributor, distributor_id, populate_existing=True)
    return _upgrade(distributor_id, distributor, reason, actor)


def _upgrade(
    distributor_id: int, distributor: Distributor | None, reason: str, actor: str
) -> Grade | None:
    """``upgrade`` with the distributor's row just read fresh (None: no such row)."""
    before = distributor.grade_id if distributor is not None else None
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
    """``upgrade`` each distributor once; the ids that moved up (their rows read fresh in
    one query; an upgrade changes only its own distributor's row)."""
    ids = list(dict.fromkeys(distributor_ids))
    if not ids:
        return ()
    fresh = {
        row.id: row
        for row in db.session.scalars(
            select(Distributor)
            .where(Distributor.id.in_(ids))
            .execution_options(populate_existing=True)
        )
    }
    return tuple(i for i in ids if _upgrade(i, fresh.get(i), reason, "system") is not None)


def history(distributor_id: int) -> list[GradeChange]:
    """The distributor's grade changes, newest first."""
    return list(
        db.session.scalars(
            select(GradeChange)
            .where(GradeChange.distributor_id == distributor_id)
            .order_by(GradeChange.id.desc())
        )
    )
