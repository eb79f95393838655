"""Template-message notifications reach the stand-in's message log after the real flows
that trigger them, once each, and failures are retried and recorded.

Jobs run in real RQ workers: ``flask --app wsgi worker --burst`` in a subprocess for the
payment flow, and the same ``AppWorker`` in this process (``SimpleWorker``: no fork) for
the rest, which is quicker and lets a test change the app's retry intervals.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from app.core.redis import redis_for
from app.core.time import utcnow
from app.distribution.binding import bind
from app.distribution.models import Distributor
from app.distribution.withdrawals import (
    approve_withdrawal,
    mark_paid_manually,
    request_withdrawal,
)
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from app.orders.states import move_order
from app.wechat.models import OutboundMessage
from app.wechat.notify import (
    KINDS,
    notification_settings,
    parse_openids,
    queue_notification,
    save_setting,
    set_staff_openids,
    staff_openids,
)
from jobs.commissions import compute_order_commissions, run_settlement
from jobs.notifications import send_outbound_message, sweep_outbox
from jobs.payments import on_order_paid
from tests.support.admin import csrf_token, fresh_client, text
from tests.support.commissions import configure, customer_of, distributor
from tests.support.messages import message_log, sent, stand_in_settings, work
from tests.support.pay import fresh, new_order, notice_for, post_notice, transaction_resource

ROOT = Path(__file__).resolve().parent.parent
STAFF_OPENIDS = ["oStaffBoss000000000000000001", "oStaffClerk00000000000000002"]


def subprocess_worker(database_url, redis_url, sandbox) -> None:
    env = dict(
        os.environ,
        APP_ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        WECHAT_SANDBOX_ORIGIN=sandbox.url,
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def log(sandbox):
    """The stand-in's message log, emptied first; its switches reset afterwards."""
    yield from message_log(sandbox)


@pytest.fixture
def enabled(app_ctx):
    """Every kind on with template id TPL_<kind>; two staff openids for paid orders."""
    for kind in KINDS:
        save_setting(kind, f"TPL_{kind}", True)
    set_staff_openids(STAFF_OPENIDS)
    db.session.commit()


@pytest.fixture
def quick_retries(app, monkeypatch):
    """Retries without waiting (RQ re-queues at once for a zero interval)."""
    monkeypatch.setitem(app.config, "WECHAT_NOTIFY_RETRY_INTERVALS", [0, 0])


def outbox(kind: str | None = None) -> list[OutboundMessage]:
    db.session.rollback()
    query = select(OutboundMessage).order_by(OutboundMessage.id)
    if kind:
        query = query.where(OutboundMessage.kind == kind)
    return list(db.session.scalars(query))


def pay_by_notice(sandbox, live_server, order: Order) -> None:
    """WeChat Pay's signed notice marks the order paid (the real door, over HTTP)."""
    headers, body = notice_for(sandbox, transaction_resource(sandbox, order))
    assert post_notice(live_server.url, headers, body).status_code in (200, 204)


# --- settings -----------------------------------------------------------------------------


def test_settings_rows_and_staff_openids(app_ctx):
    rows = notification_settings()
    assert set(rows) == set(KINDS)
    assert not any(row.enabled for row in rows.values())
    with pytest.raises(ValueError, match="开启前请填写模板 ID"):
        save_setting("order_paid", "", True)
    with pytest.raises(ValueError, match="模板 ID"):
        save_setting("order_paid", "bad id!", False)
    assert parse_openids("oA1234567, oB1234567\noA1234567") == ["oA1234567", "oB1234567"]
    with pytest.raises(ValueError, match="openid 格式不正确"):
        parse_openids("<script>")
    with pytest.raises(ValueError, match="最多"):
        parse_openids(" ".join(f"oStaff{n:06d}" for n in range(21)))
    set_staff_openids(["oB1234567", "oA1234567"])
    assert staff_openids() == ["oB1234567", "oA1234567"]
    set_staff_openids([])
    assert staff_openids() == []


# --- every kind after its real flow --------------------------------------------------------


