"""Helpers for walking every admin URL as different principals (the access sweeps)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.accounts.models import ApiToken
from app.catalog.models import ProductImage
from app.cloud.agents import apply_for_region
from app.cloud.merchants import create_merchant
from app.cloud.pricing import save_levels
from app.core.time import utcnow
from app.coupons.services import TemplateInput, create_template
from app.discounts.models import TimedDiscount
from app.distribution.admin_settings import save_grade
from app.distribution.distributors import create_distributor
from app.distribution.withdrawals import request_withdrawal
from app.extensions import db
from app.incentives.models import Task
from app.ledger.holds import hold
from app.ledger.models import LedgerHold
from app.orders.refunds import request_refund
from app.orders.services import mark_paid
from app.posters.models import PosterTemplate
from tests.support.admin import fresh_client
from tests.support.pay import new_order


@pytest.fixture
def client(app):
    """Overrides conftest's client: a fresh ``g`` per request (see FreshClient)."""
    return fresh_client(app)


def admin_rules(app):
    """(rule, method) for every admin URL except the login page."""
    pairs = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin.") or rule.endpoint == "admin.login":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            pairs.append((rule, method))
    return pairs


@pytest.fixture
def world(app, make):
    """Real rows for every URL argument, and the people who knock."""
    category = make.category("测试分类")
    product = make.product("测试商品", category=category, specs={"颜色": ["红", "蓝"]})
    image = ProductImage(product_id=product.id, filename="none.png", width=100, height=100)
    db.session.add(image)
    db.session.commit()
    staff = make.staff("clerk", role="staff")
    owner = make.staff("boss", role="owner")
    # A paid order with a refund request, for the order and refund URLs.
    order, _sku_id = new_order(make)
    mark_paid(order, transaction_id="4200000000000000000001", amount_fen=order.total_fen)
    refund = request_refund(order, order.lines[0], 1, "不想要了", f"user:{order.user_id}")
    db.session.commit()
    # Distribution: a grade, a distributor with money and a withdrawal request.
    grade = save_grade({"name": "金牌"})
    distributor = create_distributor(make.user().id, None)
    make.ledger_entry(distributor.id, 5000)
    withdrawal = request_withdrawal(distributor, 1000)
    poster_template = PosterTemplate(kind="shop", name="测试模板", layout="classic")
    db.session.add(poster_template)
    db.session.commit()
    agent = apply_for_region(make.user().id, "district", "440305")
    db.session.commit()
    # Cloud: an ordering merchant (levels first).
    save_levels([{"level": 1, "name": "总代", "discount_bp": 4000}])
    merchant = create_merchant(make.user().id, 1, None, "staff:1")
    db.session.commit()
    task = Task(
        name="测试任务",
        target_kind="paid_orders",
        target_value=3,
        reward_fen=100,
        starts_at=utcnow(),
        ends_at=utcnow() + timedelta(days=1),
    )
    db.session.add(task)
    api_token, _secret = ApiToken.issue("world")
    hold(order.id, distributor.id, "风控测试")  # a risk hold, for the review URLs
    discount = TimedDiscount(
        product_id=product.id,
        mode="percent",
        percent_off_bp=1000,
        starts_at=utcnow(),
        ends_at=utcnow() + timedelta(days=1),
    )
    db.session.add(discount)
    coupon = create_template(
        TemplateInput(name="测试券", kind="no_threshold", stock=10, off_fen=100)
    )
    db.session.commit()
    return {
        "args": {
            "task_id": task.id,
            "category_id": category.id,
            "product_id": product.id,
            "image_id": image.id,
            "sku_id": product.skus[0].id,
            "staff_id": staff.id,
            "order_id": order.id,
            "customer_id": order.user_id,
            "refund_id": refund.id,
            "grade_id": grade.id,
            "distributor_id": distributor.id,
            "withdrawal_id": withdrawal.id,
            "poster_template_id": poster_template.id,
            "merchant_id": merchant.id,
            "agent_id": agent.id,
            "token_id": api_token.id,
            "hold_id": db.session.scalar(select(LedgerHold.id)),
            "user_id": order.user_id,
            "discount_id": discount.id,
            "coupon_id": coupon.id,
        },
        "customer": make.user(),
        "staff": staff,
        "owner": owner,
    }


def url_for_rule(app, rule, args) -> str:
    missing = set(rule.arguments) - set(args)
    assert not missing, f"test does not know how to fill {missing} for {rule.rule}"
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **{k: args[k] for k in rule.arguments})
