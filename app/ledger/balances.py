"""Balances derived from the ledger. Nothing stores a balance; every figure is a sum.

Entry states and what they count toward:

| entry | state | counts as |
| --- | --- | --- |
| earning (level_1/2/3, rewards, dividends) | pending | pending |
| earning | settled | available |
| earning fully refunded before settlement, and its reversals | reversed | nothing |
| reversal of a refund before settlement (negative) | pending | pending |
| reversal of a refund after settlement (negative) | settled | available |
| withdrawal (negative), requested or under way | settled | available (so it is held) |
| withdrawal paid out | withdrawn | available, and withdrawn |
| return of a rejected or failed withdrawal (positive reversal) | settled | available |

So ``available = Σ amount where state in (settled, withdrawn)``,
``pending = Σ amount where state = pending`` and
``withdrawn = -Σ amount of withdrawal entries where state = withdrawn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from app.accounts.models import User
from app.accounts.names import display_name
from app.core.time import utcnow
from app.extensions import db
from app.ledger.holds import HELD_NOTE, held_pairs, is_held
from app.ledger.kinds import PENDING, REVERSED, SETTLED, WITHDRAWAL, WITHDRAWN
from app.ledger.models import LedgerEntry
from app.ledger.settlement import not_eligible_reason, settlement_hold_days
from app.orders.models import OPEN_REFUND_STATUSES, Order, OrderLine, Refund


@dataclass(frozen=True)
class Balances:
    """A distributor's money, in fen."""

    pending_fen: int
    available_fen: int
    withdrawn_fen: int


def balances(distributor_id: int) -> Balances:
    """Sum the distributor's ledger into pending, available and withdrawn (one query)."""
    amount = LedgerEntry.amount_fen
    pending, available, withdrawn = db.session.execute(
        select(
            func.coalesce(func.sum(case((LedgerEntry.state == PENDING, amount), else_=0)), 0),
            func.coalesce(
                func.sum(case((LedgerEntry.state.in_((SETTLED, WITHDRAWN)), amount), else_=0)), 0
            ),
            func.coalesce(
                func.sum(
                    case(
                        (
                            (LedgerEntry.kind == WITHDRAWAL) & (LedgerEntry.state == WITHDRAWN),
                            -amount,
                        ),
                        else_=0,
                    )
                ),
                0,
            ),
        ).where(LedgerEntry.distributor_id == distributor_id)
    ).one()
    return Balances(int(pending), int(available), int(withdrawn))


# --- the ledger list of the distributor centre and the admin --------------------------------

PER_PAGE = 20


@dataclass(frozen=True)
class EntryRow:
    """One ledger entry as the centre shows it."""

    entry: LedgerEntry
    order_number: str | None
    buyer_name: str  # masked: 张** / 微信用户0427
    reason_not_available: str  # "" when the money is available (or already paid out)
    product_title: str = ""  # the order line's product (a reversal: its earning's line)
    sku_text: str = ""  # the line's SKU, e.g. "青瓷"


def mask_name(nickname: str | None, user_id: int | None = None) -> str:
    """A buyer's name as a distributor may see it: the first character, then ``**``;
    without a nickname, ``accounts.names.display_name`` (微信用户 + last 4 of the id)."""
    name = (nickname or "").strip()
    return f"{name[0]}**" if name else display_name(None, user_id)


def reason_not_available(
    entry: LedgerEntry,
    order: Order | None,
    now: datetime,
    *,
    refund_open: bool | None = None,
    hold_days: int | None = None,
    held: bool | None = None,
) -> str:
    """Why ``entry`` cannot be withdrawn yet, in Chinese; "" when it counts as available.

    A pending entry held for review (``holds.py``) says ``HELD_NOTE`` (订单待审核，预计 3 个
    工作日内处理) before anything else; ``held`` may be passed in to save a query.

    A pending entry on an order says which part of the settlement rule the order still
    fails (``settlement.not_eligible_reason``: 退款处理中, 待付款确认, 待确认收货,
    售后期至 12月3日, ...) or 结算中 (the rule allows it; the next settlement run makes it
    available); 已失效: 已退款 for a reversed entry. ``refund_open`` and ``hold_days`` may
    be passed in to save queries when listing many entries.
    """
    if entry.state == REVERSED:
        return "已失效: 已退款"
    if entry.state != PENDING:
        return ""
    if order is None:
        return "待结算"
    if held is None:
        held = is_held(order.id, entry.distributor_id)
    if held:
        return HELD_NOTE
    why = not_eligible_reason(order, now, refund_open=refund_open, hold_days=hold_days)
    return why or "结算中"


