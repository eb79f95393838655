"""Withdrawals: request rules (minimum, fee, available, daily limit, concurrency), review,
manual payouts and the state machine. WeChat payouts are in test_withdrawals_wechat.py.

Earnings are settled ``level_1`` ledger rows inserted directly for a distributor made with
``create_distributor``; everything else goes through the real services and database.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.core.status import InvalidTransition
from app.core.time import shop_day_bounds
from app.distribution.distributors import (
    DistributionError,
)
from app.distribution.models import Distributor, Withdrawal
from app.distribution.withdrawals import (
    APPROVED,
    PAID,
    REJECTED,
    REQUESTED,
    approve_withdrawal,
    complete_transfer,
    mark_paid_manually,
    preview_fee,
    reject_withdrawal,
    request_withdrawal,
)
from app.extensions import db
from app.ledger.balances import balances
from app.ledger.kinds import SETTLED, WITHDRAWN
from app.ledger.models import LedgerEntry
from tests.support.withdrawals import assert_balances_are_sums, configure, earner, entries, history

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

# --- requests ------------------------------------------------------------------------------


def test_request_holds_the_money_at_once(make):
    configure(withdraw_min_fen=100, withdraw_fee_bp=0, payout_channel="wechat")
    d = earner(make, 10_000, pending_fen=500)
    w = request_withdrawal(d, 3_000)
    db.session.commit()
    assert w.status == REQUESTED
    assert w.channel == "wechat"
    assert w.out_bill_no.isalnum() and len(w.out_bill_no) <= 32
    assert entries(d.id)[-1] == ("withdrawal", -3_000, SETTLED)
    b = balances(d.id)
    assert (b.pending_fen, b.available_fen, b.withdrawn_fen) == (500, 7_000, 0)
    assert history(w) == [REQUESTED]
    assert_balances_are_sums(d.id)


def test_minimum_is_enforced(make):
    configure(withdraw_min_fen=1_000)
    d = earner(make)
    with pytest.raises(DistributionError) as err:
        request_withdrawal(d, 999)
    assert err.value.code == "below_minimum"
    assert "10.00" in err.value.message
    db.session.rollback()
    assert request_withdrawal(d, 1_000).amount_fen == 1_000


@pytest.mark.parametrize("amount", [0, -5, 10.5, True, "100"])
def test_nonsense_amounts_are_refused(make, amount):
    d = earner(make)
    with pytest.raises(DistributionError) as err:
        request_withdrawal(d, amount)
    assert err.value.code == "invalid_amount"


def test_fee_is_shown_before_and_stored(make):
    configure(withdraw_min_fen=100, withdraw_fee_bp=150)  # 1.5 %
    d = earner(make, 10_000)
    preview = preview_fee(999)
    assert (preview.amount_fen, preview.fee_fen, preview.net_fen, preview.fee_bp) == (
        999,
        14,  # floor(999 × 150 / 10000) = floor(14.985)
        985,
        150,
    )
    w = request_withdrawal(d, 999)
    db.session.commit()
    assert (w.fee_fen, w.net_fen) == (14, 985)
    # The whole amount is held; the fee is the merchant's once paid out.
    assert balances(d.id).available_fen == 10_000 - 999


def test_a_fee_that_leaves_too_little_is_refused(make):
    configure(withdraw_min_fen=1, withdraw_fee_bp=9_000, payout_channel="wechat")
    d = earner(make)
    with pytest.raises(DistributionError) as err:
        request_withdrawal(d, 50)  # 45 fee, 5 net: under WeChat's 0.1 yuan
    assert err.value.code == "below_minimum"


def test_more_than_available_is_refused(make):
    configure(withdraw_min_fen=100, withdraw_daily_limit=0)
    d = earner(make, 5_000, pending_fen=9_000)  # pending money is not withdrawable
    with pytest.raises(DistributionError) as err:
        request_withdrawal(d, 5_001)
    assert err.value.code == "insufficient_balance"
    assert "50.00" in err.value.message
    db.session.rollback()
    request_withdrawal(d, 5_000)
    db.session.commit()
    with pytest.raises(DistributionError) as err:
        request_withdrawal(d, 100)  # the first request holds everything
    assert err.value.code == "insufficient_balance"
    db.session.rollback()
    assert balances(d.id).available_fen == 0


def test_daily_limit_counts_the_shanghai_day(make):
    configure(withdraw_min_fen=100, withdraw_daily_limit=2)
    d = earner(make)
    late = datetime(2026, 3, 1, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    request_withdrawal(d, 100, now=late - timedelta(hours=15))  # 08:59 the same day
    request_withdrawal(d, 100, now=late)
    db.session.commit()
    with pytest.raises(DistributionError) as err:
        request_withdrawal(d, 100, now=late + timedelta(seconds=30))
    assert err.value.code == "daily_limit"
    assert err.value.status == 429
    db.session.rollback()
    request_withdrawal(d, 100, now=late + timedelta(minutes=2))  # 00:01, the next day
    db.session.commit()
    assert db.session.scalar(select(func.count(Withdrawal.id))) == 3


def test_shop_day_bounds():
    start, end = shop_day_bounds(datetime(2026, 3, 1, 16, 30, tzinfo=UTC))
    assert start == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def test_disabled_distributor_cannot_withdraw(make):
    d = earner(make)
    d.status = "disabled"
    db.session.commit()
    with pytest.raises(DistributionError) as err:
        request_withdrawal(d, 1_000)
    assert err.value.code == "not_active"


def test_twenty_concurrent_requests_never_overdraw(app, make):
    """20 threads, each its own session and connection, ask for 1,000 of 5,000 at once."""
    configure(withdraw_min_fen=100, withdraw_daily_limit=0, withdraw_fee_bp=100)
    d = earner(make, 5_000)
    distributor_id = d.id
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        with app.app_context():
            distributor = db.session.get(Distributor, distributor_id)
            db.session.rollback()  # the lock must be the transaction's first statement
            barrier.wait()
            try:
                request_withdrawal(distributor, 1_000)
                db.session.commit()
                outcome = "ok"
            except DistributionError as err:
                db.session.rollback()
                outcome = err.code
            finally:
                db.session.remove()
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["insufficient_balance"] * 15 + ["ok"] * 5
    db.session.rollback()
    assert balances(distributor_id).available_fen == 0
    assert db.session.scalar(select(func.count(Withdrawal.id))) == 5
    assert_balances_are_sums(distributor_id)


# --- review --------------------------------------------------------------------------------


def test_reject_gives_the_money_back_with_a_reversal(make):
    configure(withdraw_min_fen=100, payout_channel="manual")
    d = earner(make, 5_000)
    w = request_withdrawal(d, 2_000)
    db.session.commit()
    with pytest.raises(DistributionError) as err:
        reject_withdrawal(w, "staff:1", "  ")
    assert err.value.code == "reason_required"
    reject_withdrawal(w, "staff:1", "账户信息有误")
    db.session.commit()
    assert w.status == REJECTED
    assert w.review_note == "账户信息有误"
    assert entries(d.id)[-2:] == [("withdrawal", -2_000, SETTLED), ("reversal", 2_000, SETTLED)]
    reversal = db.session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "reversal")).one()
    assert (
        reversal.reverses_id
        == db.session.scalars(select(LedgerEntry.id).where(LedgerEntry.kind == "withdrawal")).one()
    )
    assert reversal.withdrawal_id == w.id
    assert balances(d.id).available_fen == 5_000
    assert history(w) == [REQUESTED, REJECTED]
    with pytest.raises(InvalidTransition):
        reject_withdrawal(w, "staff:1", "again")
    with pytest.raises(InvalidTransition):
        approve_withdrawal(w, "staff:1")
    assert_balances_are_sums(d.id)


def test_manual_channel_approve_then_mark_paid(make):
    configure(withdraw_min_fen=100, withdraw_fee_bp=200, payout_channel="manual")
    d = earner(make, 5_000)
    w = request_withdrawal(d, 2_000)
    db.session.commit()
    assert w.channel == "manual"
    approve_withdrawal(w, "staff:7")
    db.session.commit()
    assert w.status == APPROVED
    assert w.reviewed_at is not None
    assert balances(d.id).available_fen == 3_000
    mark_paid_manually(w, "staff:7", "银行卡转账 流水号123")
    db.session.commit()
    assert w.status == PAID
    assert w.paid_at is not None
    assert entries(d.id)[-1] == ("withdrawal", -2_000, WITHDRAWN)
    b = balances(d.id)
    assert (b.available_fen, b.withdrawn_fen) == (3_000, 2_000)
    assert history(w) == [REQUESTED, APPROVED, PAID]
    with pytest.raises(InvalidTransition):
        mark_paid_manually(w, "staff:7")
    with pytest.raises(InvalidTransition):
        reject_withdrawal(w, "staff:7", "late")
    # A transfer result can never touch a manual payout that is already paid.
    assert complete_transfer(w.out_bill_no, "CANCELLED", {"transfer_amount": w.net_fen}) is False
    assert balances(d.id).withdrawn_fen == 2_000
    assert_balances_are_sums(d.id)


def test_bad_transitions_raise(make):
    configure(withdraw_min_fen=100, payout_channel="manual")
    d = earner(make, 5_000)
    w = request_withdrawal(d, 1_000)
    db.session.commit()
    with pytest.raises(InvalidTransition):
        mark_paid_manually(w, "staff:1")  # not approved yet
    db.session.rollback()
    approve_withdrawal(w, "staff:1")
    db.session.commit()
    with pytest.raises(InvalidTransition):
        approve_withdrawal(w, "staff:1")  # manual: approving twice is a mistake
    with pytest.raises(InvalidTransition):
        reject_withdrawal(w, "staff:1", "改主意")
    with pytest.raises(DistributionError) as err:
        complete_transfer("WDNOSUCHBILL0000", "SUCCESS", {})
    assert err.value.status == 404
    db.session.rollback()
    assert history(w) == [REQUESTED, APPROVED]


def test_a_final_state_before_approval_is_not_ready(make):
    configure(withdraw_min_fen=100, payout_channel="wechat")
    d = earner(make)
    w = request_withdrawal(d, 1_000)
    db.session.commit()
    with pytest.raises(DistributionError) as err:
        complete_transfer(w.out_bill_no, "SUCCESS", {"transfer_amount": 1_000})
    assert (err.value.code, err.value.status) == ("not_ready", 409)
    with pytest.raises(DistributionError) as err:
        complete_transfer(w.out_bill_no, "SUCCESS", {"transfer_amount": 999})
    assert err.value.code == "amount_mismatch"


def test_manual_payout_can_be_cancelled_and_the_money_comes_back(make):
    from app.distribution.withdrawals import FAILED, cancel_transfer

    configure(withdraw_min_fen=100, payout_channel="manual")
    d = earner(make, 5_000)
    w = request_withdrawal(d, 1_200)
    db.session.commit()
    with pytest.raises(InvalidTransition):
        cancel_transfer(w, "staff:1", "not approved yet")
    approve_withdrawal(w, "staff:1")
    cancel_transfer(w, "staff:1", "银行卡号有误")
    db.session.commit()
    assert w.status == FAILED
    assert "银行卡号有误" in w.review_note
    assert balances(d.id).available_fen == 5_000
    assert history(w) == [REQUESTED, APPROVED, FAILED]
    with pytest.raises(InvalidTransition):
        cancel_transfer(w, "staff:1", "again")
    assert_balances_are_sums(d.id)
