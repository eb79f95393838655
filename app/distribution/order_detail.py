"""An order as a distributor who earned on it may see it: masked.

What they see: the order number, status, when it was placed and paid, the lines (product,
SKU, quantity, amount, refunds), what the customer paid, the buyer's masked name, and what
each level earned on it (the ledger entries, the earners masked, "我" for themself), with
why their own money is not withdrawable yet. Never the buyer's phone or address.

Who may see it: a distributor with a ledger entry on the order or an attribution of it
(they sold it, or stand above the seller). Anyone else gets None, the same as for a
number that does not exist, so a number reveals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, or_, select

from app.accounts.models import User
from app.core.time import utcnow
from app.distribution.models import Distributor, OrderAttribution
from app.extensions import db
from app.ledger.balances import mask_name, reason_not_available
from app.ledger.kinds import (
    CENTRE_STATE_LABELS,
    LEVEL_KINDS,
    LINE_EARNING_KINDS,
    REVERSAL,
    entry_label,
)
from app.ledger.models import LedgerEntry
from app.ledger.settlement import settlement_hold_days
from app.orders.models import OPEN_REFUND_STATUSES, Order, OrderLine, Refund
from app.orders.states import ORDER_STATUS_LABELS

MAX_NUMBER_LENGTH = 32  # orders.number


@dataclass(frozen=True)
class LineView:
    title: str
    sku_text: str
    quantity: int
    unit_price_fen: int
    amount_fen: int
    refunded_quantity: int
    refunded_fen: int


@dataclass(frozen=True)
class EarningView:
    """One earning on the order: its level or kind, who (masked) and how much."""

    kind: str
    label: str  # 一级佣金 / 二级佣金 / 级差收益 ...
    level: int | None  # 1-3 for commission levels
    earner: str  # "我", or the earner's masked name
    mine: bool
    amount_fen: int  # as earned
    taken_back_fen: int  # refunds' reversals (negative or 0)
    state: str
    state_label: str
    reason_not_available: str  # mine only: why not withdrawable yet ("" when it is)


@dataclass(frozen=True)
class MaskedOrder:
    number: str
    status: str
    status_label: str
    buyer_name: str
    created_at: datetime
    paid_at: datetime | None
    completed_at: datetime | None
    items_fen: int
    shipping_fen: int
    paid_fen: int
    refunded_fen: int
    lines: list[LineView]
    earnings: list[EarningView]

    @property
    def my_total_fen(self) -> int:
        """What this order earns me now: my earnings net of what refunds took back, lapsed
        ones left out."""
        return sum(
            e.amount_fen + e.taken_back_fen
            for e in self.earnings
            if e.mine and e.state != "reversed"
        )


def may_see(distributor_id: int, order_id: int):
    """SQL: the distributor earned on the order or is attributed on it."""
    return or_(
        exists().where(
            LedgerEntry.order_id == order_id, LedgerEntry.distributor_id == distributor_id
        ),
        exists().where(
            OrderAttribution.order_id == order_id,
            OrderAttribution.distributor_id == distributor_id,
        ),
    )


def masked_order(
    distributor_id: int, number: str, now: datetime | None = None
) -> MaskedOrder | None:
    """The order ``number`` as ``distributor_id`` may see it, or None (no such order, or
    not theirs to see)."""
    number = (number or "").strip()
    if not number or len(number) > MAX_NUMBER_LENGTH:
        return None
    now = now or utcnow()
    found = db.session.execute(
        select(Order, User.nickname)
        .join(User, User.id == Order.user_id)
        .where(Order.number == number)
    ).first()
    if found is None:
        return None
    order, nickname = found
    if not db.session.scalar(select(may_see(distributor_id, order.id))):
        return None
    lines = db.session.scalars(
        select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
    ).all()
    return MaskedOrder(
        number=order.number,
        status=order.status,
        status_label=ORDER_STATUS_LABELS.get(order.status, order.status),
        buyer_name=mask_name(nickname),
        created_at=order.created_at,
        paid_at=order.paid_at,
        completed_at=order.completed_at,
        items_fen=order.items_fen,
        shipping_fen=order.shipping_fen,
        paid_fen=order.paid_fen,
        refunded_fen=order.refunded_fen,
        lines=[
            LineView(
                title=line.title,
                sku_text=line.spec_text,
                quantity=line.quantity,
                unit_price_fen=line.unit_price_fen,
                amount_fen=line.amount_fen,
                refunded_quantity=line.refunded_quantity,
                refunded_fen=line.refunded_fen,
            )
            for line in lines
        ],
        earnings=_earnings(distributor_id, order, now),
    )


def _earnings(distributor_id: int, order: Order, now: datetime) -> list[EarningView]:
    """The order's line earnings by level (others' masked), and my own of any kind."""
    rows = db.session.execute(
        select(LedgerEntry, User.nickname)
        .join(Distributor, Distributor.id == LedgerEntry.distributor_id)
        .join(User, User.id == Distributor.user_id)
        .where(
            LedgerEntry.order_id == order.id,
            LedgerEntry.kind.in_(LINE_EARNING_KINDS),
            or_(LedgerEntry.kind.in_(LEVEL_KINDS), LedgerEntry.distributor_id == distributor_id),
        )
        .order_by(LedgerEntry.kind, LedgerEntry.id)
    ).all()
    ids = [entry.id for entry, _nick in rows]
    taken = (
        dict(
            db.session.execute(
                select(LedgerEntry.reverses_id, func.sum(LedgerEntry.amount_fen))
                .where(LedgerEntry.reverses_id.in_(ids), LedgerEntry.kind == REVERSAL)
                .group_by(LedgerEntry.reverses_id)
            ).all()
        )
        if ids
        else {}
    )
    refund_open = (
        db.session.scalar(
            select(
                exists().where(Refund.order_id == order.id, Refund.status.in_(OPEN_REFUND_STATUSES))
            )
        )
        or False
    )
    hold_days = settlement_hold_days()
    views = []
    for entry, nickname in rows:
        mine = entry.distributor_id == distributor_id
        views.append(
            EarningView(
                kind=entry.kind,
                label=entry_label(entry),
                level=LEVEL_KINDS.index(entry.kind) + 1 if entry.kind in LEVEL_KINDS else None,
                earner="我" if mine else mask_name(nickname),
                mine=mine,
                amount_fen=entry.amount_fen,
                taken_back_fen=int(taken.get(entry.id, 0)),
                state=entry.state,
                state_label=CENTRE_STATE_LABELS.get(entry.state, entry.state),
                reason_not_available=reason_not_available(
                    entry, order, now, refund_open=refund_open, hold_days=hold_days
                )
                if mine
                else "",
            )
        )
    return views
