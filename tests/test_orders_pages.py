"""H5 order pages: sign-in required, own data only, empty states, what each page shows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.orders.models import SHIPPED, Address, CartItem, Order
from app.orders.refunds import request_refund
from app.orders.services import ItemRequest, cancel_order, mark_paid, place_order
from app.orders.states import move_order
from tests.support.orders import make_address

PAGES = ["/cart", "/checkout", "/addresses", "/addresses/new", "/orders"]


def text(res) -> str:
    return res.get_data(as_text=True)


def order_for(user, sku, quantity: int = 1) -> Order:
    address = db.session.scalar(select(Address).where(Address.user_id == user.id)) or (
        make_address(user.id)
    )
    order = place_order(user.id, [ItemRequest(sku.id, quantity)], address.id)
    db.session.commit()
    return order


def pay(order: Order, suffix: str = "1") -> None:
    mark_paid(
        order, transaction_id=f"42000000000000000000000{suffix:>05}", amount_fen=order.total_fen
    )
    db.session.commit()


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_sign_in(client, path):
    res = client.get(path)
    assert res.status_code == 302
    assert res.headers["Location"] == f"/login?next={path}"


def test_staff_cannot_shop(client, make, login_as):
    login_as(client, make.staff())
    assert client.get("/cart").status_code == 403
    assert client.get("/cart/session").get_json() == {"signed_in": False}


def test_cart_session_for_cached_pages(client, make, login_as):
    anonymous = client.get("/cart/session")
    assert anonymous.get_json() == {"signed_in": False}
    assert anonymous.headers["Cache-Control"] == "no-store"
    user = make.user()
    db.session.add(CartItem(user_id=user.id, sku_id=make.product().skus[0].id, quantity=2))
    db.session.commit()
    login_as(client, user)
    body = client.get("/cart/session").get_json()
    assert body["signed_in"] and body["cart_count"] == 2 and body["csrf_token"]


def test_product_page_stays_the_same_for_everyone(client, make, login_as):
    """The cached product page carries no token, user or cart count: JS asks /cart/session."""
    product = make.product()
    anonymous = text(client.get(f"/product/{product.id}"))
    login_as(client, make.user())
    signed_in = text(client.get(f"/product/{product.id}"))
    assert anonymous == signed_in
    assert 'data-buy="cart"' in anonymous and 'data-buy="now"' in anonymous
    assert "csrf" not in anonymous and "js/orders.js" in anonymous


def test_empty_states(client, make, login_as):
    login_as(client, make.user())
    assert "购物车还是空的" in text(client.get("/cart"))
    assert "没有要结算的商品" in text(client.get("/checkout"))
    assert "还没有收货地址" in text(client.get("/addresses"))
    assert "还没有订单" in text(client.get("/orders"))
    assert "还没有相关订单" in text(client.get("/orders?status=paid"))


def test_cart_page_greys_unavailable_lines_and_shows_the_shipping_rule(client, make, login_as):
    user = make.user()
    good = make.product(title="好茶", price_fen=5000, stock=9).skus[0]
    off = make.product(title="下架的杯子", stock=9)
    gone = make.product(title="卖完的壶", stock=0).skus[0]
    for sku_id in (good.id, off.skus[0].id, gone.id):
        db.session.add(CartItem(user_id=user.id, sku_id=sku_id, quantity=1))
    off.on_shelf = False
    db.session.commit()
    login_as(client, user)
    html = text(client.get("/cart"))
    assert html.count('class="cart-line off"') == 2
    assert "已下架" in html and "已售罄" in html
    assert "满¥99包邮，还差 ¥49.00" in html
    assert "¥60.00" in html and "含运费 ¥10.00" in html  # only the available line counts
    assert '<meta name="csrf-token"' in html


def test_checkout_buy_now_reads_prices_and_address(client, make, login_as):
    user = make.user()
    make_address(user.id, is_default=True)
    sku = make.product(title="红茶礼盒", price_fen=5000, stock=9).skus[0]
    login_as(client, user)
    html = text(client.get(f"/checkout?sku_id={sku.id}&quantity=2"))
    assert "红茶礼盒" in html and "×2" in html
    assert "¥100.00" in html and "免运费" in html
    assert (
        '<span class="addr-region">广东省 深圳市 南山区</span> '
        '<span class="addr-detail">科技园1号</span>' in html
    )
    assert f'"sku_id": {sku.id}' in html
    # the address chooser comes back here with the same items
    assert "/addresses?select=1&amp;next=" in html
    assert client.get("/checkout?sku_id=999999").status_code == 404


def test_checkout_ignores_another_customers_address(client, make, login_as):
    user, other = make.user(), make.user()
    theirs = make_address(other.id, detail="别人的家")
    sku = make.product().skus[0]
    login_as(client, user)
    html = text(client.get(f"/checkout?sku_id={sku.id}&address_id={theirs.id}"))
    assert "别人的家" not in html and "＋ 添加收货地址" in html


def test_address_pages(client, make, login_as):
    user, other = make.user(), make.user()
    mine = make_address(user.id, is_default=True)
    theirs = make_address(other.id)
    login_as(client, user)
    listing = text(client.get("/addresses?select=1&next=/checkout%3Fsku_id%3D1"))
    assert f"/checkout?sku_id=1&amp;address_id={mine.id}" in listing
    assert "默认" in listing
    edit = text(client.get(f"/addresses/{mine.id}/edit"))
    assert 'data-district="440305"' in edit and "编辑地址" in edit
    assert client.get(f"/addresses/{theirs.id}/edit").status_code == 404
    # a foreign "next" is dropped, never followed
    assert "evil" not in text(client.get("/addresses/new?next=//evil.com"))


def test_orders_list_tabs_and_my_page_counts(client, make, login_as):
    user = make.user()
    sku = make.product(title="绿茶", stock=20).skus[0]
    waiting = order_for(user, sku)
    paid = order_for(user, sku)
    pay(paid, "1")
    shipped = order_for(user, sku)
    pay(shipped, "2")
    move_order(shipped, SHIPPED, "staff:1", "发货", carrier="顺丰", tracking_number="SF9")
    request_refund(paid, paid.lines[0], 1, "不想要了", f"user:{user.id}")
    cancelled = order_for(user, sku)
    cancel_order(cancelled, f"user:{user.id}")
    db.session.commit()
    order_for(make.user(), sku)  # someone else's

    login_as(client, user)
    everything = text(client.get("/orders"))
    assert everything.count('class="block order-card"') == 4
    for tab, order in (("pending_payment", waiting), ("paid", paid), ("shipped", shipped)):
        html = text(client.get(f"/orders?status={tab}"))
        assert html.count('class="block order-card"') == 1 and order.number in html
    assert paid.number in text(client.get("/orders?status=refund"))
    assert "确认收货" in text(client.get("/orders?status=shipped"))
    assert "去支付" in text(client.get("/orders?status=pending_payment"))
    assert text(client.get("/orders?status=nonsense")).count('class="block order-card"') == 4

    my = text(client.get("/my"))
    assert '/orders?status=pending_payment">' in my
    for count in ('<i class="badge">1</i>',):
        assert my.count(count) == 4  # 待付款, 待发货, 待收货, 退款 each 1


def test_order_detail_timeline_and_actions(client, make, login_as):
    user = make.user()
    sku = make.product(title="白茶", stock=5).skus[0]
    order = order_for(user, sku, 2)
    login_as(client, user)
    html = text(client.get(f"/orders/{order.id}"))
    assert "待付款" in html and "取消订单" in html and "去支付" in html
    assert "申请售后" not in html

    pay(order)
    move_order(order, SHIPPED, "staff:1", "已发货", carrier="顺丰", tracking_number="SF123")
    db.session.commit()
    html = text(client.get(f"/orders/{order.id}"))
    assert "待收货" in html and "顺丰 SF123" in html and "确认收货" in html
    timeline = html[html.index("订单进度") :]
    assert timeline.index("已发货") < timeline.index("微信支付成功") < timeline.index("下单")
    assert "申请售后" in html and f"/lines/{order.lines[0].id}/aftersale" in html
    refund_page = text(client.get(f"/orders/{order.id}/lines/{order.lines[0].id}/refund"))
    assert 'max="2"' in refund_page and "不想要了" in refund_page


def test_other_customers_order_pages_are_404(client, make, login_as):
    owner = make.user()
    order = order_for(owner, make.product().skus[0])
    login_as(client, make.user())
    for path in (
        f"/orders/{order.id}",
        f"/orders/{order.id}/pay",
        f"/orders/{order.id}/lines/{order.lines[0].id}/refund",
        f"/orders/{2**40}",
    ):
        res = client.get(path)
        assert res.status_code == 404, path
        assert "订单不存在" in text(res)


def test_pay_page_states(client, make, login_as):
    user = make.user()
    order = order_for(user, make.product(price_fen=2500).skus[0])
    login_as(client, user)
    html = text(client.get(f"/orders/{order.id}/pay"))
    assert "¥35.00" in html and "微信支付" in html
    assert 'data-status="pending_payment"' in html
    pay(order)
    html = text(client.get(f"/orders/{order.id}/pay?pay_result=ok"))
    assert 'data-status="paid"' in html
    done = html[html.index('data-pay-state="done"') :]
    assert done.startswith('data-pay-state="done">') and "待发货" in done
