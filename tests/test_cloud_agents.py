"""Regional agents (issue 8): region protection, staff decisions, dividends at three levels,
product overrides, refunds, settlement and withdrawal of dividends.

Orders are placed with ``place_order`` and paid with ``mark_paid`` or, in the refund test, a
signed payment notice over real HTTP; the commission job function is called as the worker
calls it, so the pipeline step it gained (region dividends) runs for real.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app.cloud import agents as svc
from app.cloud.dividends import region_orders, sales_rollup
from app.cloud.models import RegionAgent
from app.core.models import StatusChange
from app.core.status import InvalidTransition
from app.distribution.models import Distributor
from app.distribution.withdrawals import request_withdrawal
from app.extensions import db
from app.ledger.balances import balances, entries_for
from app.ledger.models import LedgerEntry
from app.ledger.settlement import settle_due
from app.orders.models import Order
from jobs.commissions import compute_order_commissions
from tests.support.cloud import (
    DONGCHENG,
    FUTIAN,
    GUANGDONG,
    NANSHAN,
    SHENZHEN,
    assigned,
    order_to,
    rates,
    three_agents,
)
from tests.support.commissions import finish, pay, refund
from tests.support.pay import fresh, prepay, sandbox_pay, wait_until

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

# --- helpers ----------------------------------------------------------------------------------


def dividends(order_id: int) -> dict[int, int]:
    """{distributor id: fen} of the order's region_dividend entries."""
    db.session.rollback()
    rows = db.session.execute(
        select(LedgerEntry.distributor_id, LedgerEntry.amount_fen).where(
            LedgerEntry.order_id == order_id, LedgerEntry.kind == "region_dividend"
        )
    ).all()
    return dict(rows)


def net(distributor_id: int, order_id: int) -> int:
    db.session.rollback()
    return sum(
        db.session.scalars(
            select(LedgerEntry.amount_fen).where(
                LedgerEntry.order_id == order_id,
                LedgerEntry.distributor_id == distributor_id,
                LedgerEntry.state != "reversed",
            )
        )
    )


# --- settings and regions ---------------------------------------------------------------------


def test_settings_rates_are_validated(app_ctx):
    settings = svc.get_cloud_settings()
    assert (settings.province_bp, settings.city_bp, settings.district_bp) == (100, 200, 300)
    for bad in (-1, 10001, "100", 1.5, True):
        with pytest.raises(svc.AgentError) as err:
            svc.update_cloud_settings({"city_bp": bad}, owner=True)
        assert err.value.code == "invalid_rate"
    db.session.rollback()
    svc.update_cloud_settings({"city_bp": 10000, "agents_enabled": False}, owner=True)
    db.session.commit()
    assert (svc.get_cloud_settings().city_bp, svc.get_cloud_settings().agents_enabled) == (
        10000,
        False,
    )


@pytest.mark.parametrize(
    ("level", "code", "ok"),
    [
        ("province", GUANGDONG, True),
        ("province", SHENZHEN, False),  # a city is not a province
        ("city", SHENZHEN, True),
        ("city", "110100", True),  # 北京: the municipality's synthetic city
        ("city", NANSHAN, False),
        ("district", NANSHAN, True),
        ("district", SHENZHEN, False),
        ("district", "999999", False),
        ("district", "44030", False),
        ("county", NANSHAN, False),
    ],
)
def test_region_must_match_the_level(app_ctx, make, level, code, ok):
    user = make.user()
    if ok:
        agent = svc.apply_for_region(user.id, level, code)
        assert agent.status == "pending" and agent.region_code == code
    else:
        with pytest.raises(svc.AgentError) as err:
            svc.apply_for_region(user.id, level, code)
        assert err.value.status == 422


def test_taken_region_is_refused_without_saying_who_holds_it(app_ctx, make):
    holder = make.user(nickname="李大富")
    svc.apply_for_region(holder.id, "district", NANSHAN)
    db.session.commit()
    with pytest.raises(svc.AgentError) as err:
        svc.apply_for_region(make.user().id, "district", NANSHAN)
    assert err.value.code == "region_taken" and err.value.status == 409
    assert "李" not in err.value.message and str(holder.id) not in err.value.message
    db.session.rollback()
    # The city around it and the province are different regions.
    svc.apply_for_region(make.user().id, "city", SHENZHEN)
    db.session.commit()


