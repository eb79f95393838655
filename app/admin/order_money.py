"""The order page's distribution part: who the order is attributed to (the chain fixed when
it was placed) and every ledger entry written for it, with who earns it and its state."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.admin.people import Person, people_by_distributor
from app.distribution.admin_labels import LEVEL_LABELS
from app.distribution.models import OrderAttribution
from app.extensions import db
from app.ledger.kinds import KIND_LABELS, STATE_LABELS
from app.ledger.models import LedgerEntry
from app.orders.models import Order, OrderLine


@dataclass(frozen=True)
class ChainLink:
    level: int
    level_text: str
    distributor_id: int
    name: str
    code: str
    self_purchase: bool


@dataclass(frozen=True)
class Earning:
    id: int
    kind_text: str
    distributor_id: int
    name: str
    code: str
    line_title: str
    amount_fen: int
    state: str
    state_text: str
    note: str


@dataclass(frozen=True)
class OrderMoney:
    chain: list[ChainLink]
    earnings: list[Earning]

    @property
    def total_fen(self) -> int:
        """Σ of every entry on the order (reversals subtract)."""
        return sum(e.amount_fen for e in self.earnings)


def _name(person: Person | None, distributor_id: int) -> tuple[str, str]:
    if person is None:
        return f"分销员 #{distributor_id}", ""
    return person.name, person.code


def order_money(order: Order) -> OrderMoney:
    """The attribution chain (level 1 first) and the ledger entries of ``order``."""
    links = db.session.scalars(
        select(OrderAttribution)
        .where(OrderAttribution.order_id == order.id)
        .order_by(OrderAttribution.level)
    ).all()
    entries = db.session.execute(
        select(LedgerEntry, OrderLine.title)
        .outerjoin(OrderLine, OrderLine.id == LedgerEntry.order_line_id)
        .where(LedgerEntry.order_id == order.id)
        .order_by(LedgerEntry.id)
    ).all()
    people = people_by_distributor(
        {a.distributor_id for a in links} | {e.distributor_id for e, _t in entries}
    )
    chain = []
    for a in links:
        name, code = _name(people.get(a.distributor_id), a.distributor_id)
        chain.append(
            ChainLink(
                a.level,
                LEVEL_LABELS.get(a.level, f"{a.level}级"),
                a.distributor_id,
                name,
                code,
                a.self_purchase,
            )
        )
    earnings = []
    for e, title in entries:
        name, code = _name(people.get(e.distributor_id), e.distributor_id)
        earnings.append(
            Earning(
                e.id,
                KIND_LABELS.get(e.kind, e.kind),
                e.distributor_id,
                name,
                code,
                title or "",
                e.amount_fen,
                e.state,
                STATE_LABELS.get(e.state, e.state),
                e.note,
            )
        )
    return OrderMoney(chain, earnings)
