"""Demo agents and ordering merchants a person can act as in ``make dev``.

With the WeChat stand-in (development), the demo users get the openid the stand-in gives
the fan of the same nickname (``fan_openid``), and ``flask wechat-sandbox`` lists those
fans on its sign-in and ``/sandbox/fans`` pages: choosing "南山区代理" signs in as the
demo agent. Rows seeded earlier under the old placeholder openids (``o_demo_...``) are
moved to the fan's openid. Against the real WeChat the placeholders are kept.

``seed_demo_purchase`` adds one paid order of a demo customer (a fan too) bound to the
demo 市代 and shipped to 南山区, through the same order, payment and distribution
services as a real payment, so the agent and merchant centres show dividends and 级差.
Everything is idempotent and flushes only; the CLI commits.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db

# (legacy openid, nickname): a fan who buys through the demo 市代 and ships to 南山区.
DEMO_CUSTOMER = ("o_demo_cloud_customer", "云仓顾客·陈")
DEMO_ADDRESS = ("陈小姐", "13800138000", "440305", "科技园南区 1 栋 101")
DEMO_TRANSACTION = "DEMO-CLOUD-PURCHASE-1"
DEMO_TRACKING_NUMBER = "SF1400000000001"


def demo_fan_nicknames() -> tuple[str, ...]:
    """Nicknames of every demo user one can sign in as through the stand-in."""
    from app.cloud.demo_agents import DEMO_AGENTS
    from app.cloud.demo_merchants import DEMO_MERCHANTS

    return (
        *(row[1] for row in DEMO_AGENTS),
        *(row[1] for row in DEMO_MERCHANTS),
        DEMO_CUSTOMER[1],
    )


def _uses_stand_in() -> bool:
    from app.wechat.demo import REAL_WECHAT_API

    base = current_app.config.get("WECHAT_API_BASE", REAL_WECHAT_API) or REAL_WECHAT_API
    return base.rstrip("/") != REAL_WECHAT_API


def demo_user(legacy_openid: str, nickname: str) -> User:
    """The demo user called ``nickname``: the stand-in fan's openid in development (an
    older row under ``legacy_openid`` is moved to it), ``legacy_openid`` otherwise."""
    openid = legacy_openid
    if _uses_stand_in():
        from app.wechat.sandbox.state import fan_openid

        openid = fan_openid(current_app.config["WECHAT_APPID"], nickname)
    user = db.session.scalar(select(User).where(User.openid == openid))
    if user is None and openid != legacy_openid:
        user = db.session.scalar(select(User).where(User.openid == legacy_openid))
        if user is not None:
            user.openid = openid
    if user is None:
        user = User(openid=openid, nickname=nickname)
        db.session.add(user)
    db.session.flush()
    return user


def seed_demo_purchase() -> str:
    """One paid order of the demo customer through the demo 市代, shipped to 南山区, with
    its commissions, 级差 and region dividends written (once); a summary line."""
    from app import regions
    from app.catalog.models import Product, Sku
    from app.cloud.demo_merchants import DEMO_MERCHANTS
    from app.cloud.merchants import is_active, merchant_for_user
    from app.distribution.binding import bind
    from app.earnings.on_paid import follow_up_order
    from app.orders.models import Address, Order
    from app.orders.services import ItemRequest, mark_paid, place_order
    from app.orders.shipping import ship_order

    customer = demo_user(*DEMO_CUSTOMER)
    if db.session.scalar(select(Order.id).where(Order.user_id == customer.id).limit(1)):
        return "demo purchase already there"
    legacy, nickname, _level = DEMO_MERCHANTS[-1]
    seller = merchant_for_user(demo_user(legacy, nickname).id)
    sku = db.session.scalar(
        select(Sku)
        .join(Product)
        .where(Product.on_shelf.is_(True), Sku.stock > 0, Sku.code.like("DEMO-%"))
        .order_by(Sku.id)
        .limit(1)
    )
    if not is_active(seller) or sku is None:
        return "demo purchase skipped (no demo 市代 or nothing on sale)"
    bind(customer.id, seller.distributor, "link", actor="system")
    name, phone, code, detail = DEMO_ADDRESS
    where = regions.resolve(code)
    address = Address(
        user_id=customer.id,
        name=name,
        phone=phone,
        province=where.province.name,
        city=where.city.name,
        district=where.district.name,
        district_code=code,
        detail=detail,
        is_default=True,
    )
    db.session.add(address)
    db.session.flush()
    order = place_order(customer.id, [ItemRequest(sku.id, 1)], address.id, actor="system")
    mark_paid(order, transaction_id=DEMO_TRANSACTION, amount_fen=order.total_fen, source="system")
    # What the commission job does after a payment notice (jobs/commissions.py), inline:
    # the seed runs before the worker and must not depend on it.
    done = follow_up_order(order, extend_protection_once=True)
    written = done.entries + done.dividends
    # Headquarters ships it (drop shipping): the centres show the carrier and tracking.
    ship_order(order, "SF", DEMO_TRACKING_NUMBER, "system")
    return f"demo purchase {order.number}: {written} ledger entries, shipped"
