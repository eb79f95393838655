"""Leaderboards (排行榜): by sales, commission and invites; today, this week, this month.

Definitions (periods are China time, Asia/Shanghai: the day from 00:00, the week from
Monday 00:00, the month from the 1st):

- ``sales``: Σ (goods paid − refunded) of orders paid in the period whose level-1
  attribution is the distributor (the same figure as a task's ``sales_fen``);
- ``commission``: Σ commission earnings (levels 1-3, regional dividends, price
  differences) written in the period, net of their reversals, leaving out entries
  reversed before settlement; task and invite rewards are not commission and are left out;
- ``invites``: how many direct invitees made their first paid purchase (earliest paid
  order not refunded in full) in the period.

Only positive scores are listed. Ties are ordered by distributor id, lowest first (who
joined first), so the order never depends on timing; each row has its own rank (the
position), so two equal scores show as e.g. 3 and 4.

Redis. Each (board, period) is a sorted set ``lb:<board>:<period>:<first day>`` whose
members are zero-padded distributor ids and whose scores are the *negated* figures: read
with ZRANGE, Redis orders equal scores by member, which is then the id order above. A
marker key ``...:built`` says the set was built (an empty board has no set). Keys expire
a day after their period ends.

Kept in step: after a transaction that changed someone's figures commits (the paid
follow-up job, a refund, the incentives job), the affected distributors' scores are
recomputed from the database and written with ZADD (ZREM when no longer positive), in
the current periods' sets that exist. Absolute scores rather than ZINCRBY: a retried job
or a notice applied twice then cannot count anything twice, and the order of events does
not matter. ``rebuild(board, period)`` recomputes a whole set from the database; a read
rebuilds when the set is missing, and the periodic job rebuilds every set, which bounds
any drift (e.g. a crash between the commit and the ZADD).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from app.accounts.models import User
from app.accounts.names import display_name
from app.core.redis import get_redis
from app.core.time import to_shop_time, utcnow
from app.distribution.models import Distributor, OrderAttribution
from app.extensions import db
from app.incentives.models import LeaderboardOptIn
from app.ledger.balances import mask_name
from app.ledger.kinds import LINE_EARNING_KINDS, REVERSAL, REVERSED
from app.ledger.models import LedgerEntry
from app.orders.models import Order

log = logging.getLogger(__name__)

BOARDS = ("sales", "commission", "invites")
PERIODS = ("day", "week", "month")
BOARD_LABELS = {"sales": "销售榜", "commission": "佣金榜", "invites": "邀请榜"}
PERIOD_LABELS = {"day": "今日", "week": "本周", "month": "本月"}
TOP = 50


# --- periods ---------------------------------------------------------------------------------


def period_range(period: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the China-time day, week (from Monday) or month containing ``now``."""
    local = to_shop_time(now or utcnow())
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown period {period!r}")
    return start, end


def redis_key(board: str, period: str, now: datetime | None = None) -> str:
    """The sorted set of ``board`` for the ``period`` containing ``now``."""
    start, _end = period_range(period, now)
    return f"lb:{board}:{period}:{start.date().isoformat()}"


def member(distributor_id: int) -> str:
    return f"{distributor_id:010d}"


# --- figures from the database ---------------------------------------------------------------


def scores_query(board: str, start: datetime, end: datetime, distributor_ids=None):
    """SELECT (distributor_id, score) for ``board`` in [start, end): positive scores,
    highest first, ties by id."""
    if board == "sales":
        who = OrderAttribution.distributor_id
        score = func.sum(Order.items_fen - Order.refunded_fen)
        query = (
            select(who, score)
            .join(Order, Order.id == OrderAttribution.order_id)
            .where(OrderAttribution.level == 1, Order.paid_at >= start, Order.paid_at < end)
        )
    elif board == "commission":
        entry, earning = LedgerEntry, aliased(LedgerEntry)
        who = entry.distributor_id
        score = func.sum(entry.amount_fen)
        query = (
            select(who, score)
            .outerjoin(earning, earning.id == entry.reverses_id)
            .where(
                entry.state != REVERSED,
                or_(
                    and_(
                        entry.kind.in_(LINE_EARNING_KINDS),
                        entry.created_at >= start,
                        entry.created_at < end,
                    ),
                    and_(
                        entry.kind == REVERSAL,
                        earning.kind.in_(LINE_EARNING_KINDS),
                        earning.created_at >= start,
                        earning.created_at < end,
                    ),
                ),
            )
        )
    elif board == "invites":
        first = (
            select(Order.user_id, func.min(Order.paid_at).label("first_paid"))
            .where(Order.paid_at.is_not(None), Order.items_fen > Order.refunded_fen)
            .group_by(Order.user_id)
            .subquery()
        )
        who = Distributor.parent_id
        score = func.count()
        query = (
            select(who, score)
            .join(first, first.c.user_id == Distributor.user_id)
            .where(
                Distributor.parent_id.is_not(None),
                first.c.first_paid >= start,
                first.c.first_paid < end,
            )
        )
    else:
        raise ValueError(f"unknown board {board!r}")
    if distributor_ids is not None:
        query = query.where(who.in_(list(distributor_ids)))
    return query.group_by(who).having(score > 0).order_by(score.desc(), who)


def from_database(
    board: str, period: str, now: datetime | None = None, distributor_ids=None, conn=None
) -> list[tuple[int, int]]:
    """[(distributor id, score)] of a board, ordered as it is shown (one query)."""
    start, end = period_range(period, now)
    rows = (conn or db.session).execute(scores_query(board, start, end, distributor_ids)).all()
    return [(int(who), int(score)) for who, score in rows]


# --- Redis -----------------------------------------------------------------------------------


