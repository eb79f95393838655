"""WeChat payouts of withdrawals over real HTTP: our client → the stand-in's transfer bills →
its confirm page → a signed, encrypted notice → ``POST /pay/transfer-notify`` → paid or
money back, exactly once. Also forged and stale notices, the sync job and retries.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from app.core.status import InvalidTransition
from app.core.time import utcnow
from app.distribution.distributors import DistributionError
from app.distribution.models import Distributor, Withdrawal
from app.distribution.withdrawals import (
    APPROVED,
    AWAITING_CONFIRM,
    FAILED,
    PAID,
    REQUESTED,
    approve_withdrawal,
    cancel_transfer,
    reject_withdrawal,
    request_withdrawal,
)
from app.extensions import db
from app.ledger.balances import balances
from app.ledger.kinds import SETTLED, WITHDRAWN
from app.ledger.models import LedgerEntry
from app.payments.client import PaymentError, get_pay
from app.payments.transfers import (
    confirm_params,
    create_transfer_bill,
    query_transfer_bill,
    sandbox_confirm_url,
)
from app.wechat.sandbox.pay import rsa_sign
from jobs.withdrawals import schedule_transfer_sync, sync_transfers
from tests.support.pay import (
    deliveries,
    fresh,
    pay_state,
    post_notice,
    sandbox_settings,
    wait_until,
)
from tests.support.withdrawals import assert_balances_are_sums, configure, earner, entries, history

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

NOTIFY = "/pay/transfer-notify"


@pytest.fixture
def stand_in(sandbox):
    """The stand-in, with its notice settings put back after the test."""
    saved = sandbox_settings(sandbox)
    yield sandbox
    sandbox_settings(sandbox, **saved)


def bill_at_stand_in(sandbox, out_bill_no: str) -> dict:
    res = requests.get(f"{sandbox.url}/_sandbox/transfer/bills/{out_bill_no}", timeout=5)
    res.raise_for_status()
    return res.json()


def switch(sandbox, out_bill_no: str, action: str) -> dict:
    res = requests.post(f"{sandbox.url}/_sandbox/transfer/bills/{out_bill_no}/{action}", timeout=5)
    res.raise_for_status()
    return res.json()


def approved(make, amount: int = 2_000, fee_bp: int = 100, settled: int = 10_000) -> Withdrawal:
    """A WeChat withdrawal approved by staff: its bill waits for the payee (committed)."""
    configure(withdraw_min_fen=100, withdraw_fee_bp=fee_bp, payout_channel="wechat")
    d = earner(make, settled)
    w = request_withdrawal(d, amount)
    db.session.commit()
    approve_withdrawal(w, "staff:1")
    db.session.commit()
    return w


def transfer_notice(sandbox, resource: dict, **kwargs):
    from app.wechat.sandbox.transfer import transfer_notice as build

    return build(pay_state(sandbox), resource, **kwargs)


def openid_of(w: Withdrawal) -> str:
    return db.session.get(Distributor, w.distributor_id).user.openid


def later() -> datetime:
    """Past the sync job's wait (WITHDRAWAL_SYNC_MINUTES, 10 by default)."""
    return utcnow() + timedelta(minutes=30)


def reversals(withdrawal_id: int) -> int:
    return db.session.scalar(
        select(func.count(LedgerEntry.id)).where(
            LedgerEntry.withdrawal_id == withdrawal_id, LedgerEntry.kind == "reversal"
        )
    )


def test_approve_confirm_notice_paid(app, make, live_server, stand_in):
    w = approved(make, amount=2_000, fee_bp=100)  # fee 20, net 1,980
    assert w.status == AWAITING_CONFIRM
    assert w.transfer_bill_no and w.package_info
    bill = bill_at_stand_in(stand_in, w.out_bill_no)
    assert bill["state"] == "WAIT_USER_CONFIRM"
    assert bill["transfer_amount"] == 1_980
    assert bill["package_info"] == w.package_info
    assert bill["openid"] == openid_of(w)
    params = confirm_params(w.package_info)
    assert params == {
        "mchId": app.config["WECHAT_PAY_MCHID"],
        "appId": app.config["WECHAT_APPID"],
        "package": w.package_info,
    }

    # The developer opens the confirm sheet and presses 确认收款, over real HTTP.
    back = f"{live_server.url}/distributor/withdrawals"
    url = sandbox_confirm_url(w.package_info, back)
    page = requests.get(url, timeout=5)
    assert page.status_code == 200
    assert "确认收款" in page.text and "¥19.80" in page.text
    res = requests.post(
        f"{stand_in.url}/sandbox/transfer-confirm",
        data={"package": w.package_info, "return_url": back, "action": "confirm"},
        allow_redirects=False,
        timeout=5,
    )
    assert res.status_code == 303
    assert res.headers["Location"] == f"{back}?transfer_result=ok"

    paid = wait_until(lambda: (x := fresh(Withdrawal, w.id)).status == PAID and x)
    assert paid.paid_at is not None
    assert entries(paid.distributor_id)[-1] == ("withdrawal", -2_000, WITHDRAWN)
    b = balances(paid.distributor_id)
    assert (b.pending_fen, b.available_fen, b.withdrawn_fen) == (0, 8_000, 2_000)
    assert history(paid) == [REQUESTED, APPROVED, AWAITING_CONFIRM, PAID]
    sent = [d for d in deliveries(stand_in) if d["url"] == f"{live_server.url}{NOTIFY}"]
    assert any(d["status"] == 204 and d["event_type"] == "MCHTRANSFER.BILL.FINISHED" for d in sent)
    # A page already answered cannot be confirmed twice.
    again = requests.post(
        f"{stand_in.url}/sandbox/transfer-confirm",
        data={"package": w.package_info, "action": "confirm"},
        timeout=5,
    )
    assert again.status_code == 409
    assert_balances_are_sums(paid.distributor_id)


