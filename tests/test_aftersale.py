"""After-sale (售后) over HTTP: applying (amount, reasons, photos), 撤销, the 退货退款 steps,
and the state machine of each kind: every move its map does not allow is refused.

The moves that reach WeChat Pay run against the stand-in with the live server taking its
refund notice; the rest need no WeChat and run on both databases.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.core.models import StatusChange
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders import aftersale
from app.orders.models import Order, PaymentTransaction, Refund
from app.orders.refunds import reject_refund
from app.orders.shipping import ship_order
from app.orders.states import REFUND_TRANSITIONS_BY_KIND, move_refund
from app.payments.refunds import complete_refund
from tests.support.aftersale import (
    apply,
    customer_client,
    paid_order,
    paid_through_stand_in,
    photo,
    staff_client,
)
from tests.support.commissions import chain, configure, customer_of, earned, place
from tests.support.commissions import pay as commission_pay
from tests.support.pay import fresh, wait_until

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

# Every door that moves an after-sale request: (who knocks, path, status it aims at, form).
ACTIONS = {
    "cancel": ("customer", "/aftersale/{id}/cancel", "cancelled", {}),
    "send_return": (
        "customer",
        "/aftersale/{id}/return",
        "returning",
        {"carrier": "SF", "tracking_number": "SF9876543210"},
    ),
    "approve_return": ("staff", "/admin/refunds/{id}/approve-return", "return_approved", {}),
    "receive": ("staff", "/admin/refunds/{id}/receive", "received", {}),
    "approve": ("staff", "/admin/refunds/{id}/approve", "approved", {}),
    "reject": ("staff", "/admin/refunds/{id}/reject", "rejected", {"reason": "凭证不清楚"}),
}


def _moves(refund_id: int) -> int:
    return db.session.scalar(
        select(func.count(StatusChange.id)).where(
            StatusChange.subject == "refund", StatusChange.subject_id == refund_id
        )
    )


def _knock(clients, action: str, refund_id: int):
    who, path, _target, form = ACTIONS[action]
    client, token = clients[who]
    return client.post(path.format(id=refund_id), data={"csrf_token": token, **form})


def _refused_everywhere_but(clients, refund: Refund, skip=()) -> list[str]:
    """Try every door the refund's map does not allow from its status; all must refuse."""
    allowed = REFUND_TRANSITIONS_BY_KIND[refund.kind][refund.status]
    status, moves = refund.status, _moves(refund.id)
    tried = []
    for action, (_who, _path, target, _form) in ACTIONS.items():
        if target in allowed or action in skip:
            continue
        response = _knock(clients, action, refund.id)
        assert response.status_code == 302, (action, response.status_code)
        again = fresh(Refund, refund.id)
        assert (again.status, _moves(refund.id)) == (status, moves), (action, status)
        tried.append(action)
    return tried


@pytest.fixture
def people(app, make, login_as):
    buyer = make.user(nickname="退款买家")
    staff = make.staff("aftersale-clerk")
    return buyer, {
        "customer": customer_client(app, login_as, buyer),
        "staff": staff_client(app, login_as, staff),
    }


def _refund_in(make, buyer, kind: str, state: str) -> Refund:
    """A request of ``kind`` moved (through the services, no WeChat) to ``state``."""
    order = paid_order(make, shipped=True)
    order.user_id = buyer.id
    db.session.commit()
    refund = aftersale.apply(
        order,
        order.lines[0],
        kind=kind,
        quantity=1,
        amount_fen=None,
        reason="商品质量问题",
        description="",
        photos=[],
        actor=f"user:{buyer.id}",
    )
    if state in ("return_approved", "returning"):
        aftersale.approve_return(refund, "staff:1")
    if state == "returning":
        aftersale.send_return(refund, "中通", "ZT1234567890", f"user:{buyer.id}")
    if state == "rejected":
        reject_refund(refund, "staff:1", "不支持")
    if state == "cancelled":
        aftersale.cancel(refund, f"user:{buyer.id}")
    db.session.commit()
    assert refund.status == state
    return refund


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        ("refund_only", "requested"),
        ("refund_only", "rejected"),
        ("refund_only", "cancelled"),
        ("return_refund", "requested"),
        ("return_refund", "return_approved"),
        ("return_refund", "returning"),
        ("return_refund", "rejected"),
        ("return_refund", "cancelled"),
    ],
)
def test_every_move_the_map_does_not_allow_is_refused(app, make, people, kind, state):
    buyer, clients = people
    refund = _refund_in(make, buyer, kind, state)
    tried = _refused_everywhere_but(clients, refund)
    # The map is what refuses: each state refuses at least the doors it has no arrow for.
    assert len(tried) == len(ACTIONS) - len(
        {ACTIONS[a][2] for a in ACTIONS} & REFUND_TRANSITIONS_BY_KIND[kind][state]
    )


