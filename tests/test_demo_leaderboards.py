"""``flask seed-demo`` leaves the incentives alive: paid demo orders through demo
distributors (placed, paid and followed up by the real services), so every leaderboard has
rows and the running demo task shows progress; a second run adds nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.distribution.models import Distributor
from app.extensions import db
from app.incentives import leaderboards
from app.incentives.tasks import progress_for
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from demo.incentives import DEMO_REMARK, DEMO_SELLERS, DEMO_TASK_NAME

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def _demo_orders() -> int:
    return db.session.scalar(
        select(func.count()).select_from(Order).where(Order.remark == DEMO_REMARK)
    )


def test_seed_demo_fills_leaderboards_and_task(app, runner):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "demo sales: 6 paid orders" in first.output

    with app.app_context():
        assert _demo_orders() == 6
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.remark == DEMO_REMARK, Order.paid_at.is_(None))
            )
            == 0
        )
        top = db.session.scalar(
            select(Distributor)
            .join(Distributor.user)
            .where(Distributor.parent_id.is_(None), Distributor.user.has(nickname=DEMO_SELLERS[0]))
        )
        assert top is not None
        # Commissions were written by the follow-up job, not by the seed itself.
        assert (
            db.session.scalar(
                select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "level_1")
            )
            >= 4
        )
        for board in leaderboards.BOARDS:
            for period in leaderboards.PERIODS:
                shown = leaderboards.read(board, period, top.id)
                assert shown.rows, (board, period)
        sales = leaderboards.read("sales", "day", top.id)
        assert sales.rows[0].distributor_id == top.id and sales.me.rank == 1
        invites = leaderboards.read("invites", "month", top.id)
        assert invites.me is not None and invites.me.score == 2  # 阿强 and 丽丽 bought
        # The database and the Redis sets agree.
        assert leaderboards.from_database("sales", "day") == leaderboards.from_redis("sales", "day")

        (demo_task,) = [p for p in progress_for(top) if p.task.name == DEMO_TASK_NAME]
        assert demo_task.value > 0 and 0 < demo_task.percent < 100
        assert demo_task.seconds_left > 0

    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0, again.output
    assert "demo sales already there" in again.output
    with app.app_context():
        assert _demo_orders() == 6