def test_payee_cancels_on_the_sheet_money_back(app, make, live_server, stand_in):
    w = approved(make, amount=3_000)
    res = requests.post(
        f"{stand_in.url}/sandbox/transfer-confirm",
        data={"package": w.package_info, "action": "cancel"},
        timeout=5,
    )
    assert res.status_code == 200 and "已取消收款" in res.text
    failed = wait_until(lambda: (x := fresh(Withdrawal, w.id)).status == FAILED and x)
    assert "取消" in failed.review_note
    assert reversals(w.id) == 1
    assert balances(w.distributor_id).available_fen == 10_000
    assert_balances_are_sums(w.distributor_id)


def test_expiry_with_duplicate_notices_returns_the_money_once(app, make, live_server, stand_in):
    sandbox_settings(stand_in, duplicates=6)
    w = approved(make, amount=4_000)
    bill = switch(stand_in, w.out_bill_no, "expire")  # 24 h passed without confirmation
    assert bill["state"] == "CANCELLED"
    wait_until(lambda: fresh(Withdrawal, w.id).status == FAILED)
    wait_until(lambda: len([d for d in deliveries(stand_in) if d["url"].endswith(NOTIFY)]) >= 6)
    # WeChat's retries and a late query change nothing more.
    headers, body = transfer_notice(stand_in, {**bill, "transfer_amount": 3_960})
    for _ in range(3):
        assert post_notice(live_server.url, headers, body, NOTIFY).status_code == 204
    assert sync_transfers(now=later()) == {}
    db.session.rollback()
    assert reversals(w.id) == 1
    assert entries(w.distributor_id)[-2:] == [
        ("withdrawal", -4_000, SETTLED),
        ("reversal", 4_000, SETTLED),
    ]
    assert balances(w.distributor_id).available_fen == 10_000
    assert history(fresh(Withdrawal, w.id)) == [REQUESTED, APPROVED, AWAITING_CONFIRM, FAILED]
    assert_balances_are_sums(w.distributor_id)


def test_staff_cancel_then_the_notice_arrives(app, make, live_server, stand_in):
    w = approved(make, amount=2_500)
    cancel_transfer(w, "staff:2", "分销员联系不上")
    db.session.commit()
    assert w.status == FAILED
    assert bill_at_stand_in(stand_in, w.out_bill_no)["state"] == "CANCELLED"
    # The stand-in notifies the cancellation too; it must not return the money again.
    wait_until(
        lambda: any(
            d["url"].endswith(NOTIFY) and d["status"] == 204 and d.get("body") == ""
            for d in deliveries(stand_in)
        )
    )
    db.session.rollback()
    assert reversals(w.id) == 1
    assert balances(w.distributor_id).available_fen == 10_000
    with pytest.raises(InvalidTransition):
        cancel_transfer(fresh(Withdrawal, w.id), "staff:2")


def test_a_failed_bill_returns_the_money(app, make, live_server, stand_in):
    w = approved(make)
    switch(stand_in, w.out_bill_no, "fail")
    failed = wait_until(lambda: (x := fresh(Withdrawal, w.id)).status == FAILED and x)
    assert "账户异常" in failed.review_note
    assert reversals(w.id) == 1


def test_reject_requested_wechat_withdrawal(app, make, stand_in):
    configure(withdraw_min_fen=100, payout_channel="wechat")
    d = earner(make, 5_000)
    w = request_withdrawal(d, 5_000)
    db.session.commit()
    reject_withdrawal(w, "staff:1", "请先完善资料")
    db.session.commit()
    assert balances(d.id).available_fen == 5_000


