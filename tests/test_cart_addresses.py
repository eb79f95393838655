"""Cart and address services on the real database."""

import threading

import pytest
from sqlalchemy import select

from app.extensions import db
from app.orders.addresses import list_addresses, save_address
from app.orders.cart import add_to_cart, remove_from_cart, set_cart_quantity, view_cart
from app.orders.models import CartItem
from app.orders.services import OrderError

pytestmark = pytest.mark.postgresql  # concurrent writers


def _addr(user_id, **kw):
    data = {
        "name": "李四",
        "phone": "138 0000 0000",
        "district_code": "110105",
        "detail": "建国路88号",
    }
    data.update(kw)
    return save_address(user_id, **data)


def test_address_names_come_from_the_district_code(make):
    user = make.user()
    address = _addr(user.id)
    db.session.commit()
    assert (address.province, address.city, address.district) == ("北京市", "北京市", "朝阳区")
    assert address.phone == "13800000000"
    assert address.is_default  # the first one


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("name", "", "invalid_name"),
        ("phone", "12345", "invalid_phone"),
        ("district_code", "440300", "invalid_district"),
        ("district_code", "999999", "invalid_district"),
        ("detail", "x", "invalid_detail"),
    ],
)
def test_bad_address_is_refused(make, field, value, code):
    user = make.user()
    with pytest.raises(OrderError) as err:
        _addr(user.id, **{field: value})
    assert err.value.code == code
    db.session.rollback()
    assert list_addresses(user.id) == []


def test_only_one_default_address(make):
    user = make.user()
    first = _addr(user.id)
    second = _addr(user.id, district_code="440305", is_default=True)
    db.session.commit()
    assert [a.id for a in list_addresses(user.id)] == [second.id, first.id]
    assert not db.session.get(type(first), first.id).is_default


def test_cart_rereads_prices_and_flags_unavailable_lines(make):
    user = make.user()
    cheap = make.product(price_fen=500, stock=5).skus[0]
    gone = make.product(price_fen=800, stock=5).skus[0]
    add_to_cart(user.id, cheap.id, 2)
    add_to_cart(user.id, cheap.id, 1)
    add_to_cart(user.id, gone.id, 1)
    db.session.commit()
    gone.product.on_shelf = False
    cheap.price_fen = 600  # the merchant changed the price after it was added
    db.session.commit()
    cart = view_cart(user.id)
    by_sku = {line.sku.id: line for line in cart.lines}
    assert by_sku[cheap.id].item.quantity == 3
    assert by_sku[gone.id].problem == "已下架"
    assert cart.items_fen == 1800
    with pytest.raises(OrderError) as err:
        add_to_cart(user.id, cheap.id, 3)
    assert err.value.code == "sold_out"


def test_cart_quantity_and_removal(make):
    user = make.user()
    sku = make.product(stock=5).skus[0]
    add_to_cart(user.id, sku.id, 1)
    set_cart_quantity(user.id, sku.id, 4)
    with pytest.raises(OrderError):
        set_cart_quantity(user.id, sku.id, 6)
    set_cart_quantity(user.id, sku.id, 0)
    remove_from_cart(user.id, sku.id)
    db.session.commit()
    assert view_cart(user.id).lines == []


def test_concurrent_adds_keep_one_row(app, make):
    user_id = make.user().id
    sku_id = make.product(stock=100).skus[0].id
    barrier = threading.Barrier(4)

    def add():
        barrier.wait()
        with app.app_context():
            add_to_cart(user_id, sku_id, 1)
            db.session.commit()

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    rows = db.session.scalars(select(CartItem).where(CartItem.user_id == user_id)).all()
    assert len(rows) == 1
    assert rows[0].quantity == 4
