"""A running demo task and paid demo sales for ``seed-demo``, so the leaderboards and the
task show progress in ``make dev`` (idempotent: found by the task's name, the orders' remark).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.catalog.models import Product, Sku
from app.core.time import utcnow
from app.distribution.binding import bind
from app.distribution.distributors import create_distributor
from app.distribution.models import Distributor
from app.extensions import db
from app.incentives import leaderboards
from app.incentives.models import Task
from app.incentives.tasks import TaskInput, save_task
from app.orders.models import Address, Order
from app.orders.services import ItemRequest, mark_paid, place_order
from demo.fans import demo_user
from jobs.commissions import compute_order_commissions

DEMO_TASK_NAME = "冲刺任务：30 天推广销售满 ¥500"


def seed_demo_task() -> str:
    """Add a 30-day sales task (¥500 target, ¥20 reward) unless it is already there."""
    if db.session.scalar(select(Task.id).where(Task.name == DEMO_TASK_NAME)) is not None:
        return "demo task already there"
    now = utcnow()
    save_task(
        TaskInput(
            name=DEMO_TASK_NAME,
            target_kind="sales_fen",
            target_value=50_000,
            reward_fen=2_000,
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=29),
            grade_ids=[],
        )
    )
    return "demo task added"


# Demo distributors (top first; the others were invited by her) and their customers'
# purchases: (customer nickname, distributor nickname or None for a self-purchase,
# product index in the demo catalogue, quantity).
DEMO_SELLERS = ("演示·小美", "演示·阿强", "演示·丽丽")
DEMO_PURCHASES = (
    ("演示顾客·王先生", "演示·小美", 0, 2),
    ("演示顾客·李女士", "演示·小美", 1, 1),
    ("演示顾客·赵同学", "演示·阿强", 2, 1),
    ("演示顾客·陈阿姨", "演示·丽丽", 3, 1),
    (None, "演示·阿强", 4, 1),  # 阿强 buys himself: his first purchase (小美's invite)
    (None, "演示·丽丽", 5, 1),
)
DEMO_REMARK = "演示订单（seed-demo）"


def seed_demo_sales() -> str:
    """Paid demo orders through demo distributors, so the leaderboards and the running
    task show progress in ``make dev`` (idempotent: found by the orders' remark).

    Everything goes through the real services: distributors join under their inviter,
    customers are bound by link, orders are placed (stock taken), marked paid by
    ``mark_paid`` (what the payment notice calls), then the follow-up job function
    ``compute_order_commissions`` runs synchronously (commissions, region dividends, task
    progress, invite rewards, leaderboards). That job commits at its own edge, so this
    step commits too; the caller's final commit is then a no-op for it.
    """
    if db.session.scalar(select(Order.id).where(Order.remark == DEMO_REMARK).limit(1)):
        return "demo sales already there"
    sellers: dict[str, Distributor] = {}
    top = None
    for nickname in DEMO_SELLERS:
        user = demo_user(f"demo-seller-{len(sellers) + 1}", nickname)
        db.session.flush()
        found = db.session.scalar(select(Distributor).where(Distributor.user_id == user.id))
        sellers[nickname] = found or create_distributor(user.id, top)
        top = top or sellers[nickname]
    skus = db.session.scalars(
        select(Sku)
        .join(Product, Product.id == Sku.product_id)
        .where(Product.on_shelf.is_(True), Sku.stock >= 10)
        .order_by(Product.id, Sku.id)
    ).all()
    picks, seen = [], set()
    for sku in skus:  # the first SKU in stock of each product on the shelf
        if sku.product_id not in seen:
            picks.append(sku)
            seen.add(sku.product_id)
    if not picks:
        return "demo sales skipped: no product in stock"
    paid = 0
    for n, (customer, seller_name, index, quantity) in enumerate(DEMO_PURCHASES, 1):
        seller = sellers[seller_name]
        if customer is None:
            user_id = seller.user_id
        else:
            user_id = demo_user(f"demo-customer-{n}", customer).id
            db.session.flush()
            bind(user_id, seller, "link")
        # Each buyer their own receiver (phone and street): buyers of one distributor
        # sharing a receiver is what the risk checks look for (app/risk/signals.py).
        address = Address(
            user_id=user_id,
            name="演示收货人",
            phone=f"139{user_id:08d}",
            province="广东省",
            city="深圳市",
            district="南山区",
            district_code="440305",
            detail=f"科技园科苑路 {user_id} 号",
        )
        db.session.add(address)
        db.session.flush()
        sku = picks[index % len(picks)]
        order = place_order(
            user_id, [ItemRequest(sku.id, quantity)], address.id, DEMO_REMARK, actor="system"
        )
        mark_paid(order, transaction_id=f"DEMO{order.number}", amount_fen=order.total_fen)
        order_id = order.id
        db.session.commit()
        compute_order_commissions(order_id)  # the paid order's follow-up job, run here
        paid += 1
    leaderboards.rebuild_all()
    return f"demo sales: {paid} paid orders through {len(sellers)} demo distributors"
