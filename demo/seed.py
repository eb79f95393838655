"""``seed_demo``: the whole demo shop, each part in the order the next one needs.

Catalogue and owner first; then the regional agents and the ordering-merchant chain, and
the cloud purchase both earn on; notification templates; the running task, then the demo
sales that count towards it. Every part is idempotent, so the whole is too.
"""

from __future__ import annotations

from demo.agents import DEMO_AGENTS, seed_demo_agents
from demo.catalog import CATEGORIES, PRODUCTS, seed_demo_catalog
from demo.incentives import seed_demo_sales, seed_demo_task
from demo.merchants import DEMO_MERCHANTS, seed_demo_merchants
from demo.owner import seed_demo_owner
from demo.purchase import DEMO_CUSTOMER, seed_demo_purchase
from demo.wechat import seed_demo_notifications


def seed_demo() -> str:
    """Load the demo shop (catalogue, owner, agents, merchants, a cloud purchase,
    notifications, a task and sales) where missing; a one-line summary of what was added.

    Flushes only; the caller commits (except the demo sales, which run the real payment
    follow-up job, and that job commits).
    """
    added_categories, added_products = seed_demo_catalog()
    added_owner = seed_demo_owner()
    agents_summary = seed_demo_agents()
    merchants_summary = seed_demo_merchants()
    purchase_summary = seed_demo_purchase()  # after the agents and the chain: both earn on it
    notifications_summary = seed_demo_notifications()
    task_summary = seed_demo_task()
    sales_summary = seed_demo_sales()  # after the task: the sales count towards it
    return (
        f"demo shop: {added_categories} categories and {added_products} products added "
        f"({len(CATEGORIES)} categories, {len(PRODUCTS)} products in the demo); "
        f"owner account {'created' if added_owner else 'already there'}; {agents_summary}; "
        f"{merchants_summary}; {purchase_summary}; {notifications_summary}; {task_summary}; "
        f"{sales_summary}"
    )


def demo_fan_nicknames() -> tuple[str, ...]:
    """Nicknames of every demo user one can sign in as through the stand-in."""
    return (
        *(row[1] for row in DEMO_AGENTS),
        *(row[1] for row in DEMO_MERCHANTS),
        DEMO_CUSTOMER[1],
    )
