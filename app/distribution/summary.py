"""The distributor centre's figures: 收益 today / this month / in all, the balances, when
pending money becomes withdrawable, promoted orders, customers and team.

Nothing here computes money of its own: balances and 收益 (``ledger.income``, its
definition) come from ``ledger.history.ledger_figures`` (the settled history kept, the rest
summed live, so a million entries read fast); the dates pending money becomes
withdrawable are the entries' ``settle_after`` (``ledger.settlement``: completion plus
the settlement hold), read in shop time. Every function takes the distributor's own id
(the edge finds it from the signed-in user).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from app.core.money import format_yuan
from app.core.time import shop_today, to_shop_time, utcnow
from app.distribution.centre import customer_count
from app.distribution.models import OrderAttribution
from app.distribution.team import team_counts
from app.extensions import db
from app.ledger.history import LedgerFigures, PendingGroup, ledger_figures, pending_groups
from app.ledger.settlement import settlement_hold_days


@dataclass(frozen=True)
class PendingPart:
    """Pending money that becomes withdrawable on one shop date (``settle_on``), or, with
    ``settle_on`` None, money on orders not received yet (no date until they complete)."""

    settle_on: date | None
    amount_fen: int
    count: int  # ledger entries

    def due(self, today: date) -> bool:
        """The date has come: the next settlement run makes it withdrawable."""
        return self.settle_on is not None and self.settle_on <= today


@dataclass(frozen=True)
class CentreSummary:
    """Everything the centre's home shows at the top."""

    money: LedgerFigures
    pending_parts: list[PendingPart]  # dated parts by date, then the undated part
    hold_days: int
    today: date  # the shop date the figures were read on
    orders_count: int  # 推广订单
    customers_count: int
    team_count: int  # everyone below, at any depth
    level1_count: int
    level2_count: int

    @property
    def next_part(self) -> PendingPart | None:
        """The first pending part with a date (what becomes withdrawable next), else the
        undated part, else None (nothing pending)."""
        return self.pending_parts[0] if self.pending_parts else None


def money_figures(distributor_id: int, now: datetime | None = None) -> LedgerFigures:
    """Balances and 收益 (today, this month, in all): ``ledger.history.ledger_figures``."""
    return ledger_figures(distributor_id, now)


def pending_parts(
    distributor_id: int, groups: list[PendingGroup] | None = None
) -> list[PendingPart]:
    """The distributor's pending money by the shop date it becomes withdrawable (earliest
    first), then what waits for orders to be received (no date yet): the pending entries
    grouped by ``settle_after`` (``groups``, if already read) folded into shop dates here
    (the zone is defined once, in ``app.core.time``)."""
    if groups is None:
        groups = pending_groups(distributor_id)
    by_date: dict[date | None, list[int]] = {}
    for group in groups:
        at = group.settle_after
        day = to_shop_time(at).date() if at is not None else None
        part = by_date.setdefault(day, [0, 0])
        part[0] += group.amount_fen
        part[1] += group.count
    dated = sorted(day for day in by_date if day is not None)
    order = [*dated, None] if None in by_date else dated
    return [PendingPart(day, *by_date[day]) for day in order]


def promoted_orders_count(distributor_id: int) -> int:
    """推广订单: orders the distributor sold (their level-1 attribution, self-purchases
    included) that count as a sale now, as team sales define it (``team.py``: paid,
    shipped or completed, not refunded in full); read from the attribution's kept share
    of team sales (``team_sales_fen > 0``), so it is one index range, however many."""
    return db.session.scalar(
        select(func.count())
        .select_from(OrderAttribution)
        .where(
            OrderAttribution.distributor_id == distributor_id,
            OrderAttribution.level == 1,
            OrderAttribution.team_sales_fen > 0,
        )
    )


def centre_summary(distributor_id: int, now: datetime | None = None) -> CentreSummary:
    """The centre home's figures for the distributor (about ten small queries; may write the
    kept settled history: the edge commits)."""
    now = now or utcnow()
    level1, level2, team = team_counts(distributor_id)
    groups = pending_groups(distributor_id, now)
    return CentreSummary(
        money=ledger_figures(distributor_id, now, groups),
        pending_parts=pending_parts(distributor_id, groups),
        hold_days=settlement_hold_days(),
        today=shop_today(now),
        orders_count=promoted_orders_count(distributor_id),
        customers_count=customer_count(distributor_id, now),
        team_count=team,
        level1_count=level1,
        level2_count=level2,
    )


def pending_text(part: PendingPart, today: date, hold_days: int) -> str:
    """When a pending part becomes withdrawable, in Chinese: 12月14日 起可提现 / 结算中，
    即将可提现 / 确认收货后 7 天可提现."""
    if part.settle_on is None:
        return f"确认收货后 {hold_days} 天可提现"
    if part.due(today):
        return "结算中，即将可提现"
    return f"{part.settle_on.month}月{part.settle_on.day}日 起可提现"


def part_sentence(part: PendingPart, today: date, hold_days: int) -> str:
    """One pending part as a sentence: ¥25.78 将于 12月14日 起可提现，共 4 笔."""
    amount = format_yuan(part.amount_fen)
    if part.settle_on is None:
        return f"{amount} 待确认收货，确认收货后 {hold_days} 天可提现，共 {part.count} 笔"
    if part.due(today):
        return f"{amount} 结算中，即将可提现，共 {part.count} 笔"
    return (
        f"{amount} 将于 {part.settle_on.month}月{part.settle_on.day}日 起可提现，共 {part.count} 笔"
    )
