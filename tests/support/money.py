"""A distributor with money in every state, from real orders, for the centre's figures."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from app.distribution.distributors import create_distributor
from app.distribution.models import Distributor
from app.distribution.withdrawals import request_withdrawal
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.ledger.settlement import settle_due
from app.orders.models import Order
from tests.support.commissions import configure, customer_of, finish, pay, place, refund
from tests.support.distribution import make_distributor

TITLE = "手工陶瓷茶杯"


@dataclass
class Shop:
    """The seller (under ``parent``) and their orders, one per state of money."""

    seller: Distributor
    parent: Distributor
    paid: Order  # paid, not shipped: commission pending without a date
    completed_now: Order  # completed today: pending until today + 7 days
    settled: Order  # completed 30 days ago and settled: available
    partly_refunded: Order  # paid, one of two units refunded: a negative pending reversal
    refunded: Order  # refunded in full before settlement: lapsed (reversed)


def sale(make, seller: Distributor, price_fen: int, quantity: int = 1) -> Order:
    """A paid order of ``quantity`` teacups (青瓷) by a new customer of ``seller``."""
    product = make.product(TITLE, price_fen=price_fen, stock=100, specs={"颜色": ["青瓷"]})
    buyer = customer_of(make, seller, "买家")
    return pay(place(make, buyer, product=product, quantity=quantity))


def build_shop(make, seller_user=None) -> Shop:
    """Levels 10% / 5%, a 7-day hold; the seller's money (fen), all written today:

    - paid 10000: +1000 pending (no date); completed today 20000: +2000 pending (dated);
    - completed 30 days ago 30000: +3000 settled, then a withdrawal of 1000 requested;
    - 2 x 5000, one refunded: +1000 and -500 pending (no date);
    - 4000 refunded in full: +400 lapsed.

    ``seller_user`` (e.g. a fan signed in through the stand-in) becomes the seller.
    """
    configure(levels=2, level1_bp=1000, level2_bp=500, settlement_hold_days=7)
    parent = make_distributor(make, "上级老王")
    if seller_user is None:
        seller = make_distributor(make, "小张", parent=parent)
    else:
        seller = create_distributor(seller_user.id, parent)
        db.session.commit()
    paid = sale(make, seller, 10000)
    completed_now = finish(sale(make, seller, 20000))
    settled = finish(sale(make, seller, 30000), days_ago=30)
    settle_due()
    db.session.commit()
    partly = sale(make, seller, 5000, quantity=2)
    refund(partly, 1)
    gone = sale(make, seller, 4000)
    refund(gone, 1)
    request_withdrawal(db.session.get(Distributor, seller.id), 1000)
    db.session.commit()
    return Shop(seller, parent, paid, completed_now, settled, partly, gone)


def ledger_sum(distributor_id: int, *where) -> int:
    """Σ amount of the distributor's ledger entries matching ``where`` (plain SQL)."""
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
                LedgerEntry.distributor_id == distributor_id, *where
            )
        )
    )
