"""Order placement, stock reservation and the order state machine, on the real database."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.catalog.models import Sku
from app.core.models import StatusChange
from app.core.status import InvalidTransition
from app.core.time import utcnow
from app.extensions import db
from app.orders.models import Address, Order, PaymentTransaction
from app.orders.services import (
    ItemRequest,
    OrderError,
    PaymentMismatch,
    cancel_order,
    due_unpaid_order_ids,
    get_settings,
    mark_paid,
    place_order,
)
from app.orders.states import move_order
from tests.support import factories

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def _address(user) -> Address:
    return factories.address(user)


def test_place_order_takes_prices_from_the_database_and_stock(make):
    user = make.user()
    address = _address(user)
    product = make.product(price_fen=1990, stock=5)
    sku = product.skus[0]
    order = place_order(user.id, [ItemRequest(sku.id, 2)], address.id, "请尽快发货")
    db.session.commit()
    assert order.items_fen == 3980
    assert order.shipping_fen == get_settings().shipping_fee_fen  # below the free threshold
    assert order.total_fen == 3980 + order.shipping_fen
    assert order.district_code == "440305"
    assert db.session.get(Sku, sku.id).stock == 3
    history = db.session.scalars(select(StatusChange).where(StatusChange.subject_id == order.id))
    assert [h.to_status for h in history] == ["pending_payment"]


def test_free_shipping_over_threshold(make):
    user = make.user()
    address = _address(user)
    sku = make.product(price_fen=10000, stock=5).skus[0]
    order = place_order(user.id, [ItemRequest(sku.id, 1)], address.id)
    assert order.shipping_fen == 0


def test_sold_out_refuses_and_takes_nothing(make):
    user = make.user()
    address = _address(user)
    plenty = make.product(stock=10).skus[0]
    scarce = make.product(stock=1).skus[0]
    with pytest.raises(OrderError) as err:
        place_order(user.id, [ItemRequest(plenty.id, 2), ItemRequest(scarce.id, 2)], address.id)
    assert err.value.code == "sold_out"
    assert "售罄" in err.value.message
    db.session.rollback()
    assert db.session.get(Sku, plenty.id).stock == 10
    assert db.session.scalar(select(func.count(Order.id))) == 0


@pytest.mark.parametrize(
    ("items", "code"),
    [
        ([], "empty_order"),
        ([ItemRequest(1, 0)], "invalid_quantity"),
        ([ItemRequest(1, 1000)], "invalid_quantity"),
    ],
)
def test_bad_items_are_refused(make, items, code):
    user = make.user()
    address = _address(user)
    with pytest.raises(OrderError) as err:
        place_order(user.id, items, address.id)
    assert err.value.code == code


def test_someone_elses_address_is_refused(make):
    buyer, other = make.user(), make.user()
    sku = make.product().skus[0]
    with pytest.raises(OrderError) as err:
        place_order(buyer.id, [ItemRequest(sku.id, 1)], _address(other).id)
    assert err.value.code == "invalid_address"


def test_off_shelf_product_cannot_be_ordered(make):
    user = make.user()
    sku = make.product(on_shelf=False).skus[0]
    with pytest.raises(OrderError) as err:
        place_order(user.id, [ItemRequest(sku.id, 1)], _address(user).id)
    assert err.value.code == "unavailable"


def test_cancel_releases_stock_exactly_once(make):
    user = make.user()
    sku = make.product(stock=5).skus[0]
    order = place_order(user.id, [ItemRequest(sku.id, 3)], _address(user).id)
    db.session.commit()
    cancel_order(order, "user:1")
    db.session.commit()
    assert db.session.get(Sku, sku.id).stock == 5
    with pytest.raises(InvalidTransition):
        cancel_order(order, "system")
    assert db.session.get(Sku, sku.id).stock == 5


def test_bad_transitions_raise(make):
    user = make.user()
    sku = make.product().skus[0]
    order = place_order(user.id, [ItemRequest(sku.id, 1)], _address(user).id)
    with pytest.raises(InvalidTransition):
        move_order(order, "shipped", "staff:1")
    with pytest.raises(InvalidTransition):
        move_order(order, "completed", "staff:1")


def test_mark_paid_once_and_checks_amount(make):
    user = make.user()
    sku = make.product().skus[0]
    order = place_order(user.id, [ItemRequest(sku.id, 1)], _address(user).id)
    db.session.commit()
    with pytest.raises(PaymentMismatch):
        mark_paid(order, transaction_id="42000001", amount_fen=order.total_fen - 1)
    assert order.status == "pending_payment"
    assert mark_paid(order, transaction_id="42000001", amount_fen=order.total_fen) is True
    db.session.commit()
    assert mark_paid(order, transaction_id="42000001", amount_fen=order.total_fen) is False
    db.session.commit()
    assert order.status == "paid" and order.paid_fen == order.total_fen
    assert db.session.scalar(select(func.count(PaymentTransaction.id))) == 1


def test_due_unpaid_orders(make):
    user = make.user()
    sku = make.product().skus[0]
    old = place_order(
        user.id, [ItemRequest(sku.id, 1)], _address(user).id, now=utcnow() - timedelta(minutes=31)
    )
    fresh = place_order(user.id, [ItemRequest(sku.id, 1)], _address(user).id)
    db.session.commit()
    assert due_unpaid_order_ids() == [old.id]
    assert fresh.id not in due_unpaid_order_ids()


def test_concurrent_buyers_never_oversell(app, make):
    """200 buyers race for 50 units: exactly 50 orders, stock 0, never negative."""
    sku_id = make.product(stock=50).skus[0].id
    buyers = [(u.id, _address(u).id) for u in (make.user() for _ in range(200))]
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def buy(chunk):
        barrier.wait()
        for user_id, address_id in chunk:
            with app.app_context():
                try:
                    place_order(user_id, [ItemRequest(sku_id, 1)], address_id)
                    db.session.commit()
                    result = "ok"
                except OrderError as exc:
                    db.session.rollback()
                    result = exc.code
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=buy, args=(buyers[i::20],)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    db.session.expire_all()
    assert outcomes.count("ok") == 50
    assert outcomes.count("sold_out") == 150
    assert db.session.get(Sku, sku_id).stock == 0
    assert db.session.scalar(select(func.count(Order.id))) == 50
