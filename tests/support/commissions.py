"""Helpers that build distributor chains and drive orders through payment, refund
and settlement, as the worker does."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from app.core.time import utcnow
from app.distribution.binding import bind
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.distribution.models import Distributor
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from app.orders.refunds import request_refund
from app.orders.services import ItemRequest, mark_paid, place_order
from app.orders.shipping import complete_order, ship_order
from app.payments.refunds import complete_refund
from jobs.commissions import compute_order_commissions
from tests.support.database import empty_database
from tests.support.pay import (
    address_for,
    fresh,
)


def configure(**values) -> None:
    """Change the shop's distribution settings (committed). Defaults: 10% / 5% / 2%."""
    settings = get_distribution_settings()
    values = {"level1_bp": 1000, "level2_bp": 500, "level3_bp": 200, **values}
    for name, value in values.items():
        setattr(settings, name, value)
    db.session.commit()


def distributor(make, parent: Distributor | None = None, nickname: str = "分销员") -> Distributor:
    """An active distributor (committed)."""
    row = create_distributor(make.user(nickname=nickname).id, parent)
    db.session.commit()
    return row


def chain(make, length: int) -> list[Distributor]:
    """Distributors in a line, the seller first: [seller, parent, grandparent, ...]."""
    top = None
    made = []
    for _ in range(length):
        top = distributor(make, top)
        made.append(top)
    return list(reversed(made))


def customer_of(make, seller: Distributor | None, nickname: str = "张三丰"):
    """A customer bound to ``seller`` by link (committed)."""
    user = make.user(nickname=nickname)
    if seller is not None:
        bind(user.id, seller, "link")
        db.session.commit()
    return user


def place(make, user, *, price_fen: int = 10000, quantity: int = 1, product=None) -> Order:
    """A committed order of ``quantity`` units of a fresh product's SKU (or ``product``)."""
    product = product or make.product(price_fen=price_fen, stock=1000)
    address = address_for(user)
    order = place_order(user.id, [ItemRequest(product.skus[0].id, quantity)], address.id)
    db.session.commit()
    return order


_txn = iter(range(10**6))


def pay(order: Order, *, run_job: bool = True) -> Order:
    """Mark ``order`` paid as the payment notice does, then run the commission job."""
    mark_paid(order, transaction_id=f"T{order.id}-{next(_txn)}", amount_fen=order.total_fen)
    db.session.commit()
    if run_job:
        compute_order_commissions(order.id)
    return fresh(Order, order.id)


def refund(order: Order, quantity: int, line_index: int = 0):
    """Ask for and complete a refund of ``quantity`` units of a line (committed)."""
    order = fresh(Order, order.id)
    line = order.lines[line_index]
    row = request_refund(order, line, quantity, "不想要了", f"user:{order.user_id}")
    db.session.commit()
    complete_refund(row, f"RF{row.id}", row.amount_fen, {})
    db.session.commit()
    return row


def finish(order: Order, *, days_ago: int = 0) -> Order:
    """Ship and complete ``order`` (completed ``days_ago`` days ago)."""
    order = fresh(Order, order.id)
    ship_order(order, "SF", "SF1234567890", "staff:1")
    complete_order(order, "staff:1")
    if days_ago:
        db.session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(completed_at=utcnow() - timedelta(days=days_ago))
        )
    db.session.commit()
    return fresh(Order, order.id)


def earned(order_id: int) -> dict[str, int]:
    """{"level_1@<distributor id>": fen} of the order's earning entries."""
    db.session.rollback()
    rows = db.session.execute(
        select(LedgerEntry.kind, LedgerEntry.distributor_id, LedgerEntry.amount_fen).where(
            LedgerEntry.order_id == order_id, LedgerEntry.kind != "reversal"
        )
    ).all()
    return {f"{kind}@{who}": amount for kind, who, amount in rows}


def wipe() -> None:
    """Empty every table (as the per-test fixture does), for a fresh example."""
    db.session.remove()
    empty_database()


def duplicate_earnings() -> int:
    """How many (line, beneficiary, kind) keys have more than one ledger entry (must be 0),
    read in the session's current transaction."""
    groups = (
        select(LedgerEntry.order_line_id)
        .where(LedgerEntry.order_line_id.is_not(None))
        .group_by(LedgerEntry.order_line_id, LedgerEntry.distributor_id, LedgerEntry.kind)
        .having(func.count() > 1)
        .subquery()
    )
    return db.session.scalar(select(func.count()).select_from(groups))