@pytest.mark.postgresql  # once-only outbox
def test_paid_order_notifies_staff_once(
    app, make, live_server, log, enabled, database_url, redis_url
):
    """Signed payment notice → on_order_paid job (a real worker) → one message per staff."""
    order, _ = new_order(make, price_fen=1234)
    pay_by_notice(log, live_server, order)
    subprocess_worker(database_url, redis_url, log)

    messages = sent(log, "order_paid")
    assert sorted(m["touser"] for m in messages) == sorted(STAFF_OPENIDS)
    paid = fresh(Order, order.id)
    assert messages[0]["data"]["character_string1"] == paid.number
    assert messages[0]["data"]["amount2"] == f"¥{paid.total_fen // 100}.{paid.total_fen % 100:02d}"
    assert messages[0]["url"].endswith(f"/admin/orders/{order.id}")
    assert {m.status for m in outbox("order_paid")} == {"sent"}

    # The job again (a retry, a second worker), and the send again: nothing new.
    on_order_paid(order.id)
    for row in outbox("order_paid"):
        assert send_outbound_message(row.id) == "sent"
    work(app)
    assert len(sent(log, "order_paid")) == 2
    assert len(outbox("order_paid")) == 2


def test_shipping_in_the_admin_notifies_the_buyer(app, make, log, enabled):
    buyer = make.user(openid="oBuyer0000000000000000000001")
    order, _ = new_order(make, user=buyer)
    from app.orders.services import mark_paid

    mark_paid(order, transaction_id="4200000000000000000777", amount_fen=order.total_fen)
    db.session.commit()
    make.staff("clerk", role="staff")
    client = fresh_client(app)
    token = csrf_token(client, "/admin/login")
    client.post(
        "/admin/login", data={"username": "clerk", "password": "password123", "csrf_token": token}
    )
    token = csrf_token(client, f"/admin/orders/{order.id}")
    response = client.post(
        f"/admin/orders/{order.id}/ship",
        data={"carrier": "SF", "tracking_number": "SF1234567890", "csrf_token": token},
    )
    assert response.status_code == 302, text(response)
    assert [m.status for m in outbox("order_shipped")] == ["pending"]  # sent by a job
    work(app)
    [message] = sent(log, "order_shipped")
    assert message["touser"] == buyer.openid
    assert message["data"]["thing2"] == "顺丰速运"
    assert message["data"]["character_string3"] == "SF1234567890"
    assert message["url"].endswith(f"/orders/{order.id}")


def test_commissions_earned_and_settled_reach_the_distributors(app, make, log, enabled):
    configure(levels=2, settlement_hold_days=7)
    parent = distributor(make, nickname="上级")
    seller = distributor(make, parent, nickname="分销员")
    buyer = customer_of(make, seller)
    order, _ = new_order(make, price_fen=10000, user=buyer)
    from app.orders.services import mark_paid

    mark_paid(order, transaction_id="4200000000000000000888", amount_fen=order.total_fen)
    db.session.commit()
    compute_order_commissions(order.id)
    compute_order_commissions(order.id)  # a retry or a second worker writes nothing new
    work(app)
    earned = sent(log, "commission_earned")
    by_user = {m["touser"]: m["data"]["amount2"] for m in earned}
    assert by_user == {seller.user.openid: "¥10.00", parent.user.openid: "¥5.00"}
    assert earned[0]["data"]["character_string1"] == order.number

    # Completed long ago: the settlement job settles and tells each of them once.
    order = fresh(Order, order.id)
    move_order(order, "shipped", "test", "发货", shipped_at=utcnow())
    move_order(order, "completed", "test", "完成", completed_at=utcnow() - timedelta(days=8))
    db.session.commit()
    assert run_settlement() == 2
    assert run_settlement() == 0
    work(app)
    settled = sent(log, "commission_settled")
    assert {m["touser"]: m["data"]["amount1"] for m in settled} == by_user
    assert settled[0]["data"]["thing2"] == "1笔佣金已结算，可申请提现"