def test_applying_makes_the_user_a_distributor_and_is_audited(app_ctx, make):
    from app.distribution.distributors import distributor_for_user

    user = make.user()
    agent = svc.apply_for_region(user.id, "city", SHENZHEN)
    db.session.commit()
    distributor = distributor_for_user(user.id)
    assert distributor.status == "active" and agent.distributor_id == distributor.id
    assert agent.region_name == "广东省 深圳市"
    history = db.session.scalars(
        select(StatusChange).where(
            StatusChange.subject == "agent", StatusChange.subject_id == agent.id
        )
    ).all()
    assert [(h.from_status, h.to_status) for h in history] == [(None, "pending")]


def test_staff_approve_reject_revoke_transfer_are_audited(app_ctx, make):
    a = svc.apply_for_region(make.user().id, "district", NANSHAN)
    b = svc.apply_for_region(make.user().id, "district", FUTIAN)
    db.session.commit()
    svc.approve(a, "staff:1")
    with pytest.raises(svc.AgentError):
        svc.reject(b, "staff:1", "  ")
    svc.reject(b, "staff:1", "资料不全")
    db.session.commit()
    with pytest.raises(InvalidTransition):
        svc.approve(b, "staff:1")  # a decision is final
    # Rejected frees the region for someone else.
    c = svc.apply_for_region(make.user().id, "district", FUTIAN)
    db.session.commit()
    assert c.status == "pending"
    # Transfer: the old row revoked, a new active one, in one step; the region stays held.
    newcomer = make.user()
    moved = svc.transfer(a, newcomer.id, "staff:1", "合同到期")
    db.session.commit()
    assert (fresh(RegionAgent, a.id).status, moved.status, moved.user_id) == (
        "revoked",
        "active",
        newcomer.id,
    )
    with pytest.raises(svc.AgentError):
        svc.apply_for_region(make.user().id, "district", NANSHAN)
    db.session.rollback()
    svc.revoke(moved, "staff:1", "违规")
    db.session.commit()
    assert svc.apply_for_region(make.user().id, "district", NANSHAN).status == "pending"
    db.session.commit()
    audit = db.session.execute(
        select(StatusChange.subject_id, StatusChange.to_status, StatusChange.actor).where(
            StatusChange.subject == "agent", StatusChange.from_status.is_not(None)
        )
    ).all()
    assert (a.id, "active", "staff:1") in audit
    assert (b.id, "rejected", "staff:1") in audit
    assert (a.id, "revoked", "staff:1") in audit
    assert (moved.id, "revoked", "staff:1") in audit


