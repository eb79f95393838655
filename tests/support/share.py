"""Helpers for the 分享赚 and 推广商品库 tests (app/earnings/share_earnings.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, select

from app.distribution.models import CommissionRule, Distributor, Grade
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.models import OrderLine
from app.orders.services import ItemRequest, place_order
from tests.support.commissions import pay
from tests.support.pay import address_for


@contextmanager
def counted_queries() -> Iterator[list[str]]:
    """Collect the SQL statements run on the engine inside the block."""
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(db.engine, "after_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "after_cursor_execute", count)


def rule(product, mode: str, level1: int, sku=None) -> CommissionRule:
    """A product (or SKU) commission rule written straight to the table, as an old rule
    saved before the payout cap existed would be (committed)."""
    row = CommissionRule(
        product_id=product.id,
        sku_id=sku.id if sku is not None else None,
        mode=mode,
        level1=level1,
        level2=0,
        level3=0,
    )
    db.session.add(row)
    db.session.commit()
    return row


def graded(d: Distributor, name: str = "金牌", level1_bp: int = 1500) -> Grade:
    """Give ``d`` a grade of its own level-1 rate (committed)."""
    grade = Grade(name=name, rank=2, level1_bp=level1_bp, level2_bp=500)
    db.session.add(grade)
    db.session.flush()
    d.grade_id = grade.id
    db.session.commit()
    return grade


def level1_written(order_id: int) -> dict[int, int]:
    """{sku id: fen} of the level-1 entries the commission job wrote for an order."""
    rows = db.session.execute(
        select(OrderLine.sku_id, LedgerEntry.amount_fen)
        .join(OrderLine, OrderLine.id == LedgerEntry.order_line_id)
        .where(LedgerEntry.order_id == order_id, LedgerEntry.kind == "level_1")
    ).all()
    return dict(rows)


def buy_each_sku(user, product) -> int:
    """A paid order of one unit of every SKU of ``product`` by ``user``, the commission
    job run as the worker runs it; the order id."""
    order = place_order(
        user.id, [ItemRequest(sku.id, 1) for sku in product.skus], address_for(user).id
    )
    db.session.commit()
    return pay(order).id
