"""Withdrawals (提现): request, review, payout by WeChat transfer or by hand, completion.

Services flush, the edge commits. Money follows the table in ``app.ledger.balances``:

- a request writes a negative ``withdrawal`` entry in state ``settled``: the money is held
  (it leaves ``available`` at once);
- paid out: that entry moves to ``withdrawn``;
- rejected, failed, cancelled or expired: the entry stays and a positive ``reversal``
  entry (``reverses_id`` = the withdrawal entry, state ``settled``) gives the money back.

So ``withdrawn_fen`` counts gross amounts (fee included), like the hold did.

The fee is ``floor(amount × withdraw_fee_bp / 10000)`` (``rules.floor_commission``, the
one rounding rule) and is kept by the merchant: the distributor receives ``net_fen``.

State machine (every move is one conditional UPDATE and a ``StatusChange`` row with
subject ``"withdrawal"``; a bad move raises ``InvalidTransition``)::

    requested ──approve──> approved ──(WeChat bill created)──> awaiting_confirm
        │                     │  │                                  │   │
        └──reject──> rejected │  └─mark paid by hand / SUCCESS──>  paid <┘   │
                              └──FAIL / CANCELLED / cancelled───> failed <───┘

``awaiting_confirm`` (WeChat's WAIT_USER_CONFIRM) is spelled short because status columns
are 20 characters. Concurrency: a request first takes a per-distributor lock (a no-op
UPDATE of the distributor row: a row lock on PostgreSQL, the write lock on SQLite), so
requests of one distributor run one after the other and can never overdraw.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from app.core.money import format_yuan
from app.core.status import InvalidTransition, move_status, record_creation
from app.core.time import shop_day_bounds, to_shop_time, utcnow
from app.distribution.distributors import DistributionError, get_distribution_settings
from app.distribution.models import Distributor, Withdrawal
from app.distribution.rules import floor_commission
from app.extensions import db
from app.ledger.balances import balances
from app.ledger.entries import move_entries
from app.ledger.kinds import REVERSAL, SETTLED, WITHDRAWAL, WITHDRAWN
from app.ledger.models import LedgerEntry
from app.payments.client import PaymentError
from app.payments.transfers import cancel_transfer_bill, create_transfer_bill, query_transfer_bill
from app.signals import withdrawal_changed

REQUESTED = "requested"
APPROVED = "approved"
AWAITING_CONFIRM = "awaiting_confirm"
PAID = "paid"
REJECTED = "rejected"
FAILED = "failed"

WITHDRAWAL_TRANSITIONS: dict[str, frozenset[str]] = {
    REQUESTED: frozenset({APPROVED, REJECTED}),
    APPROVED: frozenset({AWAITING_CONFIRM, PAID, FAILED}),
    AWAITING_CONFIRM: frozenset({PAID, FAILED}),
    PAID: frozenset(),
    REJECTED: frozenset(),
    FAILED: frozenset(),
}

WITHDRAWAL_STATUS_LABELS = {
    REQUESTED: "待审核",
    APPROVED: "打款中",
    AWAITING_CONFIRM: "待确认收款",
    PAID: "已到账",
    REJECTED: "已拒绝",
    FAILED: "打款失败，已退回",
}

OPEN_STATUSES = (REQUESTED, APPROVED, AWAITING_CONFIRM)
WECHAT, MANUAL = "wechat", "manual"
MIN_WECHAT_NET_FEN = 10  # WeChat refuses transfers under 0.1 yuan


@dataclass(frozen=True)
class FeePreview:
    """What a withdrawal of ``amount_fen`` costs and what arrives, in fen."""

    amount_fen: int
    fee_fen: int
    net_fen: int
    fee_bp: int


def preview_fee(amount_fen: int) -> FeePreview:
    """The fee and the net amount for ``amount_fen`` under the current settings.

    For the withdraw page, to show before submitting; ``request_withdrawal`` applies
    exactly this. Does not validate the amount.
    """
    fee_bp = get_distribution_settings().withdraw_fee_bp
    fee = floor_commission(max(amount_fen, 0), fee_bp)
    return FeePreview(amount_fen, fee, amount_fen - fee, fee_bp)


def _move_withdrawal(w: Withdrawal, to: str, actor: str, reason: str = "", **values) -> None:
    move_status(Withdrawal, w, WITHDRAWAL_TRANSITIONS, "withdrawal", to, actor, reason, **values)
    # Listeners (the WeChat notice of approved and paid) write in this transaction.
    withdrawal_changed.send(__name__, withdrawal=w, status=to)


def _lock_distributor(distributor_id: int) -> None:
    """Serialise money changes of one distributor until the transaction ends."""
    db.session.execute(
        update(Distributor)
        .where(Distributor.id == distributor_id)
        .values(status=Distributor.status)
        .execution_options(synchronize_session=False)
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_out_bill_no(now: datetime) -> str:
    """A merchant bill number: letters and digits only, 26 characters (WeChat allows 32)."""
    stamp = to_shop_time(now).strftime("%Y%m%d%H%M%S")
    return f"WD{stamp}{secrets.token_hex(5).upper()}"


def withdrawal_entry(w: Withdrawal) -> LedgerEntry:
    """The negative ledger entry that holds a withdrawal's money."""
    return db.session.scalar(
        select(LedgerEntry).where(LedgerEntry.withdrawal_id == w.id, LedgerEntry.kind == WITHDRAWAL)
    )