def test_reject_refused_when_a_bill_already_exists(app, make, stand_in):
    """An approval rolled back after WeChat accepted the bill: rejecting would pay twice."""
    configure(withdraw_min_fen=100, withdraw_fee_bp=0, payout_channel="wechat")
    d = earner(make, 5_000)
    w = request_withdrawal(d, 1_000)
    db.session.commit()
    approve_withdrawal(w, "staff:1")
    db.session.rollback()  # the edge failed to commit; WeChat has the bill
    w = fresh(Withdrawal, w.id)
    assert w.status == REQUESTED
    with pytest.raises(DistributionError) as err:
        reject_withdrawal(w, "staff:1", "不通过")
    assert err.value.code == "transfer_exists"
    db.session.rollback()
    # Approving again finds the same bill (same out_bill_no) instead of a second one.
    approve_withdrawal(w, "staff:1")
    db.session.commit()
    assert w.status == AWAITING_CONFIRM
    assert bill_at_stand_in(stand_in, w.out_bill_no)["transfer_bill_no"] == w.transfer_bill_no


def test_create_failure_keeps_approved_and_a_retry_reuses_the_bill_number(app, make, stand_in):
    configure(withdraw_min_fen=100, withdraw_fee_bp=0, payout_channel="wechat")
    d = earner(make, 5_000)
    w = request_withdrawal(d, 1_000)
    db.session.commit()
    pay = get_pay()
    gateway = pay._core._gate_way
    pay._core._gate_way = "http://127.0.0.1:9"  # WeChat unreachable for a moment
    try:
        with pytest.raises(PaymentError):
            approve_withdrawal(w, "staff:1")
    finally:
        pay._core._gate_way = gateway
    db.session.commit()  # keep "approved" and the message, as the edge is told to
    assert w.status == APPROVED
    assert "发起微信转账失败" in w.review_note
    assert query_transfer_bill(w.out_bill_no) is None
    # Too recent for the sync job; later it creates the bill with the same out_bill_no.
    assert sync_transfers() == {}
    assert sync_transfers(now=later()) == {"created": 1}
    w = fresh(Withdrawal, w.id)
    assert w.status == AWAITING_CONFIRM
    assert bill_at_stand_in(stand_in, w.out_bill_no)["out_bill_no"] == w.out_bill_no
    # WeChat dedupes by out_bill_no: the same request gives the same bill.
    again = create_transfer_bill(w.out_bill_no, openid_of(w), w.net_fen)
    assert again["transfer_bill_no"] == w.transfer_bill_no
    assert sync_transfers(now=later()) == {"waiting": 1}


def test_sync_applies_a_confirmation_whose_notice_was_lost(app, make, stand_in):
    """No live server: the notice cannot arrive, so the job's query must settle it."""
    w = approved(make, amount=1_500, fee_bp=0)
    switch(stand_in, w.out_bill_no, "confirm")
    assert sync_transfers(now=later()) == {"success": 1}
    w = fresh(Withdrawal, w.id)
    assert w.status == PAID
    assert balances(w.distributor_id).withdrawn_fen == 1_500
    assert sync_transfers(now=later()) == {}


def test_sync_applies_an_expiry_whose_notice_was_lost(app, make, stand_in):
    w = approved(make, amount=1_500, fee_bp=0)
    switch(stand_in, w.out_bill_no, "expire")
    assert sync_transfers(now=later()) == {"cancelled": 1}
    assert fresh(Withdrawal, w.id).status == FAILED
    assert reversals(w.id) == 1


def test_sync_is_scheduled_once_per_slot(app_ctx):
    first = schedule_transfer_sync()
    assert first and first.startswith("withdrawals-sync-")
    assert schedule_transfer_sync() is None


# --- refusals at the door --------------------------------------------------------------------


def _resource(sandbox, w: Withdrawal, **changes) -> dict:
    resource = {
        "out_bill_no": w.out_bill_no,
        "transfer_bill_no": w.transfer_bill_no,
        "state": "SUCCESS",
        "mch_id": pay_state(sandbox).mchid,
        "transfer_amount": w.net_fen,
        "openid": "o_test",
        "create_time": "2026-03-01T10:00:00+08:00",
        "update_time": "2026-03-01T10:05:00+08:00",
    }
    resource.update(changes)
    return resource


def _forged(sandbox, resource):
    headers, body = transfer_notice(sandbox, resource)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ts, nonce = headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"]
    headers["Wechatpay-Signature"] = rsa_sign(stranger, f"{ts}\n{nonce}\n{body}\n")
    return headers, body