def test_withdrawal_approved_and_paid(app, make, log, enabled):
    configure(payout_channel="manual", withdraw_min_fen=100, withdraw_fee_bp=0)
    seller = distributor(make)
    db.session.add(
        LedgerEntry(distributor_id=seller.id, kind="task_reward", amount_fen=5000, state="settled")
    )
    db.session.commit()
    withdrawal = request_withdrawal(seller, 3000)
    db.session.commit()
    approve_withdrawal(withdrawal, "staff:1")
    db.session.commit()
    mark_paid_manually(withdrawal, "staff:1", "银行转账")
    db.session.commit()
    work(app)
    approved, paid = sent(log, "withdrawal_approved"), sent(log, "withdrawal_paid")
    assert [(m["touser"], m["data"]["amount1"]) for m in approved] == [
        (seller.user.openid, "¥30.00")
    ]
    assert [m["data"]["thing2"] for m in paid] == ["商家已为您打款"]


def test_a_customer_arriving_by_link_is_announced_to_the_distributor(
    app, make, log, enabled, login_as
):
    configure(bind_mode="first_visit")
    seller = distributor(make)
    customer = make.user(nickname="韩梅梅")
    client = app.test_client()
    login_as(client, customer)
    assert client.get(f"/?ref={seller.code}").status_code in (200, 302)
    client.get(f"/?ref={seller.code}")  # the same link again binds nothing new
    work(app)
    [message] = sent(log, "member_bound")
    assert message["touser"] == seller.user.openid
    assert message["data"]["thing1"] == "韩梅梅"
    assert message["data"]["thing2"] == "通过您的推广链接"


def test_disabled_kinds_send_nothing(app, make, log, enabled):
    save_setting("member_bound", "TPL_member_bound", False)
    db.session.commit()
    configure(bind_mode="first_visit")
    seller = distributor(make)
    bind(make.user().id, seller, "link")
    db.session.commit()
    work(app)
    assert outbox("member_bound") == []
    assert sent(log) == []


@pytest.mark.postgresql  # once-only outbox
def test_a_rolled_back_event_queues_nothing(app, make, log, enabled):
    seller = distributor(make)
    assert queue_notification("member_bound", seller.user.openid, {"thing1": "x"}, "k:1")
    db.session.rollback()
    assert Queue("default", connection=redis_for(app)).count == 0
    assert outbox() == []


# --- failures -----------------------------------------------------------------------------


def test_a_failing_send_is_retried_then_recorded_as_failed(app, make, log, enabled, quick_retries):
    stand_in_settings(log, fail_errcode=-1)  # "system error": worth retrying
    seller = distributor(make)
    message_id = queue_notification(
        "member_bound", seller.user.openid, {"thing1": "李雷"}, "member_bound:test"
    )
    db.session.commit()
    work(app)
    [row] = outbox()
    assert row.id == message_id
    assert (row.status, row.attempts) == ("failed", 3)  # the first try and two retries
    assert row.last_error.startswith("-1 system error")
    assert sent(log) == []

    # WeChat is back: a failed row stays failed (the admin log shows it), nothing resent.
    stand_in_settings(log, fail_errcode=None)
    assert send_outbound_message(message_id) == "failed"
    assert sent(log) == []


def test_a_transient_failure_then_success(app, make, log, enabled, quick_retries):
    stand_in_settings(log, fail_errcode=45009, fail_times=1)
    seller = distributor(make)
    queue_notification("member_bound", seller.user.openid, {"thing1": "李雷"}, "member_bound:t2")
    db.session.commit()
    work(app)
    [row] = outbox()
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert len(sent(log)) == 1


def test_retries_wait_with_backoff_by_default(app, make, log, enabled):
    stand_in_settings(log, fail_errcode=-1)
    seller = distributor(make)
    message_id = queue_notification(
        "member_bound", seller.user.openid, {"thing1": "李雷"}, "member_bound:t3"
    )
    db.session.commit()
    work(app)
    [row] = outbox()
    assert (row.status, row.attempts) == ("pending", 1)
    registry = ScheduledJobRegistry("default", connection=redis_for(app))
    assert f"outbound-{message_id}" in registry.get_job_ids()
    retry_at = registry.get_scheduled_time(f"outbound-{message_id}")
    assert timedelta(seconds=20) < retry_at - utcnow() <= timedelta(seconds=31)