def _ttl(period: str, now: datetime | None) -> int:
    _start, end = period_range(period, now)
    return int((end - (now or utcnow())).total_seconds()) + 86400


def rebuild(board: str, period: str, now: datetime | None = None, conn=None) -> int:
    """Recompute a board's sorted set from the database, atomically; return its size."""
    rows = from_database(board, period, now, conn=conn)
    key = redis_key(board, period, now)
    ttl = _ttl(period, now)
    redis = get_redis()
    pipe = redis.pipeline(transaction=True)
    if rows:
        tmp = f"{key}:tmp"
        pipe.delete(tmp)
        pipe.zadd(tmp, {member(who): -score for who, score in rows})
        pipe.rename(tmp, key)
        pipe.expire(key, ttl)
    else:
        pipe.delete(key)
    pipe.set(f"{key}:built", 1, ex=ttl)
    pipe.execute()
    return len(rows)


def rebuild_all(now: datetime | None = None) -> None:
    """Rebuild every board of every current period (the periodic job)."""
    for board in BOARDS:
        for period in PERIODS:
            rebuild(board, period, now)


def sync_members(distributor_ids, now: datetime | None = None, conn=None) -> None:
    """Write the current scores of ``distributor_ids`` into every built current set."""
    ids = sorted(set(distributor_ids))
    if not ids:
        return
    redis = get_redis()
    keys = [
        (board, period, redis_key(board, period, now)) for period in PERIODS for board in BOARDS
    ]
    # Which sets are built, in one round trip (after every paid order: most are not).
    pipe = redis.pipeline(transaction=False)
    for _board, _period, key in keys:
        pipe.exists(f"{key}:built")
    for (board, period, key), built in zip(keys, pipe.execute(), strict=True):
        if not built:
            continue  # the next read builds it whole
        scores = dict(from_database(board, period, now, ids, conn=conn))
        writes = redis.pipeline(transaction=True)
        for who in ids:
            if scores.get(who, 0) > 0:
                writes.zadd(key, {member(who): -scores[who]})
            else:
                writes.zrem(key, member(who))
        writes.execute()


def from_redis(board: str, period: str, now: datetime | None = None) -> list[tuple[int, int]]:
    """[(distributor id, score)] of a whole board as Redis holds it (tests, checks)."""
    rows = get_redis().zrange(redis_key(board, period, now), 0, -1, withscores=True)
    return [(int(m), int(-s)) for m, s in rows]


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of a board as shown."""

    rank: int
    distributor_id: int
    name: str  # masked unless the distributor opted in
    avatar_url: str  # "" unless opted in
    score: int
    is_me: bool


@dataclass(frozen=True)
class Board:
    board: str
    period: str
    rows: list[Row]
    me: Row | None  # the viewer's own line (None when not on the board)


def read(board: str, period: str, viewer_id: int | None, now: datetime | None = None) -> Board:
    """Top 50 of a board and the viewer's own rank, from Redis (rebuilt when missing)."""
    if board not in BOARDS or period not in PERIODS:
        raise ValueError("unknown board or period")
    redis = get_redis()
    key = redis_key(board, period, now)
    if not redis.exists(f"{key}:built"):
        rebuild(board, period, now)
    pipe = redis.pipeline(transaction=False)
    pipe.zrange(key, 0, TOP - 1, withscores=True)
    if viewer_id is not None:
        pipe.zrank(key, member(viewer_id))
        pipe.zscore(key, member(viewer_id))
    answers = pipe.execute()
    top = [(int(m), int(-s)) for m, s in answers[0]]
    my_rank = answers[1] if viewer_id is not None else None
    my_score = answers[2] if viewer_id is not None else None
    ids = {who for who, _ in top}
    if viewer_id is not None:
        ids.add(viewer_id)
    people = _people(ids)
    rows = [_row(i + 1, who, score, people, viewer_id) for i, (who, score) in enumerate(top)]
    me = None
    if my_rank is not None and my_score is not None:
        me = _row(int(my_rank) + 1, viewer_id, int(-my_score), people, viewer_id)
    return Board(board, period, rows, me)


def _people(ids: set[int]) -> dict[int, tuple[str, str, bool, int | None]]:
    """{id: (nickname, avatar, opted in, user id)} in one query."""
    if not ids:
        return {}
    rows = db.session.execute(
        select(
            Distributor.id,
            User.nickname,
            User.avatar_url,
            LeaderboardOptIn.distributor_id,
            User.id,
        )
        .join(User, User.id == Distributor.user_id)
        .outerjoin(LeaderboardOptIn, LeaderboardOptIn.distributor_id == Distributor.id)
        .where(Distributor.id.in_(ids))
    ).all()
    return {
        who: (nick or "", avatar or "", opted is not None, user_id)
        for who, nick, avatar, opted, user_id in rows
    }


def _row(rank: int, who: int, score: int, people: dict, viewer_id: int | None) -> Row:
    nickname, avatar, opted, user_id = people.get(who, ("", "", False, None))
    if opted:
        name = display_name(nickname, user_id)
    else:
        name, avatar = mask_name(nickname, user_id), ""
    return Row(rank, who, name, avatar, score, who == viewer_id)


def is_opted_in(distributor_id: int) -> bool:
    return db.session.get(LeaderboardOptIn, distributor_id) is not None


def set_opt_in(distributor_id: int, show_name: bool) -> None:
    """Show (or mask) the distributor's name on leaderboards (flushes)."""
    row = db.session.get(LeaderboardOptIn, distributor_id)
    if show_name and row is None:
        db.session.add(LeaderboardOptIn(distributor_id=distributor_id))
    elif not show_name and row is not None:
        db.session.delete(row)
    db.session.flush()
