"""Every admin URL refuses anonymous visitors, customers and (where owner-only) plain staff."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.accounts.models import ApiToken
from app.admin.decorators import ROLE_ATTR
from app.catalog.models import ProductImage
from app.cloud.agents import apply_for_region
from app.cloud.merchants import create_merchant
from app.cloud.pricing import save_levels
from app.core.time import utcnow
from app.distribution.admin_services import save_grade
from app.distribution.distributors import create_distributor
from app.distribution.withdrawals import request_withdrawal
from app.extensions import db
from app.incentives.models import Task
from app.ledger.models import LedgerEntry
from app.orders.refunds import request_refund
from app.orders.services import mark_paid
from app.posters.models import PosterTemplate
from tests.pay_support import new_order
from tests.test_admin_support import csrf_token, fresh_client, text


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
    db.session.add(
        LedgerEntry(
            distributor_id=distributor.id, kind="task_reward", amount_fen=5000, state="settled"
        )
    )
    db.session.flush()
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
            "refund_id": refund.id,
            "grade_id": grade.id,
            "distributor_id": distributor.id,
            "withdrawal_id": withdrawal.id,
            "poster_template_id": poster_template.id,
            "merchant_id": merchant.id,
            "agent_id": agent.id,
            "token_id": api_token.id,
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


def owner_only(app, rule) -> bool:
    return getattr(app.view_functions[rule.endpoint], ROLE_ATTR, None) == "owner"


def test_there_are_admin_urls_to_check(app):
    endpoints = {rule.endpoint for rule, _ in admin_rules(app)}
    assert {
        "admin.dashboard",
        "admin.products",
        "admin.product_edit",
        "admin.staff_list",
    } <= endpoints


def test_every_admin_view_declares_who_may_use_it(app):
    for rule, _ in admin_rules(app):
        role = getattr(app.view_functions[rule.endpoint], ROLE_ATTR, None)
        assert role in ("staff", "owner"), f"{rule.endpoint} has no staff_required/owner_required"


def test_anonymous_is_sent_to_login_everywhere(app, client, world):
    token = csrf_token(client, "/admin/login")
    for rule, method in admin_rules(app):
        url = url_for_rule(app, rule, world["args"])
        if method == "GET":
            response = client.get(url)
        else:
            response = client.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 302, (method, url, response.status_code)
        location = response.headers["Location"]
        assert location.startswith("/admin/login?next="), (method, url, location)


def test_anonymous_login_redirect_keeps_the_page(client, world):
    response = client.get("/admin/products?q=abc")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?next=/admin/products?q%3Dabc"


def test_customer_gets_a_chinese_403_everywhere(app, client, login_as, world):
    login_as(client, world["customer"])
    token = csrf_token(client, "/admin/login")  # the login page is open to everyone
    for rule, method in admin_rules(app):
        url = url_for_rule(app, rule, world["args"])
        data = {"csrf_token": token} if method != "GET" else None
        response = client.open(url, method=method, data=data)
        assert response.status_code == 403, (method, url, response.status_code)
        assert "仅限商家员工" in text(response)


def test_staff_can_open_every_admin_page(app, client, login_as, world):
    login_as(client, world["staff"])
    checked = 0
    for rule, method in admin_rules(app):
        if method != "GET":
            continue
        url = url_for_rule(app, rule, world["args"])
        response = client.get(url)
        expected = 403 if owner_only(app, rule) else 200
        assert response.status_code == expected, (url, response.status_code)
        checked += 1
    assert checked >= 5


def test_owner_can_open_every_admin_page(app, client, login_as, world):
    login_as(client, world["owner"])
    for rule, method in admin_rules(app):
        if method == "GET":
            url = url_for_rule(app, rule, world["args"])
            assert client.get(url).status_code == 200, url


def test_plain_staff_is_refused_owner_only_posts(app, client, login_as, world):
    login_as(client, world["staff"])
    token = csrf_token(client, "/admin/")
    owner_posts = [(r, m) for r, m in admin_rules(app) if m == "POST" and owner_only(app, r)]
    assert owner_posts, "staff management should be owner-only"
    for rule, _method in owner_posts:
        url = url_for_rule(app, rule, world["args"])
        response = client.post(
            url,
            data={
                "csrf_token": token,
                "username": "sneaky",
                "password": "password123",
                "role": "owner",
            },
        )
        assert response.status_code == 403, url
        assert "只有店主" in text(response)


def test_deactivated_staff_is_refused_and_signed_out(app, client, login_as, world):
    staff = world["staff"]
    login_as(client, staff)
    assert client.get("/admin/").status_code == 200
    staff.active = False
    db.session.commit()
    response = client.get("/admin/")
    assert response.status_code == 403
    assert "已停用" in text(response)
    # Signed out: the next visit is treated as anonymous.
    assert client.get("/admin/").status_code == 302


def test_unknown_admin_url_is_404_not_500(client, login_as, world):
    login_as(client, world["staff"])
    assert client.get("/admin/products/999999/edit").status_code == 404
    assert client.get("/admin/no-such-page").status_code == 404