def request_withdrawal(
    distributor: Distributor, amount_fen: int, now: datetime | None = None
) -> Withdrawal:
    """A distributor asks to withdraw ``amount_fen`` (the gross amount, fee included).

    Refuses (``DistributionError``) a distributor who is not active, an amount below
    ``withdraw_min_fen`` or above what is available, a net amount WeChat cannot transfer
    (under 0.1 yuan), and a request beyond ``withdraw_daily_limit`` requests per
    Asia/Shanghai calendar day (every request of the day counts, whatever became of it;
    0 = no limit). Writes the withdrawal (channel from the settings) with its history row
    and its negative ledger entry; flushes.

    Call it first in the unit of work: its lock must be the transaction's first write
    (on SQLite that is what makes the lock and the balance read one snapshot).
    """
    now = _aware(now or utcnow())
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise DistributionError("invalid_amount", "请输入正确的提现金额")
    _lock_distributor(distributor.id)  # first, so concurrent requests serialise here
    db.session.refresh(distributor)
    if distributor.status != "active":
        raise DistributionError("not_active", "分销员身份未生效或已停用，不能提现", 403)
    settings = get_distribution_settings()
    if amount_fen < settings.withdraw_min_fen:
        raise DistributionError(
            "below_minimum", f"单次提现不能低于 {format_yuan(settings.withdraw_min_fen)}"
        )
    preview = preview_fee(amount_fen)
    channel = settings.payout_channel
    if preview.net_fen < (MIN_WECHAT_NET_FEN if channel == WECHAT else 1):
        raise DistributionError("below_minimum", "扣除手续费后到账金额不足 0.1 元")
    if settings.withdraw_daily_limit > 0:
        start, end = shop_day_bounds(now)
        today = db.session.scalar(
            select(func.count())
            .select_from(Withdrawal)
            .where(
                Withdrawal.distributor_id == distributor.id,
                Withdrawal.created_at >= start,
                Withdrawal.created_at < end,
            )
        )
        if today >= settings.withdraw_daily_limit:
            raise DistributionError(
                "daily_limit", f"每天最多提现 {settings.withdraw_daily_limit} 次，请明天再试", 429
            )
    available = balances(distributor.id).available_fen
    if amount_fen > available:
        raise DistributionError(
            "insufficient_balance", f"可提现余额不足（当前可提现 {format_yuan(max(available, 0))}）"
        )
    withdrawal = Withdrawal(
        distributor_id=distributor.id,
        amount_fen=amount_fen,
        fee_fen=preview.fee_fen,
        status=REQUESTED,
        channel=channel,
        out_bill_no=new_out_bill_no(now),
        created_at=now,
    )
    db.session.add(withdrawal)
    db.session.flush()
    db.session.add(
        LedgerEntry(
            distributor_id=distributor.id,
            kind=WITHDRAWAL,
            amount_fen=-amount_fen,
            state=SETTLED,
            withdrawal_id=withdrawal.id,
            note=f"提现申请 {withdrawal.out_bill_no}",
            created_at=now,
            settled_at=now,
        )
    )
    record_creation(
        "withdrawal", withdrawal.id, REQUESTED, f"user:{distributor.user_id}", "申请提现"
    )
    db.session.flush()
    return withdrawal