def test_the_maps_hold_every_status_and_end_in_final_ones():
    for kind, transitions in REFUND_TRANSITIONS_BY_KIND.items():
        for status, targets in transitions.items():
            assert targets <= set(transitions), (kind, status)
        for final in ("refunded", "rejected", "cancelled"):
            assert transitions[final] == frozenset(), (kind, final)
    assert "returning" not in REFUND_TRANSITIONS_BY_KIND["refund_only"]
    assert "approved" not in REFUND_TRANSITIONS_BY_KIND["return_refund"]["requested"]


def test_apply_shows_the_amount_and_takes_a_lower_one(app, make, people):
    buyer, clients = people
    client, token = clients["customer"]
    order = paid_order(make, price_fen=1000, quantity=2)
    order.user_id = buyer.id
    db.session.commit()
    line_id = order.lines[0].id

    page = client.get(f"/orders/{order.id}/lines/{line_id}/aftersale").get_data(as_text=True)
    assert "¥20.00" in page and 'data-max-fen="1000"' in page
    assert 'value="return_refund"' not in page  # nothing shipped yet: 仅退款 only

    for amount, message in (
        ("0", "至少 ¥0.01"),
        ("20.01", "最多 ¥20.00"),
        ("abc", "格式不正确"),
        ("-1", "格式不正确"),
    ):
        response = apply(client, token, order, amount_yuan=amount)
        assert response.status_code == 422, amount
        assert message in response.get_data(as_text=True), amount
    for fields, message in (
        ({"kind": "return_refund"}, "尚未发货"),
        ({"kind": "exchange"}, "请选择售后类型"),
        ({"reason": "随便"}, "请选择退款原因"),
        ({"quantity": "3"}, "退款数量不正确"),
    ):
        response = apply(client, token, order, **fields)
        assert response.status_code == 422, fields
        assert message in response.get_data(as_text=True), fields
    assert db.session.scalar(select(func.count(Refund.id))) == 0

    response = apply(client, token, order, amount_yuan="0.01", description="杯子有裂纹")
    assert response.status_code == 302
    refund = db.session.scalar(select(Refund))
    assert (refund.kind, refund.amount_fen, refund.quantity, refund.status) == (
        "refund_only",
        1,
        2,
        "requested",
    )
    assert refund.description == "杯子有裂纹"
    listing = client.get("/orders").get_data(as_text=True)
    assert "售后中" in listing
    detail = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "¥0.01" in detail and "撤销申请" in detail


def test_photos_are_checked_re_encoded_and_at_most_three(app, make, people):
    buyer, clients = people
    client, token = clients["customer"]
    order = paid_order(make, shipped=True)
    order.user_id = buyer.id
    db.session.commit()
    upload_dir = Path(app.config["UPLOAD_DIR"])
    before = set(upload_dir.iterdir()) if upload_dir.exists() else set()

    too_many = apply(client, token, order, photos=[photo() for _ in range(4)])
    assert too_many.status_code == 422
    assert "最多上传 3 张图片" in too_many.get_data(as_text=True)
    not_image = apply(client, token, order, photos=[photo(), BytesIO(b"<?php echo 1; ?>")])
    assert not_image.status_code == 422
    assert "不是 JPEG、PNG 或 WebP 图片" in not_image.get_data(as_text=True)
    assert (set(upload_dir.iterdir()) if upload_dir.exists() else set()) == before  # none kept

    response = apply(
        client,
        token,
        order,
        kind="return_refund",
        reason="商品破损",
        photos=[photo("red", fmt="JPEG"), photo("blue")],
    )
    assert response.status_code == 302
    refund = db.session.scalar(select(Refund))
    assert refund.kind == "return_refund" and len(refund.photos) == 2
    api = client.get(f"/api/v1/orders/{order.id}").get_json()
    assert api["lines"][0]["refunds"][0]["kind"] == "return_refund"
    for name in refund.photos:
        assert name.startswith("a") and (upload_dir / name).exists()
        with Image.open(upload_dir / name) as image:
            assert image.size == (120, 120)
        served = client.get(f"/media/{name}")
        assert served.status_code == 200
        served.close()


def test_cancel_frees_the_line_and_others_cannot_see_it(app, make, people, login_as):
    buyer, clients = people
    client, token = clients["customer"]
    order = paid_order(make)
    order.user_id = buyer.id
    db.session.commit()
    response = apply(client, token, order)
    refund = db.session.scalar(select(Refund))
    assert (
        client.post(f"/aftersale/{refund.id}/cancel", data={"csrf_token": token}).status_code == 302
    )
    assert fresh(Refund, refund.id).status == "cancelled"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已撤销" in page and "data-cancel" not in page
    # A withdrawn request holds nothing: the same units can be asked again.
    assert apply(client, token, order).status_code == 302

    stranger, _ = customer_client(app, login_as, make.user(nickname="路人"))
    assert stranger.get(f"/aftersale/{refund.id}").status_code == 404
    assert stranger.get(f"/aftersale/{2**31}").status_code == 404
    assert stranger.get(f"/orders/{order.id}/logistics").status_code == 404


