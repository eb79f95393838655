"""The paid-order pipeline over a batch: following N paid orders up in one call
(``follow_up_orders``) leaves exactly what following them up one order at a time leaves
(ledger rows, team totals, grades and their history, joins, task and invite rewards,
outbox rows), in a shop that uses every rule at once; and the batch costs fewer
statements.

Both runs start from the same committed shop: each runs in one transaction that is rolled
back after its snapshot (the pipeline only flushes; the jobs commit), so the second run
sees the state the first saw.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text

from app.cloud.merchants import create_merchant, place_merchant_order
from app.cloud.models import MerchantLevel, RegionAgent
from app.cloud.pricing import get_cloud_settings
from app.core.time import utcnow
from app.distribution.binding import bind
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.distribution.models import CommissionRule, Grade
from app.earnings.on_paid import follow_up_orders
from app.extensions import db
from app.incentives.models import IncentiveSettings, Task
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from app.orders.refunds import request_refund
from app.orders.services import ItemRequest, mark_paid, place_order
from app.payments.refunds import complete_refund
from app.wechat.notify import save_setting
from tests.support.pay import address_for

pytestmark = pytest.mark.postgresql  # the paid-order pipeline's SQL

# What a follow-up writes or changes; ids and timestamps left out (they differ by run).
TABLES = (
    "ledger_entries",
    "distributor_team_totals",
    "distributors",
    "distributor_paths",
    "grade_changes",
    "order_attributions",
    "bindings",
    "outbound_messages",
)
DISTRIBUTOR_COLUMNS = {"distributor_id", "parent_id", "ancestor_id", "descendant_id"}


def _shop(make) -> list[int]:
    """A shop with every rule on (committed); the paid orders, in id order, not followed up."""
    now = utcnow()
    settings = get_distribution_settings()
    settings.levels = 3
    settings.level1_bp, settings.level2_bp, settings.level3_bp = 1000, 500, 200
    settings.self_purchase = True
    settings.join_mode = "threshold"
    settings.join_threshold_fen = 30_000
    silver = Grade(name="银牌", rank=1, level1_bp=1200, level2_bp=600, level3_bp=300)
    gold = Grade(
        name="金牌",
        rank=2,
        level1_bp=1500,
        level2_bp=800,
        level3_bp=400,
        upgrade_team_sales_fen=60_000,  # reached in the middle of the batch
    )
    mentor = Grade(
        name="导师", rank=3, level1_bp=1800, level2_bp=900, level3_bp=500, upgrade_direct_count=2
    )
    db.session.add_all([silver, gold, mentor])
    cloud = get_cloud_settings()
    cloud.agents_enabled = True
    cloud.precedence = "price_difference"
    for level, name, discount in ((1, "总代", 4000), (2, "省代", 3000), (3, "市代", 2000)):
        db.session.add(MerchantLevel(level=level, name=name, discount_bp=discount))
    incentives = db.session.get(IncentiveSettings, 1) or IncentiveSettings(id=1)
    incentives.invite_reward_enabled = True
    incentives.invite_reward_fen = 500
    db.session.add(incentives)
    window = {"starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=30)}
    db.session.add_all(
        [
            Task(
                name="冲刺", target_kind="sales_fen", target_value=50_000, reward_fen=8800, **window
            ),
            Task(
                name="成交 3 单",
                target_kind="paid_orders",
                target_value=3,
                reward_fen=5000,
                **window,
            ),
            # Reached mid-batch by a join under a seller (its progress moves in the batch).
            Task(
                name="邀请 1 人",
                target_kind="new_distributors",
                target_value=1,
                reward_fen=1200,
                **window,
            ),
        ]
    )
    db.session.flush()
    # Only 金牌 may take part: reached before an upgrade in the batch makes anyone eligible.
    db.session.add(
        Task(
            name="金牌专享",
            target_kind="paid_orders",
            target_value=1,
            reward_fen=3300,
            grade_ids=[gold.id],
            **window,
        )
    )
    save_setting("commission_earned", "TPL_commission_earned", True)
    save_setting("grade_upgraded", "TPL_grade_upgraded", True)
    save_setting("member_bound", "TPL_member_bound", True)
    dress = make.product(title="连衣裙", price_fen=19900, stock=1000)
    tee = make.product(title="T恤", price_fen=9900, stock=1000)
    socks = make.product(title="袜子", price_fen=2900, stock=1000)
    db.session.add_all(
        [  # a fixed amount per unit on the dress's SKU, a percentage on the socks
            CommissionRule(
                product_id=dress.id,
                sku_id=dress.skus[0].id,
                mode="fixed",
                level1=2000,
                level2=1000,
                level3=500,
            ),
            CommissionRule(product_id=socks.id, mode="percent", level1=1500, level2=700, level3=0),
        ]
    )
    root = create_distributor(make.user(nickname="总部").id, None)
    root.grade_id = silver.id
    middles = [create_distributor(make.user(nickname="中层").id, root) for _ in range(2)]
    sellers = [create_distributor(make.user(nickname="店员").id, m) for m in middles]
    for holder, (level, code, name) in zip(
        [root, *middles],
        (
            ("province", "440000", "广东省"),
            ("city", "440300", "深圳市"),
            ("district", "440305", "南山区"),
        ),
        strict=True,
    ):
        db.session.add(
            RegionAgent(
                user_id=holder.user_id,
                distributor_id=holder.id,
                level=level,
                region_code=code,
                region_name=name,
                status="active",
                approved_at=now,
            )
        )
    top = create_merchant(make.user(nickname="总代").id, 1, None, "staff:1")
    mid = create_merchant(make.user(nickname="省代").id, 2, top.id, "staff:1")
    low = create_merchant(make.user(nickname="市代").id, 3, mid.id, "staff:1")
    # An invitee: a new distributor under a seller whose first purchase is in the batch.
    invitee = create_distributor(make.user(nickname="新人").id, sellers[0])
    db.session.commit()

    def paid(user, items) -> int:
        order = place_order(user.id, items, address_for(user).id)
        db.session.commit()
        mark_paid(order, transaction_id=f"PB{order.id:08d}", amount_fen=order.total_fen)
        db.session.commit()
        return order.id

    orders = []
    customers = []
    for n, seller in enumerate(sellers * 2):
        customer = make.user(nickname=f"顾客{n}")
        bind(customer.id, seller, "link")
        db.session.commit()
        customers.append(customer)
        items = [ItemRequest(dress.skus[0].id, n % 2 + 1), ItemRequest(socks.skus[0].id, 2)]
        orders.append(paid(customer, items))
    # Buyers over the join threshold: they join under their seller (direct counts rise).
    for customer in customers[:3]:
        orders.append(paid(customer, [ItemRequest(dress.skus[0].id, 2)]))
    # A refund completed before the follow-up: its earnings are reversed at once.
    refunded = db.session.get(Order, paid(customers[1], [ItemRequest(tee.skus[0].id, 3)]))
    row = request_refund(refunded, refunded.lines[0], 2, "不想要了", f"user:{refunded.user_id}")
    db.session.commit()
    complete_refund(row, f"RF{row.id}", row.amount_fen, {})
    db.session.commit()
    orders.append(refunded.id)
    # A self-purchase by a seller, the invitee's first purchase.
    orders.append(paid(sellers[1].user, [ItemRequest(tee.skus[0].id, 2)]))
    orders.append(paid(invitee.user, [ItemRequest(socks.skus[0].id, 1)]))
    # A customer of the ordering merchant (retail), and the merchant's own order (级差).
    merchant_customer = make.user(nickname="商户顾客")
    bind(merchant_customer.id, low.distributor, "link")
    db.session.commit()
    orders.append(paid(merchant_customer, [ItemRequest(tee.skus[0].id, 2)]))
    # A second retail order through the same merchant and SKU: the batch reads the
    # merchant chain's steps once for both (``price_difference.chain_steps``).
    second_customer = make.user(nickname="商户顾客二")
    bind(second_customer.id, low.distributor, "link")
    db.session.commit()
    orders.append(paid(second_customer, [ItemRequest(tee.skus[0].id, 1)]))
    own = place_merchant_order(
        low,
        [ItemRequest(dress.skus[0].id, 3)],
        name="李四",
        phone="13900000000",
        district_code="440305",
        detail="南山大道1号",
    )
    db.session.commit()
    mark_paid(own, transaction_id=f"PB{own.id:08d}", amount_fen=own.total_fen)
    db.session.commit()
    orders.append(own.id)
    return sorted(orders)


def _snapshot() -> dict[str, list[tuple]]:
    """Every row of ``TABLES`` without ids or timestamps, distributors named by their user
    and a reversal by the (line, beneficiary, kind) of what it reverses; sorted."""
    db.session.flush()
    users = dict(db.session.execute(text("SELECT id, user_id FROM distributors")).all())
    entries = {
        row.id: (row.order_line_id, users[row.distributor_id], row.kind, row.reward_key)
        for row in db.session.scalars(select(LedgerEntry))
    }
    found: dict[str, list[tuple]] = {}
    for table in TABLES:
        result = db.session.execute(text(f"SELECT * FROM {table}"))
        columns = list(result.keys())
        rows = []
        for values in result.all():
            row = []
            for column, value in zip(columns, values, strict=True):
                if column in ("id", "code") or column.endswith("_at"):  # code: a random invite code
                    continue
                if column in DISTRIBUTOR_COLUMNS and value is not None:
                    value = users[value]
                elif column == "reverses_id" and value is not None:
                    value = entries[value]
                elif column in ("rule_source", "reward_key") and value:
                    # invite:<invitee>: an invitee who joined in the run has a new id
                    value = re.sub(r"invite:(\d+)", lambda m: f"invite:u{users[int(m[1])]}", value)
                elif column == "payload":
                    payload = json.loads(value)
                    for key in [k for k in payload["data"] if k.startswith("time")]:
                        del payload["data"][key]  # the minute it was queued
                    value = json.dumps(payload, ensure_ascii=False, sort_keys=True)
                row.append((column, value))
            rows.append(tuple(row))
        found[table] = sorted(rows, key=repr)
    return found


class _Statements:
    """Counts the SQL statements sent while it is open."""

    def __enter__(self):
        self.count = 0
        event.listen(db.engine, "before_cursor_execute", self._seen)
        return self

    def _seen(self, *args):
        self.count += 1

    def __exit__(self, *exc):
        event.remove(db.engine, "before_cursor_execute", self._seen)


@pytest.mark.parametrize("bind_mode", ["first_visit", "first_payment"])
def test_a_batch_leaves_exactly_what_one_order_at_a_time_leaves(app, make, bind_mode):
    """With binding on first payment, step 1 writes bindings and attributions order by
    order: the batch then takes none of the shortcuts that depend on them."""
    order_ids = _shop(make)
    get_distribution_settings().bind_mode = bind_mode
    db.session.commit()
    assert len(order_ids) == 13

    with _Statements() as singles:
        for order_id in order_ids:
            follow_up_orders([order_id])
    one_by_one = _snapshot()
    db.session.rollback()

    with _Statements() as batch:
        done = follow_up_orders(order_ids)
    batched = _snapshot()
    db.session.rollback()

    assert [d.order_id for d in done] == order_ids and not any(d.skipped for d in done)
    # The scenario reaches what it is meant to: every kind of row is there.
    kinds = {dict(row)["kind"] for row in one_by_one["ledger_entries"]}
    assert {"level_1", "level_2", "level_3", "region_dividend"} <= kinds
    assert {"price_difference", "reversal", "task_reward", "invite_reward"} <= kinds
    assert one_by_one["grade_changes"] and one_by_one["distributor_team_totals"]
    outbox_kinds = {dict(row)["kind"] for row in one_by_one["outbound_messages"]}
    assert {"commission_earned", "grade_upgraded"} <= outbox_kinds
    # Tasks whose progress or eligibility moves inside the batch are reached in it.
    notes = {dict(row)["note"] for row in one_by_one["ledger_entries"]}
    assert any(n and n.startswith("任务「邀请 1 人」达成") for n in notes), notes
    assert any(n and n.startswith("任务「金牌专享」达成") for n in notes), notes
    joined = db.session.scalar(select(func.count()).select_from(text("distributors")))
    assert len(one_by_one["distributors"]) > joined  # buyers joined by threshold

    for table in TABLES:
        assert batched[table] == one_by_one[table], table
    # And the batch is cheaper: statements shared by the orders run once.
    assert batch.count < 0.8 * singles.count, (batch.count, singles.count)


def test_a_batch_over_orders_partly_followed_up_already(app, make):
    """Half the orders were followed up before (a batch that committed, then a repeat):
    the batch writes nothing twice, and the payout cap of the repeat's region dividends
    counts the commissions already in the ledger, exactly as order by order."""
    order_ids = _shop(make)
    earlier = order_ids[::2]

    for order_id in earlier + order_ids:
        follow_up_orders([order_id])
    one_by_one = _snapshot()
    db.session.rollback()

    follow_up_orders(earlier)
    done = follow_up_orders(order_ids)
    batched = _snapshot()
    db.session.rollback()

    for table in TABLES:
        assert batched[table] == one_by_one[table], table
    again = {d.order_id: (d.entries, d.dividends) for d in done}
    assert all(again[o] == (0, 0) for o in earlier)  # nothing written twice
    assert any(again[o] != (0, 0) for o in order_ids if o not in earlier)
