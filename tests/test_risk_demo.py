"""The demo shop raises no risk flag: its buyers ship to their own receivers, and the
default thresholds leave an honest shop alone (docs/risk.md)."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.ledger.models import LedgerHold
from app.orders.models import Order
from app.risk.models import RiskFlag
from jobs.risk import check_paid_orders, check_refunded_order, sweep


def test_the_demo_seed_raises_no_flag(app, runner):
    seeded = runner.invoke(args=["seed-demo"])
    assert seeded.exit_code == 0, seeded.output
    with app.app_context():
        paid = db.session.scalars(select(Order.id).where(Order.paid_at.is_not(None))).all()
        assert len(paid) >= 5  # the demo sales and the cloud purchase
        assert check_paid_orders(list(paid)) == 0
        for order_id in paid:
            assert check_refunded_order(order_id) == 0
        assert sweep()["flagged"] == 0
        assert db.session.scalar(select(func.count()).select_from(RiskFlag)) == 0
        assert db.session.scalar(select(func.count()).select_from(LedgerHold)) == 0