def test_an_unknown_template_fails_at_once(app, make, log, enabled, quick_retries):
    stand_in_settings(log, templates=["TPL_other"])  # the account knows other templates only
    seller = distributor(make)
    queue_notification("member_bound", seller.user.openid, {"thing1": "李雷"}, "member_bound:t4")
    db.session.commit()
    work(app)
    [row] = outbox()
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("40037")


@pytest.mark.postgresql  # once-only outbox
def test_the_sweep_sends_what_lost_its_job(app, make, log, enabled):
    seller = distributor(make)
    message_id = queue_notification(
        "member_bound", seller.user.openid, {"thing1": "李雷"}, "member_bound:t5"
    )
    db.session.commit()
    Queue("default", connection=redis_for(app)).empty()  # as if Redis lost the job
    db.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == message_id)
        .values(created_at=utcnow() - timedelta(minutes=10))
    )
    db.session.commit()
    assert sweep_outbox() == 1
    assert sweep_outbox() == 0  # its job is queued now
    work(app)
    assert [m["touser"] for m in sent(log)] == [seller.user.openid]


def test_values_are_fitted_to_wechats_limits(app_ctx, make, enabled):
    seller = distributor(make)
    message_id = queue_notification(
        "member_bound", seller.user.openid, {"thing1": "很" * 30, "time3": "2026"}, "fit:1"
    )
    db.session.commit()
    payload = json.loads(db.session.get(OutboundMessage, message_id).payload)
    assert payload["data"]["thing1"]["value"] == "很" * 19 + "…"
    assert payload["template_id"] == "TPL_member_bound"
    assert len(payload["client_msg_id"]) == 32


# --- the admin page -------------------------------------------------------------------------


def test_owner_saves_settings_and_sees_the_log(app, make, log):
    make.staff("boss", role="owner")
    client = fresh_client(app)
    token = csrf_token(client, "/admin/login")
    client.post(
        "/admin/login", data={"username": "boss", "password": "password123", "csrf_token": token}
    )
    token = csrf_token(client, "/admin/wechat")
    form = {f"template_id_{kind}": f"TPL_{kind}" for kind in KINDS}
    form.update(enabled_order_shipped="1", staff_openids="oStaff0000001\noStaff0000002")
    response = client.post("/admin/wechat", data={**form, "csrf_token": token})
    assert response.status_code == 302
    db.session.rollback()
    settings = notification_settings()
    assert settings["order_shipped"].enabled and settings["order_shipped"].template_id
    assert not settings["order_paid"].enabled
    assert staff_openids() == ["oStaff0000001", "oStaff0000002"]

    bad = client.post(
        "/admin/wechat",
        data={**form, "enabled_order_paid": "1", "template_id_order_paid": "", "csrf_token": token},
    )
    assert bad.status_code == 422
    assert "开启前请填写模板 ID" in text(bad)

    queue_notification("order_shipped", "oBuyer00000001", {"thing2": "顺丰"}, "admin:1")
    db.session.commit()
    page = client.get("/admin/wechat/messages")
    assert page.status_code == 200
    assert "订单已发货" in text(page) and "待发送" in text(page)
    assert client.get("/admin/wechat/messages?status=failed").status_code == 200


# --- the stand-in's other message APIs ------------------------------------------------------


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "#07c160").save(buffer, "PNG")
    return buffer.getvalue()


