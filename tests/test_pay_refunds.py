"""Refunds: request, review, WeChat refund at the stand-in, ``POST /pay/refund-notify``."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from app.catalog.models import Sku
from app.core.status import InvalidTransition
from app.extensions import db
from app.orders.models import Order, OrderLine, PaymentTransaction, Refund
from app.orders.refunds import reject_refund, request_refund
from app.orders.services import OrderError
from app.orders.states import move_order
from app.payments.client import PaymentError, query_refund
from app.payments.refunds import approve_refund
from tests.support.pay import (
    fresh,
    new_order,
    notice_for,
    pay_state,
    post_notice,
    prepay,
    sandbox_pay,
    sandbox_settings,
    wait_until,
)

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


@pytest.fixture
def stand_in(sandbox):
    saved = sandbox_settings(sandbox)
    yield sandbox
    sandbox_settings(sandbox, **saved)


def paid_order(make, stand_in, *, price_fen=1000, quantity=3, stock=10, discount_fen=0):
    """An order paid through the stand-in and its notice: (order, line, sku_id).

    ``discount_fen`` takes that much off the line (as a coupon would), so a line's amount
    need not divide evenly by its quantity.
    """
    order, sku_id = new_order(make, price_fen=price_fen, quantity=quantity, stock=stock)
    if discount_fen:
        order.lines[0].amount_fen -= discount_fen
        order.items_fen -= discount_fen
        order.total_fen -= discount_fen
        db.session.commit()
    prepay(order)
    sandbox_pay(stand_in, order.number)
    order = wait_until(lambda: (o := fresh(Order, order.id)).status == "paid" and o)
    return order, order.lines[0], sku_id


def _refunded(refund_id: int) -> Refund | None:
    refund = fresh(Refund, refund_id)
    return refund if refund.status == "refunded" else None


def test_approved_refund_is_completed_by_the_notice(app, make, live_server, stand_in):
    order, line, sku_id = paid_order(make, stand_in)
    stock_after_sale = db.session.get(Sku, sku_id).stock
    refund = request_refund(order, line, 1, "不想要了", f"user:{order.user_id}")
    db.session.commit()
    assert (refund.status, refund.amount_fen, refund.restock) == ("requested", 1000, True)
    approve_refund(refund, "staff:1")
    db.session.commit()
    assert refund.status == "approved"
    assert refund.refund_id
    assert query_refund(refund.out_refund_no)["status"] in ("PROCESSING", "SUCCESS")

    done = wait_until(lambda: _refunded(refund.id))
    assert done.refunded_at is not None
    line = fresh(OrderLine, line.id)
    assert (line.refunded_quantity, line.refunded_fen) == (1, 1000)
    order = db.session.get(Order, order.id)
    assert order.refunded_fen == 1000
    assert order.status == "paid"
    assert db.session.get(Sku, sku_id).stock == stock_after_sale + 1  # not shipped: back
    kinds = db.session.scalars(
        select(PaymentTransaction.kind).where(PaymentTransaction.order_id == order.id)
    ).all()
    assert sorted(kinds) == ["paid", "prepay", "refund", "refund_done"]


def test_refunds_add_up_to_exactly_what_was_paid_and_close_the_order(
    app, make, live_server, stand_in
):
    order, line, sku_id = paid_order(make, stand_in, price_fen=1000, quantity=3, discount_fen=1)
    amounts = []
    for _ in range(3):
        refund = request_refund(order, line, 1, "质量问题", "user:1")
        approve_refund(refund, "staff:1")
        db.session.commit()
        amounts.append(refund.amount_fen)
        wait_until(lambda refund=refund: _refunded(refund.id))
        order = fresh(Order, order.id)
        line = db.session.get(OrderLine, line.id)
    assert amounts == [999, 999, 1001]  # rounded down; the last one takes the remainder
    assert line.refunded_fen == line.amount_fen == 2999
    order = fresh(Order, order.id)
    assert order.refunded_fen == 2999
    assert order.status == "cancelled"  # everything refunded (shipping stays with the shop)
    assert db.session.get(Sku, sku_id).stock == 10
    with pytest.raises(OrderError):
        request_refund(order, line, 1, "再退一次", "user:1")


def test_cannot_ask_for_more_than_is_left(app, make, live_server, stand_in):
    order, line, _sku = paid_order(make, stand_in, quantity=3)
    request_refund(order, line, 2, "买多了", "user:1")
    db.session.commit()
    with pytest.raises(OrderError) as err:
        request_refund(order, line, 2, "再退", "user:1")
    assert err.value.code == "refund_exceeded"
    assert "最多还可退 1 件" in err.value.message
    db.session.rollback()
    for bad in (0, -1, True, "1"):
        with pytest.raises(OrderError):
            request_refund(order, line, bad, "x", "user:1")
        db.session.rollback()
    with pytest.raises(OrderError):
        request_refund(order, line, 1, "  ", "user:1")


def test_unpaid_orders_cannot_be_refunded(app, make):
    order, _sku = new_order(make)
    with pytest.raises(OrderError) as err:
        request_refund(order, order.lines[0], 1, "x", "user:1")
    assert err.value.code == "not_refundable"


def test_rejected_refund_frees_the_quantity(app, make, live_server, stand_in):
    order, line, _sku = paid_order(make, stand_in, quantity=1)
    refund = request_refund(order, line, 1, "不想要", "user:1")
    reject_refund(refund, "staff:1", "已拆封，不支持退款")
    db.session.commit()
    assert (refund.status, refund.review_note) == ("rejected", "已拆封，不支持退款")
    with pytest.raises(InvalidTransition):
        approve_refund(refund, "staff:1")
    db.session.rollback()
    again = request_refund(order, line, 1, "再申请", "user:1")
    assert again.amount_fen == line.amount_fen


def test_shipped_order_refund_does_not_restock(app, make, live_server, stand_in):
    order, line, sku_id = paid_order(make, stand_in, quantity=2)
    move_order(order, "shipped", "staff:1", "发货", carrier="顺丰", tracking_number="SF1")
    db.session.commit()
    stock = db.session.get(Sku, sku_id).stock
    refund = request_refund(order, line, 2, "坏了", "user:1")
    approve_refund(refund, "staff:1")
    db.session.commit()
    assert refund.restock is False
    wait_until(lambda: _refunded(refund.id))
    assert db.session.get(Sku, sku_id).stock == stock
    assert fresh(Order, order.id).status == "shipped"  # only paid orders close on full refund


def test_duplicate_refund_notices_apply_once(app, make, live_server, stand_in):
    sandbox_settings(stand_in, duplicates=6)
    order, line, sku_id = paid_order(make, stand_in, quantity=2)
    stock = db.session.get(Sku, sku_id).stock
    refund = request_refund(order, line, 1, "重复通知", "user:1")
    approve_refund(refund, "staff:1")
    db.session.commit()
    wait_until(lambda: _refunded(refund.id))
    # WeChat retries later too: a further genuine notice is acknowledged and changes nothing.
    record = pay_state(stand_in).refunds[refund.out_refund_no]
    res = post_notice(
        live_server.url,
        *notice_for(stand_in, record.notice_resource(), "REFUND.SUCCESS"),
        path="/pay/refund-notify",
    )
    assert res.status_code == 204
    assert fresh(OrderLine, line.id).refunded_fen == refund.amount_fen
    assert db.session.get(Sku, sku_id).stock == stock + 1
    assert (
        db.session.scalar(
            select(func.count(PaymentTransaction.id)).where(
                PaymentTransaction.kind == "refund_done"
            )
        )
        == 1
    )


def test_bad_refund_notices_are_refused(app, make, live_server, stand_in):
    sandbox_settings(stand_in, refund_delay=30)  # the stand-in will not notify in time
    order, line, _sku = paid_order(make, stand_in, quantity=2)
    refund = request_refund(order, line, 1, "x", "user:1")
    approve_refund(refund, "staff:1")
    db.session.commit()
    record = pay_state(stand_in).refunds[refund.out_refund_no]
    good = {**record.notice_resource(), "refund_status": "SUCCESS"}
    cases = [
        ({**good, "amount": {**good["amount"], "refund": good["amount"]["refund"] + 1}}, 400),
        ({**good, "mchid": "1900009999"}, 400),
        ({**good, "out_refund_no": "NOPE"}, 404),
        ({**good, "out_trade_no": "20990101000000999999"}, 400),
    ]
    for resource, status in cases:
        res = post_notice(
            live_server.url,
            *notice_for(stand_in, resource, "REFUND.SUCCESS"),
            path="/pay/refund-notify",
        )
        assert res.status_code == status
        assert res.json()["code"] == "FAIL"
    stale = notice_for(stand_in, good, "REFUND.SUCCESS", timestamp=1)
    assert post_notice(live_server.url, *stale, path="/pay/refund-notify").status_code == 401
    assert fresh(Refund, refund.id).status == "approved"
    assert db.session.get(OrderLine, line.id).refunded_fen == 0
    ok = notice_for(stand_in, good, "REFUND.SUCCESS")
    assert post_notice(live_server.url, *ok, path="/pay/refund-notify").status_code == 204
    assert fresh(Refund, refund.id).status == "refunded"


def test_wechat_refusing_the_refund_marks_it_failed(app, make, live_server, stand_in):
    order, line, _sku = paid_order(make, stand_in, quantity=1)
    refund = request_refund(order, line, 1, "x", "user:1")
    db.session.commit()
    # WeChat already refunded the whole order elsewhere (e.g. in the merchant platform).
    from app.payments.client import call_pay, get_pay

    call_pay(
        get_pay().refund,
        out_refund_no="MANUAL1",
        amount={"refund": order.paid_fen, "total": order.paid_fen, "currency": "CNY"},
        out_trade_no=order.number,
    )
    with pytest.raises(PaymentError) as err:
        approve_refund(refund, "staff:1")
    assert "退款" in err.value.message
    db.session.commit()
    refund = fresh(Refund, refund.id)
    assert refund.status == "failed"
    assert refund.review_note == err.value.message


def _concurrently(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # collected and asserted on below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_refund_requests_never_exceed_what_was_paid(app, make, live_server, stand_in):
    order, line, _sku = paid_order(make, stand_in, price_fen=999, quantity=5, stock=20)
    order_id, line_id = order.id, line.id

    def ask(_i: int) -> int:
        with app.app_context():
            o = db.session.get(Order, order_id)
            ln = db.session.get(OrderLine, line_id)
            try:
                refund = request_refund(o, ln, 1, "并发退款", "user:1")
                db.session.commit()
                return refund.id
            except OrderError:
                db.session.rollback()
                return 0
            finally:
                db.session.remove()

    results = _concurrently(12, ask)
    assert not [r for r in results if isinstance(r, Exception)], results
    made = [r for r in results if r]
    assert len(made) == 5
    db.session.rollback()
    refunds = db.session.scalars(select(Refund).where(Refund.order_id == order_id)).all()
    assert sum(r.amount_fen for r in refunds) == 999 * 5

    def approve(i: int) -> str:
        with app.app_context():
            refund = db.session.get(Refund, made[i])
            try:
                approve_refund(refund, "staff:1")
                db.session.commit()
                return refund.status
            finally:
                db.session.remove()

    statuses = _concurrently(5, approve)
    assert statuses == ["approved"] * 5, statuses
    for refund_id in made:
        wait_until(lambda refund_id=refund_id: _refunded(refund_id))
    order = fresh(Order, order_id)
    line = db.session.get(OrderLine, line_id)
    assert line.refunded_fen == line.amount_fen == 4995
    assert order.refunded_fen == 4995 <= order.paid_fen
    assert order.status == "cancelled"