def _return_money(w: Withdrawal, why: str) -> None:
    """The positive reversal of a withdrawal's entry (the caller's transition is the guard)."""
    entry = withdrawal_entry(w)
    db.session.add(
        LedgerEntry(
            distributor_id=w.distributor_id,
            kind=REVERSAL,
            amount_fen=-entry.amount_fen,
            state=SETTLED,
            reverses_id=entry.id,
            withdrawal_id=w.id,
            note=why[:200],
            settled_at=utcnow(),
        )
    )
    db.session.flush()


def _mark_withdrawn(w: Withdrawal) -> None:
    move_entries(
        [LedgerEntry.withdrawal_id == w.id, LedgerEntry.kind == WITHDRAWAL],
        SETTLED,
        WITHDRAWN,
        f"提现 {w.out_bill_no} 已到账",
    )


def reject_withdrawal(w: Withdrawal, actor: str, reason: str) -> Withdrawal:
    """Staff refuse a requested withdrawal, saying why; the money goes back to available.

    A reason is required (the distributor sees it). For the WeChat channel WeChat is asked
    first whether a bill exists for this out_bill_no (an approval whose commit was rolled
    back after WeChat accepted it): if one may still be paid, the rejection is refused
    (``transfer_exists``, 409); ``PaymentError`` if WeChat cannot be asked.
    Raises ``InvalidTransition`` unless the withdrawal is requested.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DistributionError("reason_required", "请填写拒绝原因")
    if w.status != REQUESTED:
        raise InvalidTransition("withdrawal", w.status, REJECTED)
    if w.channel == WECHAT:
        bill = query_transfer_bill(w.out_bill_no)
        if bill is not None and bill.get("state") not in ("FAIL", "CANCELLED"):
            raise DistributionError(
                "transfer_exists", "该提现已在微信发起转账，请先撤销转账", status=409
            )
    _move_withdrawal(w, REJECTED, actor, reason, review_note=reason[:200], reviewed_at=utcnow())
    _return_money(w, f"提现被拒绝：{reason}")
    return w


def approve_withdrawal(w: Withdrawal, staff_actor: str) -> Withdrawal:
    """Staff approve a withdrawal and start the payout.

    Channel ``manual``: the withdrawal becomes ``approved``; pay it outside the system,
    then call ``mark_paid_manually``. Channel ``wechat``: it becomes ``approved`` and a
    WeChat transfer bill of ``net_fen`` to the distributor's openid is created with the
    withdrawal's ``out_bill_no``; WAIT_USER_CONFIRM moves it to ``awaiting_confirm`` with
    ``package_info`` stored (the withdraw page calls ``wx.requestMerchantTransfer`` with
    ``app.payments.transfers.confirm_params(w.package_info)``); a final state is applied
    at once.

    Calling it again on an ``approved`` WeChat withdrawal retries the transfer with the
    same out_bill_no. On ``PaymentError`` the withdrawal is left ``approved`` (flushed)
    with WeChat's message in ``review_note``, and the error is raised: commit to keep it
    (``sync_transfers`` retries by itself; staff may approve again or cancel it).
    """
    if w.status == REQUESTED:
        _move_withdrawal(w, APPROVED, staff_actor, "同意提现", reviewed_at=utcnow())
    elif not (w.status == APPROVED and w.channel == WECHAT):
        raise InvalidTransition("withdrawal", w.status, APPROVED)
    if w.channel == WECHAT:
        start_transfer(w)
    return w


def start_transfer(w: Withdrawal) -> Withdrawal:
    """Create (or re-create, same out_bill_no) the WeChat bill of an approved withdrawal.

    See ``approve_withdrawal`` for what happens on success and on ``PaymentError``.
    """
    if w.status != APPROVED or w.channel != WECHAT:
        raise InvalidTransition("withdrawal", w.status, AWAITING_CONFIRM)
    distributor = db.session.get(Distributor, w.distributor_id)
    try:
        answer = create_transfer_bill(w.out_bill_no, distributor.user.openid, w.net_fen)
    except PaymentError as err:
        db.session.execute(
            update(Withdrawal)
            .where(Withdrawal.id == w.id)
            .values(review_note=f"发起微信转账失败：{err.message}"[:200])
            .execution_options(synchronize_session=False)
        )
        db.session.flush()
        db.session.refresh(w)
        raise
    apply_bill(w, answer)
    return w


def apply_bill(w: Withdrawal, bill: dict, actor: str = "wechat") -> bool:
    """Apply what WeChat says about ``w``'s bill (a create answer, a query, a notice).

    WAIT_USER_CONFIRM on an approved withdrawal stores the bill number and package and
    moves it to ``awaiting_confirm``; SUCCESS pays it; FAIL and CANCELLED fail it and give
    the money back. Anything else (in flight) changes nothing. True if something changed.
    """
    state = str(bill.get("state") or "")
    if state in ("SUCCESS", "FAIL", "CANCELLED"):
        return complete_transfer(w.out_bill_no, state, bill)
    if state == "WAIT_USER_CONFIRM" and w.status == APPROVED:
        package = bill.get("package_info")
        if not isinstance(package, str) or not package:
            return False
        _move_withdrawal(
            w,
            AWAITING_CONFIRM,
            actor,
            "等待分销员在微信确认收款",
            transfer_bill_no=str(bill.get("transfer_bill_no") or "")[:64] or None,
            package_info=package[:1024],
        )
        return True
    return False


def complete_transfer(out_bill_no: str, state: str, payload: dict) -> bool:
    """A bill reached a final state (from the transfer notice or a query). Once only.

    SUCCESS: the withdrawal is paid and its entry moves to ``withdrawn``. FAIL or
    CANCELLED (the payee did not confirm within 24 hours, or the bill was cancelled):
    the withdrawal fails and a reversal gives the money back. True only for the call that
    made the change; duplicates (notice retries, a query racing a notice) return False.

    Raises ``DistributionError``: ``unknown_bill`` (404) when no withdrawal has this
    out_bill_no, ``amount_mismatch`` (400) when the payload's ``transfer_amount`` is not
    the withdrawal's net amount, ``not_ready`` (409) for a final state on a withdrawal not
    yet approved here (the approval has not committed yet: let WeChat retry).
    """
    w = db.session.scalar(select(Withdrawal).where(Withdrawal.out_bill_no == out_bill_no))
    if w is None:
        raise DistributionError("unknown_bill", "转账单不存在", status=404)
    amount = payload.get("transfer_amount")
    if amount is not None and amount != w.net_fen:
        raise DistributionError("amount_mismatch", "转账金额与提现不符", status=400)
    if state not in ("SUCCESS", "FAIL", "CANCELLED"):
        return False
    bill_no = str(payload.get("transfer_bill_no") or "")[:64] or w.transfer_bill_no
    if w.status == REQUESTED:
        raise DistributionError("not_ready", "提现尚未审核通过", status=409)
    if w.status not in (APPROVED, AWAITING_CONFIRM):
        wanted = PAID if state == "SUCCESS" else FAILED
        if w.status != wanted:
            # e.g. SUCCESS for a withdrawal we already failed: money may be out twice.
            from flask import current_app

            current_app.logger.error(
                "withdrawal %s is %s but WeChat says %s", w.out_bill_no, w.status, state
            )
        return False
    try:
        if state == "SUCCESS":
            _move_withdrawal(
                w,
                PAID,
                "wechat",
                "微信转账成功",
                paid_at=utcnow(),
                transfer_bill_no=bill_no,
            )
            _mark_withdrawn(w)
        else:
            why = str(payload.get("fail_reason") or "")
            label = "转账已撤销或超时未确认" if state == "CANCELLED" else "微信转账失败"
            note = f"{label}{'：' + why if why else ''}"
            _move_withdrawal(
                w, FAILED, "wechat", note, review_note=note[:200], transfer_bill_no=bill_no
            )
            _return_money(w, f"提现退回：{note}")
    except InvalidTransition:
        db.session.refresh(w)
        return False  # another notice or query got there first
    db.session.flush()
    return True


def cancel_transfer(w: Withdrawal, actor: str, reason: str = "撤销打款") -> Withdrawal:
    """Staff stop an approved payout that has not reached the distributor; money comes back.

    Manual channel: an approved withdrawal fails at once. WeChat channel (approved or
    awaiting_confirm): WeChat is asked first; a bill that does not exist (creation never
    went through) fails the withdrawal here; an existing bill is cancelled at WeChat and
    the answer (or, for CANCELING, the later notice) fails it; a bill the payee already
    confirmed is applied as paid instead. ``PaymentError`` if WeChat cannot be reached
    (nothing changed), ``InvalidTransition`` in any other status.
    """
    if w.channel == MANUAL and w.status == APPROVED:
        note = f"已撤销打款：{reason}"[:200]
        _move_withdrawal(w, FAILED, actor, note, review_note=note)
        _return_money(w, f"提现退回：{note}")
        return w
    if w.channel != WECHAT or w.status not in (APPROVED, AWAITING_CONFIRM):
        raise InvalidTransition("withdrawal", w.status, FAILED)
    bill = query_transfer_bill(w.out_bill_no)
    if bill is None:
        note = f"未发起转账，已撤销：{reason}"[:200]
        _move_withdrawal(w, FAILED, actor, note, review_note=note)
        _return_money(w, f"提现退回：{note}")
        return w
    if bill.get("state") not in ("SUCCESS", "FAIL", "CANCELLED"):
        bill = cancel_transfer_bill(w.out_bill_no)
    apply_bill(w, bill, actor)
    db.session.refresh(w)
    return w


def mark_paid_manually(w: Withdrawal, actor: str, note: str = "") -> Withdrawal:
    """Staff paid an approved manual-channel withdrawal outside the system (bank, cash)."""
    if w.channel != MANUAL:
        raise InvalidTransition("withdrawal", w.status, PAID)
    note = (note or "").strip()[:200] or "人工打款"
    _move_withdrawal(w, PAID, actor, note, paid_at=utcnow(), review_note=note)
    _mark_withdrawn(w)
    db.session.flush()
    return w


def stuck_withdrawal_ids(older_than: datetime) -> list[int]:
    """WeChat withdrawals approved or awaiting confirmation whose last change is older
    than ``older_than`` (for ``sync_transfers``)."""
    return list(
        db.session.scalars(
            select(Withdrawal.id)
            .where(
                Withdrawal.channel == WECHAT,
                Withdrawal.status.in_((APPROVED, AWAITING_CONFIRM)),
                func.coalesce(Withdrawal.reviewed_at, Withdrawal.created_at) < older_than,
            )
            .order_by(Withdrawal.id)
        )
    )


def sync_withdrawal(w: Withdrawal) -> str:
    """Ask WeChat about one stuck withdrawal and apply the answer; return the outcome.

    ``approved`` with no bill at WeChat: the transfer is created again with the same
    out_bill_no. Raises ``PaymentError`` when WeChat cannot be reached.
    """
    bill = query_transfer_bill(w.out_bill_no)
    if bill is None:
        if w.status == APPROVED:
            start_transfer(w)
            return "created"
        return "missing"
    changed = apply_bill(w, bill)
    return str(bill.get("state")).lower() if changed else "waiting"