def test_media_upload_and_customer_service_messages(app, log):
    """Our real wechatpy client: upload an image, send it and a text; the log shows both."""
    import io

    from wechatpy.exceptions import WeChatClientException

    from app.wechat.clients import get_wechat_client

    with app.app_context():
        client = get_wechat_client()
        uploaded = client.media.upload("image", ("poster.png", io.BytesIO(_png())))
        assert uploaded["type"] == "image" and uploaded["media_id"]
        client.message.send_image("oFan0000000000000000000001", uploaded["media_id"])
        client.message.send_text("oFan0000000000000000000001", "您的推广海报已生成")
        with pytest.raises(WeChatClientException) as bad_media:
            client.message.send_image("oFan0000000000000000000001", "no-such-media")
        with pytest.raises(WeChatClientException) as not_image:
            client.media.upload("image", ("x.txt", io.BytesIO(b"hello")))
    assert bad_media.value.errcode == 40007
    assert not_image.value.errcode == 40005
    rows = requests.get(f"{log.url}/_sandbox/messages", timeout=5).json()["messages"]
    assert [r["kind"] for r in rows] == ["text", "image"]
    assert rows[0]["content"] == "您的推广海报已生成"
    assert rows[1]["media_id"] == uploaded["media_id"]
    page = requests.get(f"{log.url}/sandbox/messages", timeout=5)
    assert page.status_code == 200
    assert "您的推广海报已生成" in page.text
    assert f"/_sandbox/media/{uploaded['media_id']}" in page.text
    image = requests.get(f"{log.url}/_sandbox/media/{uploaded['media_id']}", timeout=5)
    assert image.headers["Content-Type"] == "image/png"


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"template_id": "T", "data": {}}, 40003),
        ({"touser": "oFan0001", "data": {}}, 40037),
        ({"touser": "oFan0001", "template_id": "T", "data": {"a": "plain"}}, 47001),
        ({"touser": "oFan0001", "template_id": "T", "data": {}, "url": "ftp://x"}, 47001),
    ],
)
def test_template_send_checks_like_wechat(app, log, body, errcode):
    with app.app_context():
        from app.wechat.clients import get_wechat_client

        token = get_wechat_client().access_token
    answer = requests.post(
        f"{log.url}/cgi-bin/message/template/send",
        params={"access_token": token},
        json=body,
        timeout=5,
    ).json()
    assert answer["errcode"] == errcode


def test_region_dividends_and_price_differences_are_announced_as_earned(app, make, log, enabled):
    """Retail ¥100 through an L3 merchant (parent L1) shipped to 南山区, precedence "both":
    the L3 earns 佣金 ¥10 + 级差 ¥20, the L1 (also 广东省's agent) 佣金 ¥5 + 区域分红 ¥1 +
    级差 ¥20, the 南山区 agent 区域分红 ¥3; each hears of it once, with the kinds named."""
    from app.cloud import agents as cloud_agents
    from tests.support.cloud import GUANGDONG, NANSHAN, assigned, levels, merchant, precedence

    configure(levels=2)
    levels()
    precedence("both")
    top = merchant(make, 1, nickname="总代老王")
    low = merchant(make, 3, top, nickname="市代小张")
    cloud_agents.assign_region(top.distributor.user_id, "province", GUANGDONG, "staff:1")
    db.session.commit()
    district = assigned(make, "district", NANSHAN, "区代")
    order, _ = new_order(make, price_fen=10000, user=customer_of(make, low.distributor))
    from app.orders.services import mark_paid

    mark_paid(order, transaction_id="4200000000000000000999", amount_fen=order.total_fen)
    db.session.commit()
    compute_order_commissions(order.id)
    compute_order_commissions(order.id)  # a retry records nothing new
    work(app)
    openid = {
        "low": low.distributor.user.openid,
        "top": top.distributor.user.openid,
        "district": db.session.get(Distributor, district.distributor_id).user.openid,
    }
    got = {m["touser"]: m for m in sent(log, "commission_earned")}
    assert len(sent(log, "commission_earned")) == 3
    summary = {
        who: (got[oid]["data"]["amount2"], got[oid]["data"]["thing3"], got[oid]["url"])
        for who, oid in openid.items()
    }
    base = app.config["PUBLIC_BASE_URL"]
    assert summary == {
        "low": ("¥30.00", "佣金、级差收益，待结算", f"{base}/distributor/commissions"),
        "top": ("¥26.00", "佣金、区域分红、级差收益，待结算", f"{base}/distributor/commissions"),
        "district": ("¥3.00", "区域分红，待结算", f"{base}/agent/dividends"),
    }
    assert {got[oid]["data"]["character_string1"] for oid in openid.values()} == {order.number}