def test_return_and_refund_through_wechat_pay(app, make, people, live_server, sandbox):
    """退货退款 end to end: apply, staff agree, the parcel, staff confirm receipt, WeChat
    Pay pays back (its notice completes the refund), the timeline tells all of it."""
    buyer, clients = people
    client, token = clients["customer"]
    order = paid_through_stand_in(make, sandbox, price_fen=1000, quantity=2)
    order.user_id = buyer.id
    db.session.commit()

    response = apply(
        client, token, order, kind="return_refund", amount_yuan="15.00", reason="商品破损"
    )
    assert response.status_code == 302
    refund = db.session.scalar(select(Refund))
    assert (refund.status, refund.amount_fen) == ("requested", 1500)
    assert _refused_everywhere_but(clients, refund)  # e.g. no parcel before staff agree

    assert _knock(clients, "approve_return", refund.id).status_code == 302
    assert fresh(Refund, refund.id).status == "return_approved"
    assert _knock(clients, "send_return", refund.id).status_code == 302
    refund = fresh(Refund, refund.id)
    assert (refund.status, refund.return_carrier, refund.return_tracking_number) == (
        "returning",
        "顺丰速运",
        "SF9876543210",
    )
    staff_page = clients["staff"][0].get(f"/admin/refunds/{refund.id}").get_data(as_text=True)
    assert "SF9876543210" in staff_page and "确认收货并退款" in staff_page

    assert _knock(clients, "receive", refund.id).status_code == 302
    done = wait_until(lambda: (r := fresh(Refund, refund.id)).status == "refunded" and r)
    order = db.session.get(Order, order.id)
    assert order.refunded_fen == 1500
    assert (
        db.session.scalar(
            select(func.count(PaymentTransaction.id)).where(
                PaymentTransaction.order_id == order.id, PaymentTransaction.kind == "refund_done"
            )
        )
        == 1
    )
    steps = [h.to_status for h in aftersale.timeline(done)]
    assert steps == [
        "requested",
        "return_approved",
        "returning",
        "received",
        "approved",
        "refunded",
    ]
    assert _refused_everywhere_but(clients, done)  # refunded is final

    page = client.get(f"/aftersale/{done.id}").get_data(as_text=True)
    for label in ("待寄回商品", "商品寄回中", "商家已收货", "已退款"):
        assert label in page
    assert "退款成功" in client.get("/orders").get_data(as_text=True)


def test_refund_only_is_approved_from_the_staff_page(app, make, people, live_server, sandbox):
    buyer, clients = people
    client, token = clients["customer"]
    order = paid_through_stand_in(make, sandbox, price_fen=1000, quantity=1)
    order.user_id = buyer.id
    db.session.commit()
    apply(client, token, order, amount_yuan="9.99", quantity="1")
    refund = db.session.scalar(select(Refund))
    staff, staff_token = clients["staff"]
    response = staff.post(
        f"/admin/refunds/{refund.id}/approve", data={"csrf_token": staff_token, "back": "detail"}
    )
    assert response.headers["Location"].endswith(f"/admin/refunds/{refund.id}")
    done = wait_until(lambda: (r := fresh(Refund, refund.id)).status == "refunded" and r)
    assert done.amount_fen == 999
    assert [h.to_status for h in aftersale.timeline(done)] == ["requested", "approved", "refunded"]


def test_a_return_reverses_commissions_like_any_refund(app, make):
    """The after-sale amount (lowered by the customer) goes through the refund pipeline:
    each level keeps floor(earned × what stays paid / what was paid), as for any refund."""
    configure(levels=2)
    seller, parent = chain(make, 2)
    order = commission_pay(place(make, customer_of(make, seller), price_fen=3333, quantity=3))
    assert earned(order.id) == {f"level_1@{seller.id}": 999, f"level_2@{parent.id}": 499}
    ship_order(order, "SF", "SF1234567890", "staff:1")
    db.session.commit()
    refund = aftersale.apply(
        order,
        order.lines[0],
        kind="return_refund",
        quantity=1,
        amount_fen=3000,
        reason="商品破损",
        description="",
        photos=[],
        actor=f"user:{order.user_id}",
    )
    aftersale.approve_return(refund, "staff:1")
    aftersale.send_return(refund, "SF", "SF5555555555", f"user:{order.user_id}")
    aftersale.receive_return(refund, "staff:1")
    move_refund(refund, "approved", "staff:1", "同意退款")  # what approve_refund does first
    db.session.commit()
    assert complete_refund(refund, f"RF{refund.id}", 3000, {})
    db.session.commit()
    reversals = {
        e.distributor_id: e.amount_fen
        for e in db.session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "reversal"))
    }
    assert reversals == {
        seller.id: 999 * 6999 // 9999 - 999,
        parent.id: 499 * 6999 // 9999 - 499,
    }
    assert fresh(Order, order.id).refunded_fen == 3000
