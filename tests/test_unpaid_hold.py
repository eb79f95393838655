"""Unpaid orders cannot hold all the stock (issue 14, point 3).

A cap on unpaid orders per customer, a per-product purchase limit (限购), a 15-minute pay
window and a product page that says when sold-out stock is only held by unpaid orders.
Everything goes through the real doors: the JSON API and the H5 pages with a signed-in
test client, the admin form, the Open API with a real token, and threads racing on the
real database.
"""

from __future__ import annotations

import html
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select
from sqlalchemy import text as sql

from app import create_app
from app.catalog.models import Product, Sku
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import CANCELLED, PENDING_PAYMENT, Order, Refund, ShopSettings
from app.orders.services import ItemRequest, OrderError, get_settings, mark_paid, place_order
from app.payments.refunds import approve_refund
from tests.support.admin import post, text
from tests.support.openapi import bearer_caller
from tests.support.pay import (
    address_for,
    fresh,
    prepay,
    sandbox_pay,
    sandbox_settings,
    wait_until,
)

pytestmark = pytest.mark.postgresql  # stock holds

UNPAID_URL = "/orders?status=pending_payment"


def sign_in(client, login_as, user) -> dict:
    """Sign ``client`` in as the customer ``user``; the headers a page's fetch() sends."""
    login_as(client, user)
    return {"X-CSRFToken": client.get("/cart/session").get_json()["csrf_token"]}


@pytest.fixture
def buyer(make, client, login_as):
    """(user, address id, csrf headers) of a signed-in customer."""
    user = make.user()
    address = address_for(user)
    return user, address.id, sign_in(client, login_as, user)


def place(client, headers, address_id: int, *items: tuple[int, int]):
    """``POST /api/v1/orders`` as the checkout page's script sends it."""
    body = {
        "items": [{"sku_id": sku_id, "quantity": n} for sku_id, n in items],
        "address_id": address_id,
    }
    return client.post("/api/v1/orders", json=body, headers=headers)


def limited(make, limit: int, stock: int = 10, **fields) -> Product:
    product = make.product(stock=stock, **fields)
    product.purchase_limit = limit
    db.session.commit()
    return product


def stock_of(sku_id: int) -> int:
    return fresh(Sku, sku_id).stock


def page(client, path: str) -> str:
    return html.unescape(client.get(path).get_data(as_text=True))


# --- at most N unpaid orders per customer -----------------------------------------------------


def test_fourth_unpaid_order_is_refused_with_a_link_to_the_unpaid_ones(make, client, buyer):
    _user, address_id, headers = buyer
    sku_id = make.product(stock=10).skus[0].id
    first = [place(client, headers, address_id, (sku_id, 1)) for _ in range(3)]
    assert [r.status_code for r in first] == [201, 201, 201]

    fourth = place(client, headers, address_id, (sku_id, 2))
    assert fourth.status_code == 409
    error = fourth.get_json()["error"]
    assert error["code"] == "too_many_unpaid_orders"
    assert error["message"] == "您已有 3 笔待付款订单，请先完成付款或取消后再下单"
    assert error["link"] == UNPAID_URL
    assert stock_of(sku_id) == 7  # the refused order took nothing
    assert db.session.scalar(select(func.count(Order.id))) == 3
    # The link is the 待付款 tab, and it lists the three.
    listing = page(client, UNPAID_URL)
    assert listing.count('href="/orders/') >= 3

    # The checkout page says it before the customer taps, with the link, and the button
    # is off.
    checkout = page(client, f"/checkout?sku_id={sku_id}&quantity=1")
    assert "您已有 3 笔待付款订单" in checkout
    assert f'href="{UNPAID_URL}"' in checkout.replace("&amp;", "&")
    assert re.search(r"<button[^>]*data-place[^>]* disabled", checkout)

    # Paying one frees a place.
    order = db.session.get(Order, first[0].get_json()["id"])
    mark_paid(order, transaction_id="tx-unpaid-cap-1", amount_fen=order.total_fen)
    db.session.commit()
    assert "待付款订单" not in page(client, f"/checkout?sku_id={sku_id}&quantity=1")
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 201
    # Cancelling one frees a place too.
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 409
    cancel = client.post(f"/api/v1/orders/{first[1].get_json()['id']}/cancel", headers=headers)
    assert cancel.status_code == 200
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 201


