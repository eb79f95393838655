"""Real orders for the ledger tests: placed, paid as the payment notice does, followed up
by the commission job as the worker calls it, refunded, shipped and completed with the
merchant services."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.core.time import utcnow
from app.distribution.binding import bind
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.distribution.models import Distributor
from app.extensions import db
from app.incentives import invites, tasks
from app.incentives.models import Task
from app.ledger.models import LedgerEntry, LedgerEntryChange
from app.orders.models import Order
from app.orders.refunds import request_refund
from app.orders.services import ItemRequest, mark_paid, place_order
from app.orders.shipping import complete_order, ship_order
from app.payments.refunds import complete_refund
from jobs.commissions import compute_order_commissions
from tests.support.pay import address_for, fresh


def configure(**values) -> None:
    """Change the shop's distribution settings (committed). Defaults: 10% / 5%."""
    settings = get_distribution_settings()
    values = {"level1_bp": 1000, "level2_bp": 500, "level3_bp": 0, **values}
    for name, value in values.items():
        setattr(settings, name, value)
    db.session.commit()


def distributor(make, parent: Distributor | None = None) -> Distributor:
    """An active distributor (committed)."""
    row = create_distributor(make.user(nickname="分销员").id, parent)
    db.session.commit()
    return row


def customer_of(make, seller: Distributor):
    """A customer bound to ``seller`` by link (committed)."""
    user = make.user(nickname="张三丰")
    bind(user.id, seller, "link")
    db.session.commit()
    return user


def place(make, user, *, price_fen: int = 10000, quantity: int = 1) -> Order:
    """A committed order of ``quantity`` units of a fresh product."""
    product = make.product(price_fen=price_fen, stock=1000)
    order = place_order(user.id, [ItemRequest(product.skus[0].id, quantity)], address_for(user).id)
    db.session.commit()
    return order


def pay(order: Order) -> Order:
    """Mark ``order`` paid as the payment notice does, then run the commission job."""
    mark_paid(order, transaction_id=f"TL{order.id}", amount_fen=order.total_fen)
    db.session.commit()
    compute_order_commissions(order.id)
    return fresh(Order, order.id)


def ask_refund(order: Order, quantity: int):
    """A refund requested (still open), committed."""
    order = fresh(Order, order.id)
    row = request_refund(order, order.lines[0], quantity, "不想要了", f"user:{order.user_id}")
    db.session.commit()
    return row


def refund(order: Order, quantity: int):
    """Ask for and complete a refund of ``quantity`` units of the first line (committed)."""
    row = ask_refund(order, quantity)
    complete_refund(row, f"RF{row.id}", row.amount_fen, {})
    db.session.commit()
    return row


def finish(order: Order, *, days_ago: int = 0) -> Order:
    """Ship and complete ``order`` (as if completed ``days_ago`` days ago)."""
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


def make_task(target: int = 10000, reward: int = 888) -> Task:
    """A running sales task (started an hour ago, ends tomorrow), committed."""
    now = utcnow()
    task = tasks.save_task(
        tasks.TaskInput(
            name="冲刺任务",
            target_kind="sales_fen",
            target_value=target,
            reward_fen=reward,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=1),
            grade_ids=[],
        )
    )
    db.session.commit()
    return task


def invite_reward(fen: int = 500) -> None:
    """Switch the invite reward on (committed)."""
    row = invites.get_incentive_settings()
    row.invite_reward_enabled = True
    row.invite_reward_fen = fen
    db.session.commit()


def entries(**where) -> list[LedgerEntry]:
    """Ledger entries matching ``where`` (column=value), oldest first, as committed."""
    db.session.rollback()
    query = select(LedgerEntry).order_by(LedgerEntry.id)
    for name, value in where.items():
        query = query.where(getattr(LedgerEntry, name) == value)
    return list(db.session.scalars(query))


def changes(entry_id: int) -> list[tuple[str, str]]:
    """(from, to) of every recorded state change of an entry, in order."""
    db.session.rollback()
    return [
        (row.from_state, row.to_state)
        for row in db.session.scalars(
            select(LedgerEntryChange)
            .where(LedgerEntryChange.entry_id == entry_id)
            .order_by(LedgerEntryChange.id)
        )
    ]
