"""Distributors: joining, approval, the tree (closure table) and moving a branch safely.

Services flush; the edge commits. The tree lives in ``distributor_paths``: a row per
(ancestor, descendant) with the depth between them, depth 0 being the distributor itself.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Integer, bindparam, delete, func, insert, literal, select, true

from app.core.batch import memo
from app.core.sql import single_row
from app.core.time import utcnow
from app.distribution.models import DistributionSettings, Distributor, DistributorPath
from app.distribution.team import move_branch_sales
from app.extensions import db

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: codes are read aloud
CODE_LENGTH = 8


class DistributionError(Exception):
    """A distribution request refused: a code for JSON and a Chinese message."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def get_distribution_settings() -> DistributionSettings:
    """The single settings row, created with defaults on first use (race-safe)."""
    return memo("distribution_settings", _load_distribution_settings)


def _load_distribution_settings() -> DistributionSettings:
    return single_row(DistributionSettings)


def new_code() -> str:
    """A random public referral code (unique key in the table is the final guard)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


# Built once with bound parameters: both run on every WeChat push and shared-link visit.
_BY_USER = select(Distributor).where(Distributor.user_id == bindparam("user_id"))
_ACTIVE_BY_CODE = select(Distributor).where(
    Distributor.code == bindparam("code"), Distributor.status == "active"
)


_OF_USERS = "distributors_of_users"  # batch memo: {user id: distributor row or None}


def distributor_for_user(user_id: int) -> Distributor | None:
    """The user's distributor row, whatever its status (inside a batch of follow-ups, as
    ``load_distributors_of_users`` read it, kept up to date by ``create_distributor``)."""
    known = memo(_OF_USERS, dict)
    if user_id in known:
        return known[user_id]
    return db.session.scalar(_BY_USER, {"user_id": user_id})


def load_distributors_of_users(user_ids) -> None:
    """Inside a batch of follow-ups: read the distributor rows of these users (the
    buyers) in one query for ``distributor_for_user``. Outside a batch: nothing."""
    known = memo(_OF_USERS, dict)
    ids = sorted(set(user_ids) - set(known))
    if not ids:
        return
    found = {d.user_id: d for d in db.session.scalars(_OF_USERS_QUERY, {"user_ids": ids})}
    known.update({i: found.get(i) for i in ids})


def forget_distributor_of_user(user_id: int) -> None:
    """``distributor_for_user`` reads ``user_id``'s row again (a concurrent join won)."""
    memo(_OF_USERS, dict).pop(user_id, None)


_OF_USERS_QUERY = select(Distributor).where(
    Distributor.user_id.in_(bindparam("user_ids", expanding=True))
)


def active_distributor_by_code(code: str) -> Distributor | None:
    """An active distributor by public code (None for unknown, pending or disabled)."""
    code = (code or "").strip().upper()
    if not code or len(code) > 16:
        return None
    return db.session.scalar(_ACTIVE_BY_CODE, {"code": code})


def create_distributor(
    user_id: int, parent: Distributor | None, status: str = "active"
) -> Distributor:
    """Make ``user_id`` a distributor under ``parent`` and add its closure rows."""
    if parent is not None and parent.user_id == user_id:
        raise DistributionError("invalid_parent", "不能成为自己的下级")
    distributor = Distributor(
        user_id=user_id,
        code=new_code(),
        parent_id=parent.id if parent else None,
        status=status,
        approved_at=utcnow() if status == "active" else None,
    )
    db.session.add(distributor)
    db.session.flush()
    db.session.add(
        DistributorPath(ancestor_id=distributor.id, descendant_id=distributor.id, depth=0)
    )
    if parent is not None:
        db.session.execute(
            insert(DistributorPath).from_select(
                ["ancestor_id", "descendant_id", "depth"],
                select(
                    DistributorPath.ancestor_id,
                    literal(distributor.id, Integer),
                    DistributorPath.depth + 1,
                ).where(DistributorPath.descendant_id == parent.id),
            )
        )
    db.session.flush()
    known = memo(_OF_USERS, dict)  # inside a batch: the buyer is one now
    if user_id in known:
        known[user_id] = distributor
    return distributor


def is_descendant(candidate_id: int, of_id: int) -> bool:
    """Whether ``candidate_id`` is ``of_id`` or anywhere below it."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(DistributorPath)
            .where(
                DistributorPath.ancestor_id == of_id,
                DistributorPath.descendant_id == candidate_id,
            )
        )
        > 0
    )


def set_parent(distributor: Distributor, new_parent: Distributor | None) -> None:
    """Move ``distributor`` (with its whole branch) under ``new_parent``.

    Refuses a parent that is the distributor itself or one of its descendants (a cycle).
    The distributor's and new parent's rows are locked first on PostgreSQL, so two
    concurrent moves of overlapping branches cannot both pass the check and a sale being
    counted below waits for the move (or the move for it).
    """
    if db.engine.dialect.name == "postgresql":
        # Also what a commission job counting a sale below waits for (team.count_order_sales).
        locked = [distributor.id] + ([new_parent.id] if new_parent is not None else [])
        db.session.execute(
            select(Distributor.id)
            .where(Distributor.id.in_(locked))
            .order_by(Distributor.id)
            .with_for_update()
        )
    if new_parent is not None and is_descendant(new_parent.id, distributor.id):
        raise DistributionError("cycle", "不能把分销员挂到自己或自己的下级下面")

    # The branch's running team sales leave the old chain for the new one (team.py).
    move_branch_sales(distributor.id, new_parent.id if new_parent else None)
    subtree = select(DistributorPath.descendant_id).where(
        DistributorPath.ancestor_id == distributor.id
    )
    # Cut the branch loose: drop paths from outside ancestors into the subtree.
    db.session.execute(
        delete(DistributorPath).where(
            DistributorPath.descendant_id.in_(subtree),
            DistributorPath.ancestor_id.not_in(subtree),
        )
    )
    if new_parent is not None:
        above = (
            select(DistributorPath.ancestor_id, DistributorPath.depth)
            .where(DistributorPath.descendant_id == new_parent.id)
            .subquery()
        )
        below = (
            select(DistributorPath.descendant_id, DistributorPath.depth)
            .where(DistributorPath.ancestor_id == distributor.id)
            .subquery()
        )
        db.session.execute(
            insert(DistributorPath).from_select(
                ["ancestor_id", "descendant_id", "depth"],
                select(
                    above.c.ancestor_id,
                    below.c.descendant_id,
                    above.c.depth + below.c.depth + 1,
                ).select_from(above.join(below, true())),
            )
        )
    distributor.parent_id = new_parent.id if new_parent else None
    db.session.flush()


def ancestors(distributor_id: int, max_depth: int) -> list[tuple[int, int]]:
    """[(depth, ancestor_id)] above a distributor, nearest first, up to ``max_depth``."""
    rows = db.session.execute(
        select(DistributorPath.depth, DistributorPath.ancestor_id)
        .where(
            DistributorPath.descendant_id == distributor_id,
            DistributorPath.depth.between(1, max_depth),
        )
        .order_by(DistributorPath.depth)
    )
    return [(depth, ancestor) for depth, ancestor in rows]
