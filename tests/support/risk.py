"""Risk-control helpers: a ring of buyers shipping to one receiver through one
distributor's link, an honest distributor with the same volume, and reads of flags,
holds and audit rows (tests/test_risk.py, tests/test_risk_browser.py)."""

from __future__ import annotations

from sqlalchemy import select

from app.core.models import AuditLog
from app.distribution.models import Distributor
from app.extensions import db
from app.ledger.models import LedgerHold
from app.orders.models import Order
from app.orders.services import ItemRequest, mark_paid, place_order
from app.risk.models import RiskFlag
from jobs.commissions import compute_order_commissions
from tests.support.commissions import customer_of, distributor, finish
from tests.support.ledger import configure
from tests.support.pay import fresh

RING_PHONE = "13912345678"
RING_DETAIL = "幸福路 8 号 3 栋"


def buy(make, user, address, price_fen: int = 10000, payer_openid: str | None = None) -> Order:
    """A paid order of one unit shipped to ``address``, its follow-up job run; WeChat
    Pay's notice names ``payer_openid`` as the payer (default: the buyer)."""
    product = make.product(price_fen=price_fen, stock=100)
    order = place_order(user.id, [ItemRequest(product.skus[0].id, 1)], address.id)
    db.session.commit()
    payload = {"payer": {"openid": payer_openid or user.openid}}
    mark_paid(
        order, transaction_id=f"T-risk-{order.id}", amount_fen=order.total_fen, payload=payload
    )
    db.session.commit()
    compute_order_commissions(order.id)
    return fresh(Order, order.id)


def ring(make, buyers: int = 3, seller: Distributor | None = None):
    """(seller, orders): ``buyers`` openids bound by the seller's link, each buying once
    and shipping to one phone and one address (written the same way, spaced differently)."""
    configure(levels=1, settlement_hold_days=7)
    seller = seller or distributor(make, nickname="环形分销员")
    orders = []
    for n in range(buyers):
        user = customer_of(make, seller, nickname=f"环{n}")
        detail = RING_DETAIL if n % 2 == 0 else RING_DETAIL.replace(" ", "")
        address = make.address(user, phone=RING_PHONE, detail=detail, name=f"收货人{n}")
        orders.append(buy(make, user, address))
    return seller, orders


def honest(make, buyers: int = 3):
    """(seller, orders): the same volume, each buyer with their own receiver."""
    configure(levels=1, settlement_hold_days=7)
    seller = distributor(make, nickname="诚信分销员")
    orders = []
    for n in range(buyers):
        user = customer_of(make, seller, nickname=f"客{n}")
        orders.append(buy(make, user, make.address(user)))
    return seller, orders


def finish_all(orders, days_ago: int = 10) -> None:
    for order in orders:
        finish(order, days_ago=days_ago)


def flags(**where) -> list[RiskFlag]:
    db.session.rollback()
    query = select(RiskFlag).order_by(RiskFlag.id)
    for name, value in where.items():
        query = query.where(getattr(RiskFlag, name) == value)
    return list(db.session.scalars(query))


def holds(**where) -> list[LedgerHold]:
    db.session.rollback()
    query = select(LedgerHold).order_by(LedgerHold.id)
    for name, value in where.items():
        query = query.where(getattr(LedgerHold, name) == value)
    return list(db.session.scalars(query))


def audits(action_prefix: str = "risk.") -> list[AuditLog]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(AuditLog).where(AuditLog.action.startswith(action_prefix)).order_by(AuditLog.id)
        )
    )