@pytest.mark.postgresql  # once-only outbox
def test_earned_amounts_are_net_of_refunds_before_the_job(app, make, log, enabled):
    """A price difference alone links the merchant centre; a line partly refunded before
    the job is announced at what is left (¥20 × 2 units, one refunded → ¥20)."""
    from tests.support.cloud import levels, merchant
    from tests.support.commissions import refund

    configure(levels=2)
    levels()
    low = merchant(make, 3, nickname="市代小张")  # no parent: the L3 alone
    order, _ = new_order(make, price_fen=10000, quantity=2, user=customer_of(make, low.distributor))
    from app.orders.services import mark_paid

    mark_paid(order, transaction_id="4200000000000000000998", amount_fen=order.total_fen)
    db.session.commit()
    refund(order, 1)
    compute_order_commissions(order.id)
    work(app)
    [message] = sent(log, "commission_earned")
    assert message["touser"] == low.distributor.user.openid
    assert message["data"]["amount2"] == "¥20.00"
    assert message["data"]["thing3"] == "级差收益，待结算"
    assert message["url"].endswith("/merchant/earnings")


def test_settled_notices_name_dividends_and_price_differences(app, make, log, enabled):
    """The settlement notice says what settled: the 南山区 agent's 区域分红 links the agent
    centre, the L3's 级差 the merchant centre (precedence "price_difference": no commission),
    the L1 who is also 广东省's agent 收益 with both named; a plain distributor's 佣金 stays
    as before. Amounts are net of a refund after the earning (reversal under its kind)."""
    from app.cloud import agents as cloud_agents
    from tests.support.cloud import GUANGDONG, NANSHAN, assigned, levels, merchant, precedence

    configure(levels=2, settlement_hold_days=7)
    levels()
    precedence("price_difference")
    top = merchant(make, 1, nickname="总代老王")
    low = merchant(make, 3, top, nickname="市代小张")
    cloud_agents.assign_region(top.distributor.user_id, "province", GUANGDONG, "staff:1")
    db.session.commit()
    district = assigned(make, "district", NANSHAN, "区代")
    plain = distributor(make, nickname="普通分销员")
    orders = [
        new_order(make, price_fen=10000, user=customer_of(make, low.distributor))[0],
        new_order(make, price_fen=5000, user=customer_of(make, plain))[0],
    ]
    from app.orders.services import mark_paid

    for n, order in enumerate(orders):
        mark_paid(order, transaction_id=f"420000000000000000177{n}", amount_fen=order.total_fen)
        db.session.commit()
        compute_order_commissions(order.id)
        order = fresh(Order, order.id)
        move_order(order, "shipped", "test", "发货", shipped_at=utcnow())
        move_order(order, "completed", "test", "完成", completed_at=utcnow() - timedelta(days=8))
        db.session.commit()
    # 4 entries on the first order, 3 on the second (its 南山区 address pays both agents)
    assert run_settlement() == 7
    work(app)
    got = {m["touser"]: m for m in sent(log, "commission_settled")}
    openid = {
        "low": low.distributor.user.openid,
        "top": top.distributor.user.openid,
        "district": db.session.get(Distributor, district.distributor_id).user.openid,
        "plain": plain.user.openid,
    }
    base = app.config["PUBLIC_BASE_URL"]
    summary = {
        who: (got[oid]["data"]["amount1"], got[oid]["data"]["thing2"], got[oid]["url"])
        for who, oid in openid.items()
    }
    # retail ¥100: L3 at ¥80 earns ¥20, L1 at ¥60 earns ¥20; 广东 1 %, 南山 3 % of ¥100 + ¥50
    assert summary == {
        "low": ("¥20.00", "1笔级差收益已结算，可申请提现", f"{base}/merchant/earnings"),
        "top": ("¥21.50", "收益已结算：区域分红、级差收益", f"{base}/distributor"),
        "district": ("¥4.50", "2笔区域分红已结算，可申请提现", f"{base}/agent/dividends"),
        "plain": ("¥5.00", "1笔佣金已结算，可申请提现", f"{base}/distributor"),
    }
