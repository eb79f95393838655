"""Staff reading distributors' money: the ledger list, its total and export filter, and the
withdrawal queue (reviews and payouts themselves are in app/distribution/withdrawals.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Select, case, func, select

from app.core.time import shop_day_start
from app.distribution.admin_input import SettingsError
from app.distribution.models import Withdrawal
from app.extensions import db
from app.ledger.kinds import LEDGER_KINDS, STATE_LABELS
from app.ledger.models import LedgerEntry


@dataclass(frozen=True)
class LedgerFilter:
    """What the ledger list and export are narrowed to (Beijing calendar days)."""

    distributor_id: int | None = None
    kind: str | None = None
    state: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    order_id: int | None = None


def ledger_query(flt: LedgerFilter) -> Select:
    """Ledger entries matching ``flt``, newest first."""
    query = select(LedgerEntry)
    if flt.distributor_id:
        query = query.where(LedgerEntry.distributor_id == flt.distributor_id)
    if flt.kind:
        if flt.kind not in LEDGER_KINDS:
            raise SettingsError("kind", "invalid_choice", "未知的明细类型")
        query = query.where(LedgerEntry.kind == flt.kind)
    if flt.state:
        if flt.state not in STATE_LABELS:
            raise SettingsError("state", "invalid_choice", "未知的状态")
        query = query.where(LedgerEntry.state == flt.state)
    if flt.created_from:
        query = query.where(LedgerEntry.created_at >= shop_day_start(flt.created_from))
    if flt.created_to:
        end = shop_day_start(flt.created_to + timedelta(days=1))
        query = query.where(LedgerEntry.created_at < end)
    if flt.order_id:
        query = query.where(LedgerEntry.order_id == flt.order_id)
    return query.order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())


def ledger_totals(flt: LedgerFilter) -> int:
    """Σ amount of the filtered entries, in fen."""
    inner = ledger_query(flt).order_by(None).subquery()
    return int(db.session.scalar(select(func.coalesce(func.sum(inner.c.amount_fen), 0))) or 0)


def withdrawal_query(status: str | None = None, distributor_id: int | None = None) -> Select:
    """Withdrawals, those awaiting review first, then newest."""
    query = select(Withdrawal)
    if status:
        query = query.where(Withdrawal.status == status)
    if distributor_id:
        query = query.where(Withdrawal.distributor_id == distributor_id)
    urgency = case((Withdrawal.status == "requested", 0), else_=1)
    return query.order_by(urgency, Withdrawal.created_at.desc(), Withdrawal.id.desc())
