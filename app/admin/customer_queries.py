"""What the admin's customers pages read: one page of customers with their figures, and
one customer's orders, bindings and refunds.

Fast with many customers: the list pages the ``users`` table first (newest first, by
primary key) and only then aggregates the orders of the page's customers in one GROUP BY
over ``orders.user_id`` (indexed); the phone is a scalar subquery on ``addresses.user_id``
(indexed) and the bound distributor an outer join on ``bindings.user_id`` (unique). A
search narrows the users before anything is summed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, exists, func, or_, select

from app.accounts.models import User
from app.accounts.names import display_name
from app.core.params import MAX_ID
from app.distribution.models import Binding, BindingEvent, Distributor
from app.extensions import db
from app.orders.models import Address, Order, OrderLine, Refund

PER_PAGE = 30
MAX_QUERY = 32


@dataclass(frozen=True)
class CustomerRow:
    """One line of the customers list."""

    user_id: int
    nickname: str
    phone: str
    created_at: datetime
    distributor_id: int | None
    distributor_name: str
    orders: int
    paid_orders: int
    spent_fen: int
    refunded_fen: int

    @property
    def name(self) -> str:
        return display_name(self.nickname, self.user_id)


def _phone():
    return (
        select(Address.phone)
        .where(Address.user_id == User.id)
        .order_by(Address.is_default.desc(), Address.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def customer_filter(q: str) -> list:
    """SQL conditions on ``users`` for a search: nickname contains ``q``; a phone of theirs
    contains it (3 digits or more); their user number, or the code of the distributor
    they are bound to, is ``q``."""
    q = (q or "").strip()[:MAX_QUERY]
    if not q:
        return []
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    bound_code = (
        select(Binding.user_id)
        .join(Distributor, Distributor.id == Binding.distributor_id)
        .where(Distributor.code == q.upper())
    )
    own_code = select(Distributor.user_id).where(Distributor.code == q.upper())
    conditions = [
        User.nickname.ilike(f"%{escaped}%", escape="\\"),
        User.id.in_(bound_code),
        User.id.in_(own_code),
    ]
    if q.isascii() and q.isdecimal():
        if len(q) >= 3:
            conditions.append(
                exists().where(Address.user_id == User.id, Address.phone.like(f"%{q}%"))
            )
        if len(q) <= len(str(MAX_ID)) and int(q) <= MAX_ID:
            conditions.append(User.id == int(q))
    return [or_(*conditions)]


def customer_page(q: str, page: int):
    """The page'th page of customers matching ``q`` (newest first): a pagination whose
    ``items`` are CustomerRow."""
    pagination = db.paginate(
        select(User.id).where(*customer_filter(q)).order_by(User.id.desc()),
        page=page,
        per_page=PER_PAGE,
        error_out=False,
    )
    ids = list(pagination.items)
    bound = db.aliased(User)
    rows = []
    if ids:
        rows = db.session.execute(
            select(User.id, User.nickname, _phone(), User.created_at, Distributor.id, bound)
            .select_from(User)
            .outerjoin(Binding, Binding.user_id == User.id)
            .outerjoin(Distributor, Distributor.id == Binding.distributor_id)
            .outerjoin(bound, bound.id == Distributor.user_id)
            .where(User.id.in_(ids))
            .order_by(User.id.desc())
        ).all()
    figures = order_figures(ids)
    pagination.items = [
        CustomerRow(
            uid,
            nick or "",
            phone or "",
            created,
            did,
            display_name(who.nickname, who.id) if who is not None else "",
            *figures.get(uid, (0, 0, 0, 0)),
        )
        for uid, nick, phone, created, did, who in rows
    ]
    return pagination


def order_figures(user_ids: list[int]) -> dict[int, tuple[int, int, int, int]]:
    """Per user: orders placed, orders paid, paid amount, refunded amount (one GROUP BY)."""
    if not user_ids:
        return {}
    paid = Order.paid_at.is_not(None)
    rows = db.session.execute(
        select(
            Order.user_id,
            func.count(Order.id),
            func.sum(case((paid, 1), else_=0)),
            func.coalesce(func.sum(case((paid, Order.paid_fen), else_=0)), 0),
            func.coalesce(func.sum(Order.refunded_fen), 0),
        )
        .where(Order.user_id.in_(user_ids))
        .group_by(Order.user_id)
    ).all()
    return {uid: (int(n), int(p or 0), int(s or 0), int(r or 0)) for uid, n, p, s, r in rows}


@dataclass(frozen=True)
class CustomerDetail:
    """Everything the customer page shows."""

    user: User
    addresses: list[Address]
    binding: Binding | None
    distributor: Distributor | None  # their own distributor row, when they are one
    figures: tuple[int, int, int, int]
    orders: list[Order]
    events: list[BindingEvent]
    refunds: list[tuple[Refund, str, str]]  # refund, order number, line title
    people: dict[int, Distributor]  # distributors named in the binding and events


MAX_ROWS = 100


def customer_detail(user: User) -> CustomerDetail:
    """One customer's addresses, binding, binding history, orders and refunds (the newest
    ``MAX_ROWS`` of each)."""
    uid = user.id
    addresses = db.session.scalars(
        select(Address).where(Address.user_id == uid).order_by(Address.is_default.desc())
    ).all()
    binding = db.session.scalar(select(Binding).where(Binding.user_id == uid))
    own = db.session.scalar(select(Distributor).where(Distributor.user_id == uid))
    orders = db.session.scalars(
        select(Order).where(Order.user_id == uid).order_by(Order.id.desc()).limit(MAX_ROWS)
    ).all()
    events = db.session.scalars(
        select(BindingEvent)
        .where(BindingEvent.user_id == uid)
        .order_by(BindingEvent.id.desc())
        .limit(MAX_ROWS)
    ).all()
    refunds = db.session.execute(
        select(Refund, Order.number, OrderLine.title)
        .join(Order, Order.id == Refund.order_id)
        .join(OrderLine, OrderLine.id == Refund.order_line_id)
        .where(Order.user_id == uid)
        .order_by(Refund.id.desc())
        .limit(MAX_ROWS)
    ).all()
    ids = {e.distributor_id for e in events} | {e.previous_distributor_id for e in events}
    if binding is not None:
        ids.add(binding.distributor_id)
    ids.discard(None)
    people = {}
    if ids:
        people = {
            d.id: d for d in db.session.scalars(select(Distributor).where(Distributor.id.in_(ids)))
        }
    return CustomerDetail(
        user=user,
        addresses=list(addresses),
        binding=binding,
        distributor=own,
        figures=order_figures([uid]).get(uid, (0, 0, 0, 0)),
        orders=list(orders),
        events=list(events),
        refunds=[(r, number, title) for r, number, title in refunds],
        people=people,
    )