def _stale(sandbox, resource):
    return transfer_notice(sandbox, resource, timestamp=int(time.time()) - 600)


def _tampered(sandbox, resource):
    headers, body = transfer_notice(sandbox, resource)
    return headers, body.replace('"MCHTRANSFER.BILL.FINISHED"', '"MCHTRANSFER.BILL.FINISHED" ')


def _field(**changes):
    def build(sandbox, resource):
        return transfer_notice(sandbox, {**resource, **changes})

    return build


REFUSALS = {
    "forged signature": (_forged, 401),
    "stale timestamp": (_stale, 401),
    "body changed after signing": (_tampered, 401),
    "wrong amount": (_field(transfer_amount=1), 400),
    "amount not a number": (_field(transfer_amount="1980"), 400),
    "unknown bill": (_field(out_bill_no="WD20990101000000FFFFFFFFFF"), 404),
    "wrong mch_id": (_field(mch_id="1900009999"), 400),
    "no state": (_field(state=None), 400),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_transfer_notices_are_refused(app, make, live_server, stand_in, case):
    build, status = REFUSALS[case]
    w = approved(make)
    headers, body = build(stand_in, _resource(stand_in, w))
    res = post_notice(live_server.url, headers, body, NOTIFY)
    assert res.status_code == status
    assert res.json()["code"] == "FAIL"
    w = fresh(Withdrawal, w.id)
    assert w.status == AWAITING_CONFIRM
    assert balances(w.distributor_id).withdrawn_fen == 0
    assert reversals(w.id) == 0


def test_a_genuine_notice_pays_once(app, make, live_server, stand_in):
    w = approved(make)
    headers, body = transfer_notice(stand_in, _resource(stand_in, w))
    for _ in range(3):
        assert post_notice(live_server.url, headers, body, NOTIFY).status_code == 204
    w = fresh(Withdrawal, w.id)
    assert w.status == PAID
    assert history(w).count(PAID) == 1


# --- the stand-in's own checks ---------------------------------------------------------------


def test_stand_in_refuses_bad_transfer_requests(app_ctx, stand_in):
    pay = get_pay()
    base = {
        "out_bill_no": "WDSTANDIN0000001",
        "transfer_scene_id": "1000",
        "openid": "o_someone",
        "transfer_remark": "测试",
        "transfer_scene_report_infos": [
            {"info_type": "活动名称", "info_content": "测试"},
            {"info_type": "奖励说明", "info_content": "测试"},
        ],
        "notify_url": "http://127.0.0.1:9/pay/transfer-notify",
    }
    status, body = pay.mch_transfer_bills(transfer_amount=9, **base)
    assert status == 400 and "0.1" in body
    status, body = pay.mch_transfer_bills(
        transfer_amount=100, **{**base, "transfer_scene_report_infos": []}
    )
    assert status == 400 and "报备" in body
    status, first = pay.mch_transfer_bills(transfer_amount=100, **base)
    assert status == 200
    status, same = pay.mch_transfer_bills(transfer_amount=100, **base)
    assert status == 200 and same == first
    status, body = pay.mch_transfer_bills(transfer_amount=101, **base)
    assert status == 400 and "INVALID_REQUEST" in body
    # Unsigned requests are refused like WeChat does.
    res = requests.post(
        f"{stand_in.url}/v3/fund-app/mch-transfer/transfer-bills", json=base, timeout=5
    )
    assert res.status_code == 401
    status, _ = pay.mch_transfer_bills_query(out_bill_no="WDNOSUCHBILL00001")
    assert status == 404
    status, cancelled = pay.mch_transfer_bills_cancel(out_bill_no=base["out_bill_no"])
    assert status == 200 and '"CANCELLED"' in cancelled


def test_sync_runs_in_a_real_worker(app, make, stand_in, database_url, redis_url, live_port):
    """``flask worker --burst`` runs the transfer sync from Redis against the stand-in."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from sqlalchemy import update

    from jobs.queues import get_queue
    from jobs.withdrawals import run_transfer_sync

    w = approved(make, amount=1_000, fee_bp=0)
    switch(stand_in, w.out_bill_no, "confirm")  # no live server: the notice is lost
    db.session.execute(
        update(Withdrawal)
        .where(Withdrawal.id == w.id)
        .values(reviewed_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    job = get_queue("low").enqueue(run_transfer_sync, job_id="test-transfer-sync")
    env = dict(
        os.environ,
        APP_ENV="test",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        WECHAT_PAY_API_BASE=stand_in.url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{live_port}",
    )
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    job.refresh()
    assert job.get_status() == "finished", job.exc_info
    assert job.return_value() == {"success": 1}
    assert fresh(Withdrawal, w.id).status == PAID
