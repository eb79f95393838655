"""Timed discounts (issue 18 part B): the one unit-price rule, orders in the window, the
commission switch, the product page (crossed-out price, countdown, cache key) and the
admin pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.core.money import format_yuan
from app.core.time import utcnow
from app.discounts.models import TimedDiscount
from app.discounts.pricing import percent_price, unit_price, unit_prices
from app.discounts.services import DiscountError, end_discount
from app.earnings.share_earnings import estimates
from app.extensions import db
from app.orders.models import OrderLine
from app.orders.services import ItemRequest, OrderError, place_order
from tests.support.commissions import configure, customer_of, distributor, earned, pay
from tests.support.discounts import discount
from tests.support.orders import make_address, sign_in
from tests.support.pay import address_for

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def test_percent_off_rounds_down_to_the_fen():
    assert percent_price(1999, 1500) == 1699  # 16.9915 yuan: the customer keeps the fraction
    assert percent_price(1, 9999) == 1  # never free


def test_unit_prices_follow_the_window(make):
    product = make.product(price_fen=10000, stock=5)
    sku = product.skus[0]
    assert unit_price(sku).price_fen == 10000
    later = discount(product, percent_off_bp=2000, starts_in=timedelta(hours=1))
    assert unit_price(sku).price_fen == 10000  # scheduled: not yet
    assert unit_price(sku, later.starts_at + timedelta(seconds=1)).price_fen == 8000
    assert unit_price(sku, later.ends_at).price_fen == 10000  # the end is excluded
    end_discount(later)
    db.session.commit()
    assert unit_price(sku, later.starts_at + timedelta(seconds=1)).price_fen == 10000


def test_price_mode_sets_some_skus_only(make):
    product = make.product(price_fen=5000, stock=5, specs={"颜色": ["红", "蓝"]})
    red, blue = product.skus
    discount(product, prices={red.id: 3990})
    prices = unit_prices([red, blue])
    assert prices[red.id].price_fen == 3990 and prices[red.id].discounted
    assert prices[blue.id].price_fen == 5000 and not prices[blue.id].discounted


def test_overlapping_windows_and_bad_prices_are_refused(make):
    product = make.product(price_fen=5000, stock=5)
    discount(product, percent_off_bp=1000)
    with pytest.raises(DiscountError, match="重叠"):
        discount(product, percent_off_bp=2000, starts_in=timedelta(minutes=30))
    db.session.rollback()
    with pytest.raises(DiscountError, match="低于原价"):
        discount(
            product,
            prices={product.skus[0].id: 5000},
            starts_in=timedelta(days=2),
        )
    db.session.rollback()


def test_orders_in_the_window_pay_the_discount_price_and_stock_is_checked_alike(make):
    product = make.product(price_fen=10000, stock=2)
    sku = product.skus[0]
    discount(product, percent_off_bp=2500)
    buyer = make.user()
    address = address_for(buyer)
    order = place_order(buyer.id, [ItemRequest(sku.id, 2)], address.id)
    db.session.commit()
    line = order.lines[0]
    assert (line.unit_price_fen, line.amount_fen) == (7500, 15000)
    assert order.items_fen == 15000 and line.commission_exempt is False
    other = make.user()
    with pytest.raises(OrderError) as refused:
        place_order(other.id, [ItemRequest(sku.id, 1)], address_for(other).id)
    assert refused.value.code == "sold_out"
    db.session.rollback()


def test_commissions_on_discounted_sales_are_on_the_paid_price_by_default(make):
    configure(level1_bp=1000)
    seller = distributor(make)
    buyer = customer_of(make, seller)
    product = make.product(price_fen=10000, stock=5)
    discount(product, percent_off_bp=5000)
    order = place_order(buyer.id, [ItemRequest(product.skus[0].id, 1)], address_for(buyer).id)
    db.session.commit()
    pay(order)
    assert earned(order.id) == {f"level_1@{seller.id}": 500}  # 10% of ¥50 paid


def test_a_product_can_switch_commissions_off_for_discounted_sales(make):
    configure(level1_bp=1000)
    seller = distributor(make)
    buyer = customer_of(make, seller)
    product = make.product(price_fen=10000, stock=5)
    other = make.product(price_fen=10000, stock=5)
    discount(product, percent_off_bp=5000, commission_on=False)
    address = address_for(buyer)
    order = place_order(
        buyer.id,
        [ItemRequest(product.skus[0].id, 1), ItemRequest(other.skus[0].id, 1)],
        address.id,
    )
    db.session.commit()
    exempt = {line.product_id: line.commission_exempt for line in order.lines}
    assert exempt == {product.id: True, other.id: False}
    pay(order)
    entries = earned(order.id)
    assert entries == {f"level_1@{seller.id}": 1000}  # only the undiscounted product earns
    line_ids = set(db.session.scalars(select(OrderLine.id).where(OrderLine.product_id == other.id)))
    assert line_ids
    # 分享赚 says the same: nothing on the discounted product while it runs
    shown = estimates(seller.id, [product.id, other.id])
    assert shown[product.id].max_fen == 0 and shown[other.id].max_fen == 1000


def test_share_earnings_are_on_the_discount_price(make):
    configure(level1_bp=1000)
    seller = distributor(make)
    product = make.product(price_fen=10000, stock=5)
    discount(product, percent_off_bp=2000)
    assert estimates(seller.id, [product.id])[product.id].max_fen == 800


def test_product_page_shows_the_struck_price_and_a_countdown(make, client):
    product = make.product(price_fen=10000, stock=5)
    before = client.get(f"/product/{product.id}").get_data(as_text=True)
    assert "data-timed-discount" not in before  # cached now, without a discount
    row = discount(product, percent_off_bp=1500)
    page = client.get(f"/product/{product.id}").get_data(as_text=True)
    assert "限时 8.5 折" in page and "timed-discount.js" in page
    assert re.search(r'data-ends-ms="(\d+)"', page).group(1) == str(
        int(row.ends_at.timestamp() * 1000)
    )
    assert "<b data-price-value>85.00</b>" in page
    struck = format_yuan(max(product.skus[0].original_price_fen or 0, 10000))
    assert f'<s class="orig" data-orig>{struck}</s>' in page  # list price or higher, crossed
    end_discount(row)
    db.session.commit()
    after = client.get(f"/product/{product.id}").get_data(as_text=True)
    assert "data-timed-discount" not in after and "<b data-price-value>100.00</b>" in after


def test_a_product_id_past_max_id_is_404(client):
    assert client.get("/product/99999999999").status_code == 404


def test_cart_and_checkout_show_the_discount_price(make, client, login_as):
    buyer = make.user()
    make_address(buyer.id, is_default=True)
    product = make.product(price_fen=10000, stock=5)
    discount(product, percent_off_bp=3000)
    headers = sign_in(client, login_as, buyer)
    sku_id = product.skus[0].id
    added = client.post(
        "/api/v1/cart/items", json={"sku_id": sku_id, "quantity": 2}, headers=headers
    )
    assert added.status_code in (200, 201), added.json
    cart = client.get("/api/v1/cart").json
    assert cart["items"][0]["price_fen"] == 7000 and cart["items_fen"] == 14000
    checkout = client.get(f"/checkout?sku_id={sku_id}&quantity=1").get_data(as_text=True)
    assert "¥70.00" in checkout


# --- admin --------------------------------------------------------------------------------


def _admin(client, login_as, make):
    login_as(client, make.staff("discounter"))
    token_page = client.get("/admin/discounts/new").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', token_page)


def _form(product: int, token: str, **values) -> dict:
    now = utcnow() + timedelta(hours=8)  # the form speaks Beijing time
    return {
        "csrf_token": token,
        "product_id": str(product),
        "name": "周末特惠",
        "mode": "percent",
        "zhe": "8.5",
        "starts_at": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "commission_on": "1",
        **values,
    }


def test_staff_create_edit_and_end_a_discount(make, client, login_as):
    product = make.product("admin 折扣商品", price_fen=10000, stock=5)
    login_as(client, make.staff("discounter"))
    assert "还没有限时折扣" in client.get("/admin/discounts").get_data(as_text=True)
    form_page = client.get(f"/admin/discounts/new?product_id={product.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form_page).group(1)
    created = client.post("/admin/discounts", data=_form(product.id, token))
    assert created.status_code == 302, created.get_data(as_text=True)
    row = db.session.scalar(select(TimedDiscount).where(TimedDiscount.product_id == product.id))
    assert (row.mode, row.percent_off_bp, row.name) == ("percent", 1500, "周末特惠")
    assert unit_price(product.skus[0]).price_fen == 8500
    listing = client.get("/admin/discounts").get_data(as_text=True)
    assert "周末特惠" in listing and "进行中" in listing

    overlap = client.post("/admin/discounts", data=_form(product.id, token, zhe="9"))
    assert overlap.status_code == 400 and "重叠" in overlap.get_data(as_text=True)

    sku = product.skus[0]
    edited = client.post(
        f"/admin/discounts/{row.id}",
        data=_form(product.id, token, mode="price", **{f"price_{sku.id}": "66.60"}),
    )
    assert edited.status_code == 302
    db.session.expire_all()
    assert unit_price(sku).price_fen == 6660

    ended = client.post(f"/admin/discounts/{row.id}/end", data={"csrf_token": token})
    assert ended.status_code == 302
    db.session.expire_all()
    assert unit_price(sku).price_fen == 10000


@pytest.mark.parametrize(
    "changes",
    [
        {"zhe": "10"},
        {"zhe": "abc"},
        {"zhe": "0"},
        {"mode": "other"},
        {"starts_at": "not a time"},
        {"product_id": "99999999999"},
        {"product_id": ""},
        {"mode": "price"},  # no SKU price at all
    ],
)
def test_bad_discount_forms_get_a_chinese_error(make, client, login_as, changes):
    product = make.product(price_fen=10000, stock=5)
    login_as(client, make.staff("discounter"))
    page = client.get(f"/admin/discounts/new?product_id={product.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    res = client.post("/admin/discounts", data=_form(product.id, token, **changes))
    assert res.status_code == 400
    assert 'class="flash flash-error"' in res.get_data(as_text=True)


def test_discount_ids_past_max_id_are_404(make, client, login_as):
    login_as(client, make.staff("discounter"))
    assert client.get("/admin/discounts/99999999999").status_code == 404


def test_the_api_product_detail_gives_the_discount_price(make, client):
    product = make.product(price_fen=10000, stock=5)
    assert client.get(f"/api/v1/products/{product.id}").json["discount_ends_at"] is None
    discount(product, percent_off_bp=1000)
    body = client.get(f"/api/v1/products/{product.id}").json
    assert body["skus"][0]["price_fen"] == 9000
    assert body["skus"][0]["original_price_fen"] >= 10000
    assert body["discount_ends_at"]