def test_region_protection_under_concurrent_applications(app, make):
    """Eight customers apply for one district at the same moment: exactly one holds it."""
    with app.app_context():
        users = [make.user().id for _ in range(8)]
        svc.get_cloud_settings()
        db.session.commit()
    barrier = threading.Barrier(len(users))
    outcomes: list[str] = []
    lock = threading.Lock()

    def apply(user_id: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                svc.apply_for_region(user_id, "district", NANSHAN)
                db.session.commit()
                result = "won"
            except svc.AgentError as err:
                db.session.rollback()
                result = err.code
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=apply, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["region_taken"] * 7 + ["won"]
    with app.app_context():
        held = db.session.scalars(
            select(RegionAgent).where(RegionAgent.region_code == NANSHAN)
        ).all()
        assert len(held) == 1 and held[0].status == "pending"


def test_the_database_refuses_a_second_held_row(app_ctx, make):
    """The protection is the index's, not the service's: a plain INSERT is refused too."""
    from sqlalchemy.exc import IntegrityError

    first = assigned(make, "district", NANSHAN)
    db.session.add(
        RegionAgent(
            user_id=make.user().id,
            distributor_id=first.distributor_id,
            level="district",
            region_code=NANSHAN,
            status="pending",
        )
    )
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


# --- dividends --------------------------------------------------------------------------------


def test_three_levels_earn_on_one_order_each_at_its_rate(app_ctx, make):
    rates(province=100, city=250, district=333)
    agents = three_agents(make)
    order = pay(order_to(make, NANSHAN, price_fen=9999))
    # floor(9999 × bp / 10000): 99.99 → 99, 249.975 → 249, 332.9667 → 332
    assert dividends(order.id) == {
        agents["province"].distributor_id: 99,
        agents["city"].distributor_id: 249,
        agents["district"].distributor_id: 332,
    }
    entry = db.session.scalar(
        select(LedgerEntry).where(LedgerEntry.distributor_id == agents["district"].distributor_id)
    )
    assert entry.state == "pending" and "南山区" in entry.note and entry.rule_source == "店铺默认"
    # The job again (a retry, a second worker) writes nothing new.
    again = compute_order_commissions(order.id)
    assert again["order_id"] == order.id and again["dividends"] == 0
    assert len(dividends(order.id)) == 3


def test_neighbouring_district_and_other_province(app_ctx, make):
    rates()
    agents = three_agents(make)
    futian = pay(order_to(make, FUTIAN, price_fen=10000))
    assert dividends(futian.id) == {
        agents["province"].distributor_id: 100,
        agents["city"].distributor_id: 200,
    }
    beijing = pay(order_to(make, DONGCHENG, price_fen=10000))
    assert dividends(beijing.id) == {}


def test_pending_revoked_agents_and_switch_off_earn_nothing(app_ctx, make):
    rates()
    svc.apply_for_region(make.user().id, "district", NANSHAN)  # pending
    city = assigned(make, "city", SHENZHEN)
    svc.revoke(city, "staff:1", "到期")
    db.session.commit()
    assert dividends(pay(order_to(make, NANSHAN)).id) == {}
    province = assigned(make, "province", GUANGDONG)
    rates(agents_enabled=False)
    assert dividends(pay(order_to(make, NANSHAN)).id) == {}
    rates(agents_enabled=True)
    assert dividends(pay(order_to(make, NANSHAN, price_fen=5000)).id) == {
        province.distributor_id: 50
    }


def test_product_override_beats_the_level_rate(app_ctx, make):
    rates(province=100, city=200, district=300)
    agents = three_agents(make)
    special = make.product(price_fen=9999, stock=100)
    # This product pays district agents nothing (first: with it, city 12.34% fits the
    # 30% payout cap: 10% + 5% + 1% + 12.34% + 0%).
    svc.set_product_rate(special.id, "district", 0, owner=True)
    svc.set_product_rate(special.id, "city", 1234, owner=True)
    db.session.commit()
    order = pay(order_to(make, NANSHAN, product=special))
    assert dividends(order.id) == {
        agents["province"].distributor_id: 99,
        agents["city"].distributor_id: 1233,  # floor(9999 × 1234 / 10000) = floor(1233.87)
    }
    city_entry = db.session.scalar(
        select(LedgerEntry).where(LedgerEntry.distributor_id == agents["city"].distributor_id)
    )
    assert city_entry.rule_source == "商品分红比例"
    svc.set_product_rate(special.id, "city", None, owner=True)  # back to the level rate
    db.session.commit()
    again = pay(order_to(make, NANSHAN, product=special))
    assert dividends(again.id)[agents["city"].distributor_id] == 199


def test_one_user_with_nested_regions_gets_both_dividends(app_ctx, make):
    rates(city=200, district=300)
    user = make.user()
    svc.assign_region(user.id, "city", SHENZHEN, "staff:1")
    agent = svc.assign_region(user.id, "district", NANSHAN, "staff:1")
    db.session.commit()
    order = pay(order_to(make, NANSHAN, price_fen=10000))
    assert dividends(order.id) == {agent.distributor_id: 500}


def test_signed_notice_then_refunds_reverse_dividends_proportionally(
    app, make, sandbox, live_server
):
    rates(province=100, city=200, district=300)
    agents = three_agents(make)
    order = order_to(make, NANSHAN, price_fen=3333, quantity=3)  # line 9999
    prepay(order)
    sandbox_pay(sandbox, order.number)  # the stand-in signs and sends the payment notice
    wait_until(lambda: fresh(Order, order.id).status == "paid")
    compute_order_commissions(order.id)  # what the worker runs
    p, c, d = (agents[k].distributor_id for k in ("province", "city", "district"))
    assert dividends(order.id) == {p: 99, c: 199, d: 299}
    refund(order, 1)  # 3333 of 9999 back: each dividend nets to floor(x × 6666 / 9999)
    assert (net(p, order.id), net(c, order.id), net(d, order.id)) == (66, 132, 199)
    refund(order, 2)  # the rest: every dividend and its reversal lapse
    for who in (p, c, d):
        assert net(who, order.id) == 0
        assert balances(who).pending_fen == 0
    states = set(
        db.session.scalars(select(LedgerEntry.state).where(LedgerEntry.order_id == order.id))
    )
    assert states == {"reversed"}


def test_refund_completed_before_the_job_is_applied_to_dividends(app_ctx, make):
    rates(district=300)
    agent = assigned(make, "district", NANSHAN)
    order = pay(order_to(make, NANSHAN, price_fen=5000, quantity=2), run_job=False)
    refund(order, 1)
    compute_order_commissions(order.id)
    assert net(agent.distributor_id, order.id) == 150  # floor(300 × 5000 / 10000)


def test_dividend_settles_and_is_withdrawn_like_a_commission(app_ctx, make):
    from app.distribution.distributors import get_distribution_settings

    get_distribution_settings().withdraw_min_fen = 100
    db.session.commit()
    rates(district=1000)
    agent = assigned(make, "district", NANSHAN)
    order = pay(order_to(make, NANSHAN, price_fen=20000))
    assert balances(agent.distributor_id).pending_fen == 2000
    row = entries_for(agent.distributor_id)[0]
    assert row.entry.kind == "region_dividend" and row.reason_not_available == "待确认收货"
    finish(order, days_ago=30)
    assert settle_due() >= 1
    db.session.commit()
    money = balances(agent.distributor_id)
    assert (money.pending_fen, money.available_fen) == (0, 2000)
    withdrawal = request_withdrawal(db.session.get(Distributor, agent.distributor_id), 1500)
    db.session.commit()
    assert withdrawal.amount_fen == 1500
    assert balances(agent.distributor_id).available_fen == 500


# --- what agents and staff read ---------------------------------------------------------------


def test_region_orders_and_sales_rollup(app_ctx, make):
    rates()
    agents = three_agents(make)
    pay(order_to(make, NANSHAN, price_fen=10000))
    pay(order_to(make, FUTIAN, price_fen=20000))
    pay(order_to(make, DONGCHENG, price_fen=40000))
    order_to(make, NANSHAN, price_fen=80000)  # unpaid: not a sale
    district = agents["district"]
    rows = region_orders([district], district.distributor_id)
    assert [(r.amount_fen, r.dividend_fen) for r in rows] == [(10000, 300)]
    assert rows[0].buyer_name == "王**"
    city_rows = region_orders([agents["city"]], agents["city"].distributor_id)
    assert sorted(r.dividend_fen for r in city_rows) == [200, 400]
    rollup = sales_rollup()
    assert rollup[("district", NANSHAN)].sales_fen == 10000
    assert rollup[("city", SHENZHEN)].sales_fen == 30000
    assert rollup[("province", GUANGDONG)].orders == 2
    assert rollup[("city", "110100")].sales_fen == 40000


def test_demo_agents_are_seeded_once(app_ctx, make):
    from demo.agents import seed_demo_agents

    assert seed_demo_agents().startswith("demo agents: 3 added")
    db.session.commit()
    assert seed_demo_agents().startswith("demo agents: 0 added")
    db.session.commit()
    held = db.session.execute(
        select(RegionAgent.level, RegionAgent.region_code).where(RegionAgent.status == "active")
    ).all()
    assert sorted(held) == [("city", SHENZHEN), ("district", NANSHAN), ("province", GUANGDONG)]
    order = pay(order_to(make, NANSHAN, price_fen=10000))
    assert sorted(dividends(order.id).values()) == [100, 200, 300]


def test_a_city_that_is_its_own_district_has_an_agent_at_each_level(app_ctx, make):
    """东莞 441900 has no districts: its code is both the city and the district. Region
    protection is per (level, code), so a city agent and a district agent can both hold it,
    and both earn on an order shipped there; a second agent at the same level cannot."""
    rates(city=200, district=300)
    city = assigned(make, "city", "441900", "东莞市代")
    district = assigned(make, "district", "441900", "东莞区代")
    with pytest.raises(svc.AgentError) as err:
        svc.apply_for_region(make.user().id, "district", "441900")
    assert err.value.code == "region_taken"
    db.session.rollback()
    order = pay(order_to(make, "441900", price_fen=10_000))
    assert dividends(order.id) == {city.distributor_id: 200, district.distributor_id: 300}
