"""我的团队: the distributors one and two steps below me, with what each sells and brings me.

Definitions (the same in the H5 page and the JSON API):

- **level 1 / level 2 members**: distributors exactly 1 or 2 steps below in the tree
  (``distributor_paths``), any status; the join date is when their distributor row was
  made.
- **their own sales**: goods paid for, less refunds, no shipping (``items_fen -
  refunded_fen``) on paid, shipped or completed orders whose level-1 attribution is the
  member (their own link, or their own purchase with self-purchase commission): the
  definition of ``team.py``. "This month" counts orders paid since the 1st of the current
  shop month (``SHOP_TZ``).
- **brought me**: my own ledger entries on those orders (my level-2 commission through a
  level-1 member, my level-3 commission through a level-2 member), partial refunds'
  negative reversals included, lapsed (``reversed``) entries left out. Region dividends
  or price differences I may earn on the same order are not the member's doing and are
  not counted.

A page of members is read by the closure table's (ancestor, depth) index; the figures are
two grouped queries over that page's members only, so a team of 100k costs one page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import aliased

from app.accounts.models import User
from app.accounts.names import display_name
from app.core.time import shop_day_start, shop_today, utcnow
from app.distribution.models import Distributor, DistributorPath, OrderAttribution
from app.distribution.team import SALES_STATUSES
from app.extensions import db
from app.ledger.kinds import LEVEL_KINDS, REVERSED
from app.ledger.models import LedgerEntry
from app.orders.models import Order

LEVELS = (1, 2)


@dataclass(frozen=True)
class MemberRow:
    """One member of my team as the team list shows it (money in fen)."""

    distributor_id: int
    level: int  # 1: I invited them; 2: invited by one of my level-1 members
    name: str  # nickname, else 微信用户 + last 4 digits of the user id
    avatar_url: str
    status: str  # active / pending / rejected / disabled
    joined_at: datetime
    sales_fen: int  # their own sales, in total
    month_sales_fen: int  # their own sales paid this shop month
    brought_fen: int  # my commission from their sales (not lapsed)


def month_start(now: datetime) -> datetime:
    """The first moment of the current shop month, as a UTC-comparable datetime."""
    return shop_day_start(shop_today(now).replace(day=1))


def _sales_of(ids: list[int], since: datetime) -> dict[int, tuple[int, int]]:
    """Member id -> (sales in total, sales paid since ``since``)."""
    goods = Order.items_fen - Order.refunded_fen
    rows = db.session.execute(
        select(
            OrderAttribution.distributor_id,
            func.coalesce(func.sum(goods), 0),
            func.coalesce(func.sum(case((Order.paid_at >= since, goods), else_=0)), 0),
        )
        .join(Order, Order.id == OrderAttribution.order_id)
        .where(
            OrderAttribution.distributor_id.in_(ids),
            OrderAttribution.level == 1,
            Order.status.in_(SALES_STATUSES),
        )
        .group_by(OrderAttribution.distributor_id)
    )
    return {who: (int(total), int(month)) for who, total, month in rows}


def _brought_to(distributor_id: int, ids: list[int]) -> dict[int, int]:
    """Member id -> what my ledger earned on the orders they sold (see the module doc)."""
    earning = aliased(LedgerEntry)  # what a reversal reverses: its kind decides
    rows = db.session.execute(
        select(OrderAttribution.distributor_id, func.sum(LedgerEntry.amount_fen))
        .select_from(OrderAttribution)
        .join(LedgerEntry, LedgerEntry.order_id == OrderAttribution.order_id)
        .outerjoin(earning, earning.id == LedgerEntry.reverses_id)
        .where(
            OrderAttribution.distributor_id.in_(ids),
            OrderAttribution.level == 1,
            LedgerEntry.distributor_id == distributor_id,
            LedgerEntry.state != REVERSED,
            func.coalesce(earning.kind, LedgerEntry.kind).in_(LEVEL_KINDS),
        )
        .group_by(OrderAttribution.distributor_id)
    )
    return {who: int(amount or 0) for who, amount in rows}


def members_page(
    distributor_id: int,
    level: int,
    *,
    page: int = 1,
    per_page: int = 20,
    now: datetime | None = None,
) -> list[MemberRow]:
    """A page of my members ``level`` (1 or 2) steps below, newest first, with figures."""
    if level not in LEVELS:
        raise ValueError("level must be 1 or 2")
    now = now or utcnow()
    rows = db.session.execute(
        select(Distributor, User.nickname, User.avatar_url)
        .join(DistributorPath, DistributorPath.descendant_id == Distributor.id)
        .join(User, User.id == Distributor.user_id)
        .where(DistributorPath.ancestor_id == distributor_id, DistributorPath.depth == level)
        .order_by(Distributor.created_at.desc(), Distributor.id.desc())
        .limit(per_page)
        .offset((max(page, 1) - 1) * per_page)
    ).all()
    ids = [d.id for d, _n, _a in rows]
    sales = _sales_of(ids, month_start(now)) if ids else {}
    brought = _brought_to(distributor_id, ids) if ids else {}
    return [
        MemberRow(
            distributor_id=d.id,
            level=level,
            name=display_name(nickname, d.user_id),
            avatar_url=avatar or "",
            status=d.status,
            joined_at=d.created_at,
            sales_fen=sales.get(d.id, (0, 0))[0],
            month_sales_fen=sales.get(d.id, (0, 0))[1],
            brought_fen=brought.get(d.id, 0),
        )
        for d, nickname, avatar in rows
    ]