# The centre's filters of the ledger list, by state (labels: kinds.CENTRE_STATE_LABELS).
# "settled" (可提现) lists earned money that is withdrawable, so the withdrawal entries
# that hold money while a withdrawal is under way, and their returns, are left out of it;
# "withdrawn" (已提现) lists the withdrawals paid out.
LEDGER_FILTERS = (PENDING, SETTLED, WITHDRAWN, REVERSED)


def ledger_filter(status: str | None):
    """SQL condition on ``LedgerEntry`` for a centre filter (``LEDGER_FILTERS``); None for
    全部. An unknown status raises ``ValueError`` (the edges validate it first)."""
    if not status:
        return None
    if status not in LEDGER_FILTERS:
        raise ValueError(f"unknown ledger filter {status!r}")
    if status == SETTLED:
        return (LedgerEntry.state == SETTLED) & LedgerEntry.withdrawal_id.is_(None)
    return LedgerEntry.state == status


def entries_for(
    distributor_id: int,
    page: int = 1,
    per_page: int = PER_PAGE,
    now: datetime | None = None,
    status: str | None = None,
) -> list[EntryRow]:
    """A page of the distributor's ledger, newest first, with order number, masked buyer,
    product and SKU, and why each entry is not available yet (four or five queries per
    page); ``status`` narrows it to one of ``LEDGER_FILTERS``."""
    now = now or utcnow()
    page = max(1, page)
    query = (
        select(LedgerEntry, Order, User.nickname)
        .outerjoin(Order, Order.id == LedgerEntry.order_id)
        .outerjoin(User, User.id == Order.user_id)
        .where(LedgerEntry.distributor_id == distributor_id)
    )
    condition = ledger_filter(status)
    if condition is not None:
        query = query.where(condition)
    rows = db.session.execute(
        query.order_by(LedgerEntry.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return entry_rows(rows, now)


def lines_of(entries) -> dict[int, tuple[str, str]]:
    """{entry id: (product title, SKU text)} of the order lines ``entries`` were earned on;
    a reversal shows the line of the earning it reverses (at most two queries)."""
    reversed_ids = {e.reverses_id for e in entries if e.order_line_id is None and e.reverses_id}
    earning_line = (
        dict(
            db.session.execute(
                select(LedgerEntry.id, LedgerEntry.order_line_id).where(
                    LedgerEntry.id.in_(reversed_ids)
                )
            ).all()
        )
        if reversed_ids
        else {}
    )
    line_of = {
        e.id: e.order_line_id or earning_line.get(e.reverses_id)
        for e in entries
        if e.order_line_id or e.reverses_id in earning_line
    }
    line_ids = {line_id for line_id in line_of.values() if line_id}
    if not line_ids:
        return {}
    texts = {
        line_id: (title, spec)
        for line_id, title, spec in db.session.execute(
            select(OrderLine.id, OrderLine.title, OrderLine.spec_text).where(
                OrderLine.id.in_(line_ids)
            )
        )
    }
    return {entry_id: texts[line_id] for entry_id, line_id in line_of.items() if line_id in texts}


def entry_rows(rows, now: datetime) -> list[EntryRow]:
    """Ledger rows ``(entry, order, buyer nickname)`` as shown to their owner: order number,
    masked buyer, product and SKU, and why the money is not withdrawable yet."""
    order_ids = {order.id for _entry, order, _nick in rows if order is not None}
    open_refunds = (
        set(
            db.session.scalars(
                select(Refund.order_id).where(
                    Refund.order_id.in_(order_ids), Refund.status.in_(OPEN_REFUND_STATUSES)
                )
            )
        )
        if order_ids
        else set()
    )
    lines = lines_of([entry for entry, _order, _nick in rows])
    hold_days = settlement_hold_days()
    held = held_pairs(order_ids)
    return [
        EntryRow(
            entry=entry,
            order_number=order.number if order is not None else None,
            buyer_name=mask_name(nickname, order.user_id) if order is not None else "",
            reason_not_available=reason_not_available(
                entry,
                order,
                now,
                refund_open=order is not None and order.id in open_refunds,
                hold_days=hold_days,
                held=order is not None and (order.id, entry.distributor_id) in held,
            ),
            product_title=lines.get(entry.id, ("", ""))[0],
            sku_text=lines.get(entry.id, ("", ""))[1],
        )
        for entry, order, nickname in rows
    ]
