"""Balances derived from the ledger. Nothing stores a balance; every figure is a sum.

Entry states and what they count toward:

| entry | state | counts as |
| --- | --- | --- |
| earning (level_1/2/3, rewards, dividends) | pending | pending |
| earning | settled | available |
| earning fully refunded before settlement, and its reversals | reversed | nothing |
| reversal of a refund before settlement (negative) | pending | pending |
| reversal of a refund after settlement (negative) | settled | available |
| withdrawal (negative), requested or under way | settled | available (so it is held) |
| withdrawal paid out | withdrawn | available, and withdrawn |
| return of a rejected or failed withdrawal (positive reversal) | settled | available |

So ``available = Σ amount where state in (settled, withdrawn)``,
``pending = Σ amount where state = pending`` and
``withdrawn = -Σ amount of withdrawal entries where state = withdrawn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from app.accounts.models import User
from app.accounts.names import display_name
from app.core.time import utcnow
from app.extensions import db
from app.ledger.kinds import PENDING, REVERSED, SETTLED, WITHDRAWAL, WITHDRAWN
from app.ledger.models import LedgerEntry
from app.ledger.settlement import not_eligible_reason, settlement_hold_days
from app.orders.models import OPEN_REFUND_STATUSES, Order, Refund


@dataclass(frozen=True)
class Balances:
    """A distributor's money, in fen."""

    pending_fen: int
    available_fen: int
    withdrawn_fen: int


def balances(distributor_id: int) -> Balances:
    """Sum the distributor's ledger into pending, available and withdrawn (one query)."""
    amount = LedgerEntry.amount_fen
    pending, available, withdrawn = db.session.execute(
        select(
            func.coalesce(func.sum(case((LedgerEntry.state == PENDING, amount), else_=0)), 0),
            func.coalesce(
                func.sum(case((LedgerEntry.state.in_((SETTLED, WITHDRAWN)), amount), else_=0)), 0
            ),
            func.coalesce(
                func.sum(
                    case(
                        (
                            (LedgerEntry.kind == WITHDRAWAL) & (LedgerEntry.state == WITHDRAWN),
                            -amount,
                        ),
                        else_=0,
                    )
                ),
                0,
            ),
        ).where(LedgerEntry.distributor_id == distributor_id)
    ).one()
    return Balances(int(pending), int(available), int(withdrawn))


# --- the ledger list of the distributor centre and the admin --------------------------------

PER_PAGE = 20


@dataclass(frozen=True)
class EntryRow:
    """One ledger entry as the centre shows it."""

    entry: LedgerEntry
    order_number: str | None
    buyer_name: str  # masked: 张** / 微信用户0427
    reason_not_available: str  # "" when the money is available (or already paid out)


def mask_name(nickname: str | None, user_id: int | None = None) -> str:
    """A buyer's name as a distributor may see it: the first character, then ``**``;
    without a nickname, ``accounts.names.display_name`` (微信用户 + last 4 of the id)."""
    name = (nickname or "").strip()
    return f"{name[0]}**" if name else display_name(None, user_id)


def reason_not_available(
    entry: LedgerEntry,
    order: Order | None,
    now: datetime,
    *,
    refund_open: bool | None = None,
    hold_days: int | None = None,
) -> str:
    """Why ``entry`` cannot be withdrawn yet, in Chinese; "" when it counts as available.

    A pending entry on an order says which part of the settlement rule the order still
    fails (``settlement.not_eligible_reason``: 退款处理中, 待付款确认, 待确认收货,
    售后期至 12月3日, ...) or 结算中 (the rule allows it; the next settlement run makes it
    available); 已失效: 已退款 for a reversed entry. ``refund_open`` and ``hold_days`` may
    be passed in to save queries when listing many entries.
    """
    if entry.state == REVERSED:
        return "已失效: 已退款"
    if entry.state != PENDING:
        return ""
    if order is None:
        return "待结算"
    why = not_eligible_reason(order, now, refund_open=refund_open, hold_days=hold_days)
    return why or "结算中"


def entries_for(
    distributor_id: int, page: int = 1, per_page: int = PER_PAGE, now: datetime | None = None
) -> list[EntryRow]:
    """A page of the distributor's ledger, newest first, with order number, masked buyer
    and why each entry is not available yet (three queries per page)."""
    now = now or utcnow()
    page = max(1, page)
    rows = db.session.execute(
        select(LedgerEntry, Order, User.nickname)
        .outerjoin(Order, Order.id == LedgerEntry.order_id)
        .outerjoin(User, User.id == Order.user_id)
        .where(LedgerEntry.distributor_id == distributor_id)
        .order_by(LedgerEntry.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return entry_rows(rows, now)


def entry_rows(rows, now: datetime) -> list[EntryRow]:
    """Ledger rows ``(entry, order, buyer nickname)`` as shown to their owner: order number,
    masked buyer, and why the money is not withdrawable yet (one query for open refunds)."""
    order_ids = {order.id for _entry, order, _nick in rows if order is not None}
    open_refunds = set(
        db.session.scalars(
            select(Refund.order_id).where(
                Refund.order_id.in_(order_ids), Refund.status.in_(OPEN_REFUND_STATUSES)
            )
        )
    )
    hold_days = settlement_hold_days()
    return [
        EntryRow(
            entry=entry,
            order_number=order.number if order is not None else None,
            buyer_name=mask_name(nickname, order.user_id) if order is not None else "",
            reason_not_available=reason_not_available(
                entry,
                order,
                now,
                refund_open=order is not None and order.id in open_refunds,
                hold_days=hold_days,
            ),
        )
        for entry, order, nickname in rows
    ]