def test_the_cap_is_per_customer_and_past_due_orders_do_not_count(make, client, buyer):
    user, address_id, headers = buyer
    sku_id = make.product(stock=20).skus[0].id
    for _ in range(3):
        assert place(client, headers, address_id, (sku_id, 1)).status_code == 201
    # Another customer is not held back by this one.
    other = make.user()
    place_order(other.id, [ItemRequest(sku_id, 1)], address_for(other).id)
    db.session.commit()
    # One whose pay window has passed awaits the order timer and no longer counts.
    order = db.session.scalar(select(Order).where(Order.user_id == user.id).limit(1))
    order.pay_deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 201
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 409


def test_owner_sets_the_cap_on_the_order_settings_page(make, client, login_as, app_ctx):
    owner = make.staff("boss", role="owner")
    login_as(client, owner)
    form = text(client.get("/admin/settings/orders"))
    assert "每人未付款订单上限" in form and 'name="max_unpaid_orders"' in form
    assert re.search(r'name="max_unpaid_orders"[^>]*value="3"', form)
    assert re.search(r'name="pay_timeout_minutes"[^>]*value="15"', form)
    data = {
        "shipping_fee": "10",
        "free_shipping_over": "99",
        "pay_timeout_minutes": "15",
        "auto_complete_days": "10",
    }
    refused = post(
        client,
        "/admin/settings/orders",
        {**data, "max_unpaid_orders": "0"},
        token_from="/admin/settings/orders",
    )
    assert refused.status_code == 422 and "需为 1-20 笔" in text(refused)
    saved = post(
        client,
        "/admin/settings/orders",
        {**data, "max_unpaid_orders": "1"},
        token_from="/admin/settings/orders",
    )
    assert saved.status_code == 302
    assert fresh(ShopSettings, 1).max_unpaid_orders == 1

    customer = make.user()
    address_id = address_for(customer).id
    headers = sign_in(client, login_as, customer)
    sku_id = make.product().skus[0].id
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 201
    second = place(client, headers, address_id, (sku_id, 1))
    assert second.status_code == 409
    assert second.get_json()["error"]["message"].startswith("您已有 1 笔待付款订单")


# --- the pay window ---------------------------------------------------------------------------


def test_pay_window_defaults_to_15_minutes(make, client, buyer):
    _user, address_id, headers = buyer
    assert get_settings().pay_timeout_minutes == 15
    sku_id = make.product().skus[0].id
    before = utcnow()
    created = place(client, headers, address_id, (sku_id, 1)).get_json()
    order = db.session.get(Order, created["id"])
    deadline = order.pay_deadline.replace(tzinfo=before.tzinfo)
    assert timedelta(minutes=15) <= deadline - before < timedelta(minutes=15, seconds=30)
    assert "15 分钟内完成支付" in page(client, f"/checkout?sku_id={sku_id}&quantity=1")


# --- 限购 N per customer ------------------------------------------------------------------------


def test_purchase_limit_counts_across_orders(make, client, buyer):
    user, address_id, headers = buyer
    product = limited(make, 2, title="限量茶饼")
    sku_id = product.skus[0].id
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 201

    over = place(client, headers, address_id, (sku_id, 2))
    assert over.status_code == 409
    error = over.get_json()["error"]
    assert error["code"] == "purchase_limit_exceeded"
    assert error["message"] == "“限量茶饼”每人限购 2 件，您已购买 1 件，最多还能买 1 件"
    assert stock_of(sku_id) == 9

    # Paid orders count as well as unpaid ones.
    first = db.session.scalar(select(Order).where(Order.user_id == user.id))
    mark_paid(first, transaction_id="tx-limit-1", amount_fen=first.total_fen)
    db.session.commit()
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 201
    reached = place(client, headers, address_id, (sku_id, 1))
    assert reached.status_code == 409
    assert "已达限购" in reached.get_json()["error"]["message"]

    # A cancelled order gives its units back to the limit.
    unpaid = db.session.scalar(
        select(Order).where(Order.user_id == user.id, Order.status == PENDING_PAYMENT)
    )
    assert client.post(f"/api/v1/orders/{unpaid.id}/cancel", headers=headers).status_code == 200
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 201

    # Someone else has their own limit; a product without a limit has none.
    other = make.user()
    place_order(other.id, [ItemRequest(sku_id, 2)], address_for(other).id)
    free_sku = make.product(stock=50).skus[0].id
    place_order(other.id, [ItemRequest(free_sku, 40)], address_for(other).id)
    db.session.commit()


