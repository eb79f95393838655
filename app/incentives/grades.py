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
from app.distribution.team import team_sales_fen, team_sales_of
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


def _within_reach(distributor: Distributor | None) -> list[Grade]:
    """The reachable grades above ``distributor``'s, best first (none if inactive)."""
    grades = reachable_grades()
    if not grades or distributor is None or distributor.status != "active":
        return []
    current_rank = grade_ranks().get(distributor.grade_id)
    return [g for g in grades if current_rank is None or g.rank > current_rank]


def _direct_counts(distributor_ids) -> dict[int, int]:
    """Active direct sub-distributors of each of ``distributor_ids`` (one query)."""
    ids = list(distributor_ids)
    if not ids:
        return {}
    found = dict(
        db.session.execute(
            select(Distributor.parent_id, func.count())
            .where(Distributor.parent_id.in_(ids), Distributor.status == "active")
            .group_by(Distributor.parent_id)
        ).all()
    )
    return {i: int(found.get(i) or 0) for i in ids}


def upgrade_grade(
    distributor_id: int, *, sales: int | None = None, direct: int | None = None
) -> Grade | None:
    """Move a distributor up to the best grade whose condition they meet; never down.

    A grade's condition is every threshold it sets (team sales per ``team.py``, active
    direct sub-distributors); a grade with neither is assigned by staff only. The UPDATE
    is conditional on the current grade ranking lower, so concurrent jobs never lower it.
    ``sales`` and ``direct``: the figures, when the caller read them already (this
    transaction, after whatever changed them); read here otherwise.
    """
    distributor = db.session.get(Distributor, distributor_id)
    candidates = _within_reach(distributor)
    if not candidates:
        return None
    # Each figure is read only when a grade within reach sets that threshold.
    if sales is None:
        needed = any(g.upgrade_team_sales_fen for g in candidates)
        sales = team_sales_fen(distributor_id) if needed else 0
    if direct is None:
        needed = any(g.upgrade_direct_count for g in candidates)
        direct = _direct_counts([distributor_id])[distributor_id] if needed else 0
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
    distributor_id: int,
    distributor: Distributor | None,
    reason: str,
    actor: str,
    figures: dict | None = None,
) -> Grade | None:
    """``upgrade`` with the distributor's row just read fresh (None: no such row);
    ``figures``: its team sales and direct count, if read already (``upgrade_grade``)."""
    before = distributor.grade_id if distributor is not None else None
    grade = upgrade_grade(distributor_id, **(figures or {}))
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
    """``upgrade`` each distributor once; the ids that moved up.

    Their rows are read fresh in one query, and the figures the grades within their
    reach need (team sales, direct counts) in one query each: an upgrade changes only
    its own distributor's grade, never anyone's figures.
    """
    ids = list(dict.fromkeys(distributor_ids))
    if not ids:
        return ()
    # Read fresh once per batch of follow-ups (an upgrade refreshes its own row).
    fresh = memo("grades:fresh", dict)
    unread = [i for i in ids if i not in fresh]
    if unread:
        found = {
            row.id: row
            for row in db.session.scalars(
                select(Distributor)
                .where(Distributor.id.in_(unread))
                .execution_options(populate_existing=True)
            )
        }
        fresh.update({i: found.get(i) for i in unread})
    reach = {i: _within_reach(fresh.get(i)) for i in ids}
    wants_sales = [i for i in ids if any(g.upgrade_team_sales_fen for g in reach[i])]
    wants_direct = [i for i in ids if any(g.upgrade_direct_count for g in reach[i])]
    sales = team_sales_of(wants_sales)
    direct = _direct_counts(wants_direct)
    moved = []
    for i in ids:
        if not reach[i]:
            continue  # nothing within reach: nothing to read or write
        figures = {"sales": sales.get(i, 0), "direct": direct.get(i, 0)}
        if _upgrade(i, fresh.get(i), reason, "system", figures) is not None:
            moved.append(i)
    return tuple(moved)


def history(distributor_id: int) -> list[GradeChange]:
    """The distributor's grade changes, newest first."""
    return list(
        db.session.scalars(
            select(GradeChange)
            .where(GradeChange.distributor_id == distributor_id)
            .order_by(GradeChange.id.desc())
        )
    )
