"""A distributor's team, read from the closure table (``distributor_paths``).

Definitions (kept simple, and the same for the centre, the admin and grade upgrades):

- **level 1 / level 2 members**: distributors exactly 1 or 2 steps below (any status);
- **team size**: every distributor below, at any depth;
- **team sales**: what customers paid for goods (``items_fen - refunded_fen``, shipping
  left out) on orders that are paid, shipped or completed and whose level-1 attribution
  is the distributor themself or anyone in their team. The attribution is fixed when the
  order is placed, so later rebinding never moves past sales.

Each figure is one indexed query whatever the size of the team: the closure table has a
row per (ancestor, descendant), so "everyone below X" is a range of its primary key.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select

from app.distribution.models import DistributorPath, OrderAttribution
from app.extensions import db
from app.orders.models import COMPLETED, PAID, SHIPPED, Order

SALES_STATUSES = (PAID, SHIPPED, COMPLETED)


@dataclass(frozen=True)
class TeamStats:
    """Counts and sales of a distributor's team (money in fen)."""

    level1_count: int
    level2_count: int
    team_size: int
    team_sales_fen: int


def team_counts(distributor_id: int) -> tuple[int, int, int]:
    """(level-1 members, level-2 members, everyone below) in one query."""
    depth = DistributorPath.depth
    level1, level2, total = db.session.execute(
        select(
            func.coalesce(func.sum(case((depth == 1, 1), else_=0)), 0),
            func.coalesce(func.sum(case((depth == 2, 1), else_=0)), 0),
            func.count(),
        ).where(DistributorPath.ancestor_id == distributor_id, depth >= 1)
    ).one()
    return int(level1), int(level2), int(total)


def team_sales_fen(distributor_id: int) -> int:
    """Goods paid for (less refunds) on orders sold by the distributor or their team."""
    sold = db.session.scalar(
        select(func.coalesce(func.sum(Order.items_fen - Order.refunded_fen), 0))
        .select_from(DistributorPath)
        .join(
            OrderAttribution,
            (OrderAttribution.distributor_id == DistributorPath.descendant_id)
            & (OrderAttribution.level == 1),
        )
        .join(Order, Order.id == OrderAttribution.order_id)
        .where(DistributorPath.ancestor_id == distributor_id, Order.status.in_(SALES_STATUSES))
    )
    return int(sold or 0)


def team_stats(distributor_id: int) -> TeamStats:
    """Level 1 and 2 counts, team size and team sales of ``distributor_id``."""
    level1, level2, total = team_counts(distributor_id)
    return TeamStats(level1, level2, total, team_sales_fen(distributor_id))