@pytest.fixture
def stand_in(sandbox):
    """The WeChat Pay stand-in, its settings restored afterwards."""
    saved = sandbox_settings(sandbox)
    yield sandbox
    sandbox_settings(sandbox, **saved)


def test_a_refunded_unit_frees_the_limit(make, client, buyer, live_server, stand_in):
    """Refunded units went back to the shop, so they no longer count (as Youzan does); a
    refund still under review counts until the money has gone back."""
    _user, address_id, headers = buyer
    sku_id = limited(make, 2).skus[0].id
    created = place(client, headers, address_id, (sku_id, 2)).get_json()
    order = db.session.get(Order, created["id"])
    prepay(order)
    sandbox_pay(stand_in, order.number)
    wait_until(lambda: fresh(Order, order.id).status == "paid")
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 409

    line_id = created["lines"][0]["id"]
    asked = client.post(
        f"/api/v1/orders/{order.id}/lines/{line_id}/refund",
        json={"quantity": 1, "reason": "不想要了"},
        headers=headers,
    )
    assert asked.status_code in (200, 201), asked.get_json()
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 409  # not yet
    refund = db.session.scalar(select(Refund).where(Refund.order_id == order.id))
    approve_refund(refund, "staff:1")
    db.session.commit()
    wait_until(lambda: fresh(Refund, refund.id).status == "refunded")
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 201
    assert place(client, headers, address_id, (sku_id, 1)).status_code == 409


def test_purchase_limit_in_the_cart_and_at_checkout(make, client, buyer):
    _user, address_id, headers = buyer
    product = limited(make, 3, specs={"颜色": ["红", "蓝"]})
    red, blue = (sku.id for sku in product.skus)
    assert (
        client.post(
            "/api/v1/cart/items", json={"sku_id": red, "quantity": 2}, headers=headers
        ).status_code
        == 200
    )
    # Two SKUs of one product share its limit.
    over = client.post("/api/v1/cart/items", json={"sku_id": blue, "quantity": 2}, headers=headers)
    assert over.status_code == 409
    assert over.get_json()["error"] == {
        "code": "purchase_limit_exceeded",
        "message": "每人限购 3 件",
    }
    assert (
        client.post(
            "/api/v1/cart/items", json={"sku_id": blue, "quantity": 1}, headers=headers
        ).status_code
        == 200
    )
    # Orders placed meanwhile (another phone) count: the cart line is then over the limit.
    assert place(client, headers, address_id, (red, 2)).status_code == 201  # leaves the cart
    patch = client.patch(f"/api/v1/cart/items/{blue}", json={"quantity": 2}, headers=headers)
    assert patch.status_code == 409
    assert patch.get_json()["error"]["message"] == ("每人限购 3 件，您已购买 2 件，最多还能买 1 件")
    assert place(client, headers, address_id, (red, 1)).status_code == 201
    cart = client.get("/api/v1/cart").get_json()
    [line] = cart["items"]
    assert (line["sku_id"], line["available"]) == (blue, False)
    assert line["problem"] == "每人限购 3 件，您已购买 3 件，已达限购"
    assert cart["items_fen"] == 0

    checkout = page(client, "/checkout")
    assert "每人限购 3 件，您已购买 3 件，已达限购，不会计入本单" in checkout
    assert "提交订单" not in checkout  # nothing on the page can be bought
    assert "已达限购" in page(client, f"/checkout?sku_id={red}&quantity=1")


def test_cart_session_tells_the_product_page_what_is_left(make, client, buyer):
    _user, address_id, headers = buyer
    product = limited(make, 2)
    assert client.get(f"/cart/session?product_id={product.id}").get_json()["purchase"] == {
        "limit": 2,
        "bought": 0,
        "remaining": 2,
        "reached": False,
    }
    place(client, headers, address_id, (product.skus[0].id, 2))
    assert client.get(f"/cart/session?product_id={product.id}").get_json()["purchase"] == {
        "limit": 2,
        "bought": 2,
        "remaining": 0,
        "reached": True,
    }
    unlimited = make.product()
    assert "purchase" not in client.get(f"/cart/session?product_id={unlimited.id}").get_json()
    assert client.get("/cart/session?product_id=99999999999999").status_code == 200


