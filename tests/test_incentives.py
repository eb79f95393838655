"""Incentives through real orders: tasks (reached once, reversed on refund, settled after
the hold), invite rewards (never for joining alone, once, reversed on refund), grade
history, and the paid follow-up job run twice and concurrently.

Orders are placed, paid, refunded and completed with the helpers of
tests/test_commissions.py; the commission job is called as the worker calls it, and it
calls the incentives hooks (app/incentives/events.py).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core.time import utcnow
from app.distribution.admin_settings import save_grade
from app.distribution.binding import bind
from app.distribution.models import Distributor
from app.extensions import db
from app.incentives import tasks
from app.incentives.models import GradeChange, IncentiveSettings
from app.ledger.balances import balances
from app.ledger.models import LedgerEntry
from app.wechat.models import OutboundMessage
from app.wechat.notify import save_setting
from jobs.commissions import compute_order_commissions
from jobs.incentives import evaluate_everything
from tests.support.commissions import (
    configure,
    customer_of,
    distributor,
    finish,
    pay,
    place,
    refund,
)
from tests.support.incentives import invite_settings, make_task

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def rewards(kind: str = "task_reward") -> list[LedgerEntry]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.kind == kind).order_by(LedgerEntry.id)
        )
    )


def reversals() -> list[LedgerEntry]:
    db.session.rollback()
    return list(
        db.session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.kind == "reversal", LedgerEntry.reward_key.is_not(None))
            .order_by(LedgerEntry.id)
        )
    )


# --- tasks ----------------------------------------------------------------------------------


def test_task_reached_once_when_the_job_runs_again(app, make):
    configure(levels=1)
    seller = distributor(make)
    task = make_task(target=20000)
    first = pay(place(make, customer_of(make, seller), price_fen=10000))
    assert rewards() == []  # 100 of 200 yuan
    assert tasks.progress_value(task, seller.id) == 10000
    second = pay(place(make, customer_of(make, seller), price_fen=10000))
    for order in (first, second, second):
        compute_order_commissions(order.id)  # duplicated events
    evaluate_everything()
    evaluate_everything()
    [reward] = rewards()
    assert (reward.distributor_id, reward.amount_fen, reward.state) == (seller.id, 888, "pending")
    assert reward.reward_key == f"task:{task.id}:{seller.id}"
    assert balances(seller.id).pending_fen == 2000 + 888


def test_task_reached_once_under_concurrent_jobs(app, make):
    configure(levels=1)
    seller = distributor(make)
    make_task(target=20000)
    orders = [
        pay(place(make, customer_of(make, seller), price_fen=10000), run_job=False)
        for _ in range(2)
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def run(order_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                compute_order_commissions(order_id)
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(o.id,)) for o in orders for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    evaluate_everything()  # whatever a race left for later, the periodic pass completes
    assert len(rewards()) == 1


def test_refund_below_target_reverses_the_reward_and_it_can_be_earned_again(app, make):
    configure(levels=1)
    seller = distributor(make)
    task = make_task(target=20000)
    pay(place(make, customer_of(make, seller), price_fen=10000))
    order = pay(place(make, customer_of(make, seller), price_fen=5000, quantity=3))
    [reward] = rewards()
    refund(order, 1)  # 250 -> 200 yuan: still reached
    assert rewards()[0].state == "pending"
    refund(order, 1)  # 150 yuan: below the target
    [reward] = rewards()
    assert reward.state == "reversed"
    [back] = reversals()
    assert (back.amount_fen, back.reverses_id, back.state) == (-888, reward.id, "reversed")
    assert balances(seller.id).pending_fen == 1500  # 10% of 150 yuan; the reward counts nothing
    evaluate_everything()  # running again changes nothing
    assert len(rewards()) == 1 and len(reversals()) == 1
    pay(place(make, customer_of(make, seller), price_fen=6000))  # reached again
    alive = [r for r in rewards() if r.state != "reversed"]
    assert [r.reward_key for r in alive] == [f"task:{task.id}:{seller.id}:2"]


def test_task_reward_settles_with_its_orders_and_a_later_refund_keeps_it(app, make):
    configure(levels=1, settlement_hold_days=7)
    seller = distributor(make)
    make_task(kind="paid_orders", target=2)
    one = pay(place(make, customer_of(make, seller)))
    two = pay(place(make, customer_of(make, seller)))
    finish(one, days_ago=10)
    evaluate_everything()
    assert rewards()[0].state == "pending"  # order two has not passed its hold
    finish(two, days_ago=3)
    evaluate_everything()
    assert rewards()[0].state == "pending"
    db.session.execute(
        db.update(type(two))
        .where(type(two).id == two.id)
        .values(completed_at=utcnow() - timedelta(days=8))
    )
    db.session.commit()
    evaluate_everything()
    [reward] = rewards()
    assert reward.state == "settled"
    assert balances(seller.id).available_fen == 888


def test_only_paid_activity_inside_the_window_counts(app, make):
    configure(levels=1)
    seller = distributor(make)
    pay(place(make, customer_of(make, seller), price_fen=30000))  # before the task starts
    task = make_task(target=20000, starts_at=utcnow() + timedelta(seconds=1))
    place(make, customer_of(make, seller), price_fen=30000)  # never paid
    evaluate_everything()
    assert tasks.progress_value(task, seller.id) == 0
    assert rewards() == []


def test_grades_limit_who_may_earn(app, make):
    configure(levels=1)
    gold = save_grade({"name": "金牌"})
    db.session.commit()
    seller = distributor(make)
    make_task(target=100, grade_ids=[gold.id])
    pay(place(make, customer_of(make, seller)))
    assert rewards() == []
    db.session.get(Distributor, seller.id).grade_id = gold.id
    db.session.commit()
    evaluate_everything()
    assert len(rewards()) == 1


def test_new_distributors_and_customers_count_only_with_a_purchase(app, make):
    configure(levels=1)
    boss = distributor(make)
    recruits = make_task(kind="new_distributors", target=2, name="招募")
    customers = make_task(kind="new_customers", target=2, name="拓客")
    joined = [distributor(make, boss) for _ in range(3)]  # joining alone counts nothing
    buyers = [customer_of(make, boss) for _ in range(2)]
    evaluate_everything()
    assert tasks.progress_value(recruits, boss.id) == 0
    assert tasks.progress_value(customers, boss.id) == 0
    assert rewards() == []
    pay(place(make, db.session.get(Distributor, joined[0].id).user))
    pay(place(make, buyers[0]))
    assert tasks.progress_value(recruits, boss.id) == 1
    assert tasks.progress_value(customers, boss.id) == 1
    pay(place(make, db.session.get(Distributor, joined[1].id).user))
    pay(place(make, buyers[1]))
    assert sorted(r.rule_source for r in rewards()) == sorted(
        [f"task:{recruits.id}", f"task:{customers.id}"]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target_value": 0}, "目标值必须大于 0"),
        ({"reward_fen": 0}, "奖励金额必须大于 0"),
        ({"ends_at": utcnow() - timedelta(days=2)}, "结束时间必须晚于开始时间"),
        ({"grade_ids": [999999]}, "所选等级不存在"),
        ({"target_kind": "heads"}, "请选择任务目标"),
        ({"name": " "}, "请填写任务名称"),
    ],
)
def test_task_validation(app_ctx, change, message):
    now = utcnow()
    values = {
        "name": "任务",
        "target_kind": "sales_fen",
        "target_value": 100,
        "reward_fen": 100,
        "starts_at": now - timedelta(days=1),
        "ends_at": now + timedelta(days=1),
        "grade_ids": [],
    }
    values.update(change)
    with pytest.raises(tasks.TaskError, match=message):
        tasks.save_task(tasks.TaskInput(**values))


# --- invite rewards -------------------------------------------------------------------------


def test_no_invite_reward_for_joining_alone(app, make):
    configure(levels=1)
    invite_settings(500)
    inviter = distributor(make)
    for _ in range(3):
        distributor(make, inviter)
    evaluate_everything()
    assert rewards("invite_reward") == []
    assert balances(inviter.id).pending_fen == 0


def test_invite_reward_once_per_invitee_on_the_first_purchase(app, make):
    configure(levels=1)
    invite_settings(500)
    inviter = distributor(make)
    invitee = distributor(make, inviter)
    user = db.session.get(Distributor, invitee.id).user
    first = pay(place(make, user))
    pay(place(make, user))
    compute_order_commissions(first.id)
    evaluate_everything()
    [reward] = rewards("invite_reward")
    assert (reward.distributor_id, reward.amount_fen, reward.state) == (inviter.id, 500, "pending")
    assert (reward.reward_key, reward.order_id) == (f"invite:{invitee.id}", first.id)
    # Shown apart from commission: its own kind, not a level.
    assert {e.kind for e in db.session.scalars(select(LedgerEntry))} >= {"invite_reward"}


def test_invite_reward_reversed_when_the_purchase_is_refunded(app, make):
    configure(levels=1)
    invite_settings(500)
    inviter = distributor(make)
    invitee = distributor(make, inviter)
    order = pay(place(make, db.session.get(Distributor, invitee.id).user, quantity=2))
    refund(order, 1)
    assert rewards("invite_reward")[0].state == "pending"  # a real sale remains
    refund(order, 1)
    [reward] = rewards("invite_reward")
    assert reward.state == "reversed"
    assert balances(inviter.id).pending_fen == 0
    pay(place(make, db.session.get(Distributor, invitee.id).user))  # once per invitee
    evaluate_everything()
    assert len(rewards("invite_reward")) == 1


def test_invite_reward_settles_with_its_purchase(app, make):
    configure(levels=1, settlement_hold_days=7)
    invite_settings(500)
    inviter = distributor(make)
    invitee = distributor(make, inviter)
    order = pay(place(make, db.session.get(Distributor, invitee.id).user))
    finish(order, days_ago=8)
    evaluate_everything()
    assert rewards("invite_reward")[0].state == "settled"
    assert balances(inviter.id).available_fen == 500


def test_invite_reward_off_writes_nothing(app, make):
    configure(levels=1)
    invite_settings(500, enabled=False)
    inviter = distributor(make)
    invitee = distributor(make, inviter)
    pay(place(make, db.session.get(Distributor, invitee.id).user))
    assert rewards("invite_reward") == []
    assert db.session.get(IncentiveSettings, 1).invite_reward_fen == 500


# --- grades ---------------------------------------------------------------------------------


def test_grade_upgrade_on_payment_with_history_and_notice(app, make):
    configure(levels=1)
    silver = save_grade({"name": "银牌", "rank": 1, "upgrade_team_sales_fen": 10000})
    gold = save_grade({"name": "金牌", "rank": 2, "upgrade_team_sales_fen": 30000})
    save_setting("grade_upgraded", "TPL_GRADE", True)
    db.session.commit()
    seller = distributor(make)
    pay(place(make, customer_of(make, seller), price_fen=10000))
    pay(place(make, customer_of(make, seller), price_fen=25000))
    db.session.rollback()
    rows = db.session.scalars(select(GradeChange).order_by(GradeChange.id)).all()
    assert [(r.from_grade_id, r.to_grade_id) for r in rows] == [
        (None, silver.id),
        (silver.id, gold.id),
    ]
    keys = set(db.session.scalars(select(OutboundMessage.dedupe_key)))
    assert {
        f"grade_upgraded:{seller.id}:{silver.id}",
        f"grade_upgraded:{seller.id}:{gold.id}",
    } <= keys
    # A refund never lowers the grade.
    order = pay(place(make, customer_of(make, seller), price_fen=100))
    refund(order, 1)
    assert db.session.get(Distributor, seller.id).grade_id == gold.id
    assert db.session.scalar(select(func.count()).select_from(GradeChange)) == 2


def test_new_member_upgrades_the_inviter_on_the_periodic_pass(app, make):
    captain = save_grade({"name": "队长", "rank": 1, "upgrade_direct_count": 2})
    db.session.commit()
    boss = distributor(make)
    distributor(make, boss)
    distributor(make, boss)
    evaluate_everything()
    assert db.session.get(Distributor, boss.id).grade_id == captain.id
    [row] = db.session.scalars(select(GradeChange)).all()
    assert row.reason == "新成员加入后达标"


def test_binding_helper_is_real(app, make):
    """Guard: customers bound by link count toward new_customers (the real binding)."""
    boss = distributor(make)
    user = make.user()
    bind(user.id, boss, "link")
    db.session.commit()
    task = make_task(kind="new_customers", target=1)
    assert tasks.progress_value(task, boss.id) == 0
