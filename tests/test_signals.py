"""The shop announces what happened (app/signals.py) and the WeChat notices listen.

Domain code no longer calls the WeChat package: binding, shipping and withdrawals send a
signal, and the listener connected by the app factory (app/wechat/listeners.py) writes the
outbox row inside the sender's transaction, so the row commits or rolls back with the
change it reports. A receiver of the test's own records each announcement (blinker does
not promise an order among receivers, so rows are looked at after the sender returns, in
its still open transaction).
"""

from __future__ import annotations

import pytest
from rq import Queue
from rq.utils import import_attribute
from sqlalchemy import func, select

from app import create_app, signals
from app.core.redis import redis_for
from app.distribution.binding import bind
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.distribution.withdrawals import (
    approve_withdrawal,
    mark_paid_manually,
    request_withdrawal,
)
from app.earnings import listeners as pipeline_listeners
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.services import mark_paid
from app.orders.shipping import ship_order
from app.wechat import listeners
from app.wechat.models import OutboundMessage
from app.wechat.notify import KINDS, save_setting
from app.wechat.outbox import SEND_JOB
from jobs.notifications import send_outbound_message
from tests.support.pay import new_order


def outbox_rows(kind: str) -> int:
    """Outbox rows of ``kind`` the current session sees (its own transaction included)."""
    return db.session.scalar(
        select(func.count()).select_from(OutboundMessage).where(OutboundMessage.kind == kind)
    )


@pytest.fixture
def heard(app_ctx):
    """Announcements during the test, as (signal name, keyword arguments); every notice
    kind is switched on."""
    for kind in KINDS:
        save_setting(kind, f"TPL_{kind}", True)
    db.session.commit()
    seen: list[tuple[str, dict]] = []

    def record(signal):
        def receiver(sender, **kwargs):
            seen.append((signal.name, kwargs))

        return receiver

    watched = [signals.member_bound, signals.order_shipped, signals.withdrawal_changed]
    receivers = [(signal, record(signal)) for signal in watched]
    for signal, receiver in receivers:
        signal.connect(receiver)
    yield seen
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def seller(make, nickname: str = "分销员"):
    """An active distributor with an openid (committed)."""
    row = create_distributor(make.user(nickname=nickname).id, None)
    db.session.commit()
    return row


@pytest.mark.postgresql  # outbox in the same transaction
def test_a_customer_arriving_by_link_is_announced_and_noted_in_the_same_commit(app, make, heard):
    settings = get_distribution_settings()
    settings.bind_mode = "first_visit"
    db.session.commit()
    distributor = seller(make)
    customer = make.user(nickname="韩梅梅")
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = customer.get_id()
    assert client.get(f"/?ref={distributor.code}").status_code in (200, 302)
    client.get(f"/?ref={distributor.code}")  # bound already: nothing new to announce

    assert heard == [
        (
            "member-bound",
            {"user_id": customer.id, "distributor_id": distributor.id, "source": "link"},
        )
    ]
    db.session.rollback()
    assert outbox_rows("member_bound") == 1  # committed with the binding by the request


@pytest.mark.postgresql  # outbox in the same transaction
def test_a_rolled_back_binding_leaves_no_outbox_row_and_queues_nothing(app, make, heard):
    distributor = seller(make)
    customer = make.user()
    assert bind(customer.id, distributor, "qr") is not None
    assert [name for name, _ in heard] == ["member-bound"]
    assert outbox_rows("member_bound") == 1  # the listener wrote it in this transaction
    db.session.rollback()
    assert outbox_rows("member_bound") == 0
    assert Queue("default", connection=redis_for(app)).count == 0


def test_shipping_and_withdrawals_announce_every_move(app, make, heard):
    buyer = make.user(openid="oBuyer0000000000000000000009")
    order, _ = new_order(make, user=buyer)
    mark_paid(order, transaction_id="4200000000000000000999", amount_fen=order.total_fen)
    db.session.commit()
    ship_order(order, "SF", "SF1234567890", "staff:1")
    assert [(name, kwargs["order"].id) for name, kwargs in heard] == [("order-shipped", order.id)]
    assert outbox_rows("order_shipped") == 1  # before the commit: the sender's transaction
    db.session.commit()

    settings = get_distribution_settings()
    settings.payout_channel, settings.withdraw_min_fen, settings.withdraw_fee_bp = (
        "manual",
        100,
        0,
    )
    distributor = seller(make)
    db.session.add(
        LedgerEntry(
            distributor_id=distributor.id, kind="task_reward", amount_fen=5000, state="settled"
        )
    )
    db.session.commit()
    withdrawal = request_withdrawal(distributor, 3000)
    db.session.commit()
    approve_withdrawal(withdrawal, "staff:1")
    assert outbox_rows("withdrawal_approved") == 1
    db.session.commit()
    mark_paid_manually(withdrawal, "staff:1", "银行转账")
    assert outbox_rows("withdrawal_paid") == 1
    db.session.commit()
    moves = [(kwargs["withdrawal"].id, kwargs["status"]) for _, kwargs in heard[1:]]
    assert moves == [(withdrawal.id, "approved"), (withdrawal.id, "paid")]


def test_the_listeners_are_connected_once_however_many_apps(app):
    create_app("test")
    create_app("test")
    for signal, receiver in (*listeners.RECEIVERS, *pipeline_listeners.RECEIVERS):
        assert list(signal.receivers.values()).count(receiver) == 1, signal.name


def test_the_outbox_names_the_send_job_the_worker_runs():
    assert import_attribute(SEND_JOB) is send_outbound_message