# --- the product page --------------------------------------------------------------------------


def test_product_page_shows_the_limit(make, client):
    product = limited(make, 2)
    body = page(client, f"/product/{product.id}")
    assert "限购 2 件" in body
    assert '"purchase_limit": 2' in body  # for the picker's stepper
    assert "限购" not in page(client, f"/product/{make.product().id}")


def test_sold_out_page_says_when_unpaid_orders_hold_the_stock(make, client, buyer):
    _user, address_id, headers = buyer
    product = make.product(stock=2)
    sku_id = product.skus[0].id
    held_note = "已被抢光，仍有未付款订单，可稍后再试"
    assert held_note not in page(client, f"/product/{product.id}")

    created = place(client, headers, address_id, (sku_id, 2)).get_json()
    body = page(client, f"/product/{product.id}")
    assert held_note in body and "已售罄" not in body

    # Paid: the stock is gone for good, a plain 售罄 (no catalog row changed, so this also
    # proves the cached page does not keep the note).
    order = db.session.get(Order, created["id"])
    mark_paid(order, transaction_id="tx-held-1", amount_fen=order.total_fen)
    db.session.commit()
    body = page(client, f"/product/{product.id}")
    assert held_note not in body and "已售罄" in body


def test_cancelled_order_gives_the_stock_back_to_the_page(make, client, buyer):
    _user, address_id, headers = buyer
    product = make.product(stock=1)
    created = place(client, headers, address_id, (product.skus[0].id, 1)).get_json()
    assert "已被抢光" in page(client, f"/product/{product.id}")
    client.post(f"/api/v1/orders/{created['id']}/cancel", headers=headers)
    assert fresh(Order, created["id"]).status == CANCELLED
    body = page(client, f"/product/{product.id}")
    assert "已被抢光" not in body and "库存 1 件" in body


# --- where the limit is set --------------------------------------------------------------------


def test_admin_product_form_sets_the_limit(make, client, login_as, app_ctx):
    login_as(client, make.staff("clerk"))
    form = text(client.get("/admin/products/new"))
    assert "每人限购" in form and 'name="purchase_limit"' in form
    data = {
        "title": "限购好物",
        "subtitle": "",
        "category_id": "0",
        "description": "",
        "on_shelf": "y",
        "sort": "0",
        "purchase_limit": "2",
        "action": "save",
        "sku-0-id": "",
        "sku-0-price": "19.90",
        "sku-0-original": "",
        "sku-0-stock": "5",
        "sku-0-code": "",
    }
    saved = post(client, "/admin/products/new", data)
    assert saved.status_code == 302, text(saved)
    product = db.session.scalar(select(Product).where(Product.title == "限购好物"))
    assert product.purchase_limit == 2
    edit = text(client.get(f"/admin/products/{product.id}/edit"))
    assert re.search(r'name="purchase_limit"[^>]*value="2"', edit)

    data["sku-0-id"] = str(product.skus[0].id)
    refused = post(client, f"/admin/products/{product.id}/edit", {**data, "purchase_limit": "1000"})
    assert refused.status_code == 422 and "限购需为 0-999 件" in text(refused)
    cleared = post(client, f"/admin/products/{product.id}/edit", {**data, "purchase_limit": ""})
    assert cleared.status_code == 302
    assert fresh(Product, product.id).purchase_limit == 0


@pytest.fixture
def api(client, runner, app_ctx):
    """Call the Open API with a token from ``flask create-api-token``."""
    result = runner.invoke(args=["create-api-token", "limits"])
    token = result.output.strip()

    return bearer_caller(client, token)


def test_open_api_creates_and_patches_the_limit(api, client):
    body = {"title": "开放接口限购", "skus": [{"price_fen": 990, "stock": 5}], "purchase_limit": 3}
    created = api("post", "/products", json=body)
    assert created.status_code == 201, created.get_json()
    product_id = created.get_json()["id"]
    assert created.get_json()["purchase_limit"] == 3
    assert client.get(f"/api/v1/products/{product_id}").get_json()["purchase_limit"] == 3

    patched = api("patch", f"/products/{product_id}", json={"purchase_limit": 1})
    assert patched.status_code == 200 and patched.get_json()["purchase_limit"] == 1
    untouched = api("patch", f"/products/{product_id}", json={"title": "改名"})
    assert untouched.get_json()["purchase_limit"] == 1
    for bad in (-1, 1000, "2", True):
        refused = api("patch", f"/products/{product_id}", json={"purchase_limit": bad})
        assert refused.status_code == 422, bad
    assert fresh(Product, product_id).purchase_limit == 1


# --- concurrency -------------------------------------------------------------------------------


def _race(app, user_id: int, address_id: int, sku_id: int, tries: int) -> list[str]:
    """``tries`` checkouts of one customer at the same instant; each one's outcome."""
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(tries)

    def buy():
        with app.app_context():
            barrier.wait()
            try:
                place_order(user_id, [ItemRequest(sku_id, 1)], address_id)
                db.session.commit()
                result = "ok"
            except OrderError as exc:
                db.session.rollback()
                result = exc.code
            except Exception as exc:  # SQLite's "database is locked" after the busy timeout
                db.session.rollback()
                result = type(exc).__name__
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=buy) for _ in range(tries)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return outcomes


def test_concurrent_checkouts_cannot_pass_the_unpaid_cap(app, make):
    user = make.user()
    address_id = address_for(user).id
    sku_id = make.product(stock=100).skus[0].id
    for _ in range(2):
        place_order(user.id, [ItemRequest(sku_id, 1)], address_id)
    db.session.commit()
    outcomes = _race(app, user.id, address_id, sku_id, 8)
    assert outcomes.count("ok") == 1, outcomes
    assert outcomes.count("too_many_unpaid_orders") == 7, outcomes
    db.session.rollback()
    count = select(func.count(Order.id)).where(Order.user_id == user.id)
    assert db.session.scalar(count) == 3
    assert stock_of(sku_id) == 97


def test_concurrent_checkouts_cannot_pass_the_purchase_limit(app, make):
    settings = get_settings()
    settings.max_unpaid_orders = 20
    user = make.user()
    address_id = address_for(user).id
    sku_id = limited(make, 2, stock=100).skus[0].id
    outcomes = _race(app, user.id, address_id, sku_id, 8)
    assert outcomes.count("ok") == 2, outcomes
    assert outcomes.count("purchase_limit_exceeded") == 6, outcomes
    assert stock_of(sku_id) == 98


# --- the migration -----------------------------------------------------------------------------


def test_migration_moves_a_shop_at_the_old_default_to_15_minutes(redis_url, tmp_path):
    """A shop still at the old 30-minute default moves to 15; the new columns get their
    defaults on existing rows. On a database of its own, upgraded step by step."""
    migrations = str(Path(__file__).resolve().parent.parent / "migrations")
    app = create_app(
        {
            "ENV_NAME": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'migrate.db'}",
            "REDIS_URL": redis_url,
            "UPLOAD_DIR": str(tmp_path / "uploads"),
        }
    )
    with app.app_context():
        script = ScriptDirectory.from_config(
            app.extensions["migrate"].migrate.get_config(migrations)
        )
        before = script.get_revision("a7c31e5d9f02").down_revision
        upgrade(directory=migrations, revision=before)
        db.session.execute(
            sql(
                "INSERT INTO shop_settings (id, shop_name, shipping_fee_fen, "
                "free_shipping_over_fen, pay_timeout_minutes, auto_complete_days, updated_at) "
                "VALUES (1, '店', 1000, 9900, 30, 10, '2026-01-01 00:00:00')"
            )
        )
        db.session.execute(
            sql(
                "INSERT INTO products (id, title, subtitle, description, spec_names, on_shelf, "
                "featured, sort, created_at, updated_at) VALUES (1, '旧商品', '', '', '[]', 1, "
                "0, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        db.session.commit()
        upgrade(directory=migrations, revision="a7c31e5d9f02")
        row = db.session.execute(
            sql("SELECT pay_timeout_minutes, max_unpaid_orders FROM shop_settings")
        ).one()
        assert tuple(row) == (15, 3)
        assert db.session.scalar(sql("SELECT purchase_limit FROM products")) == 0
        db.session.commit()
        downgrade(directory=migrations, revision=before)
        assert db.session.scalar(sql("SELECT pay_timeout_minutes FROM shop_settings")) == 30
        db.session.remove()
        db.engine.dispose()
