"""Finding orders for the merchant: filters shared by the admin list, its CSV and the Open API.

Dates are the merchant's calendar days in Beijing time, inclusive at both ends, and are
turned into UTC bounds here because every stored time is UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Select, func, or_, select

from app.core.time import shop_day_start
from app.extensions import db
from app.orders.models import OPEN_REFUND_STATUSES, ORDER_STATUSES, REFUND_FAILED, Order, Refund

REFUNDING = "refunding"  # a tab of its own: orders with a refund staff or WeChat must finish
# Refunds still needing someone: awaiting review, awaiting WeChat's money, or failed (retry).
UNFINISHED_REFUND_STATUSES = (*OPEN_REFUND_STATUSES, REFUND_FAILED)
FILTER_STATUSES = (*ORDER_STATUSES, REFUNDING)
MAX_KEYWORD = 50


@dataclass(frozen=True)
class OrderFilter:
    """What the merchant is looking for; every field optional."""

    status: str | None = None  # one of FILTER_STATUSES
    created_from: date | None = None  # Beijing calendar day, inclusive
    created_to: date | None = None  # Beijing calendar day, inclusive
    q: str | None = None  # order number, receiver name or phone (substring)


def parse_day(text: str | None) -> date | None:
    """``2025-01-31`` → date; '' → None; anything else → ValueError with a Chinese message."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError("日期格式应为 2025-01-31") from None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return f"%{escaped}%"


def _open_refund_orders():
    return select(Refund.order_id).where(Refund.status.in_(UNFINISHED_REFUND_STATUSES))


def _where(query: Select, flt: OrderFilter, *, with_status: bool = True) -> Select:
    if with_status and flt.status:
        if flt.status == REFUNDING:
            query = query.where(Order.id.in_(_open_refund_orders()))
        else:
            query = query.where(Order.status == flt.status)
    if flt.created_from:
        query = query.where(Order.created_at >= shop_day_start(flt.created_from))
    if flt.created_to:
        query = query.where(Order.created_at < shop_day_start(flt.created_to + timedelta(days=1)))
    q = (flt.q or "").strip()[:MAX_KEYWORD]
    if q:
        pattern = _like(q)
        query = query.where(
            or_(
                Order.number.ilike(pattern, escape="\\"),
                Order.receiver_name.ilike(pattern, escape="\\"),
                Order.receiver_phone.ilike(pattern, escape="\\"),
            )
        )
    return query


def order_query(flt: OrderFilter) -> Select:
    """Orders matching ``flt``, newest first."""
    return _where(select(Order), flt).order_by(Order.created_at.desc(), Order.id.desc())


def status_counts(flt: OrderFilter) -> dict[str, int]:
    """Orders per status tab for ``flt``'s dates and keyword (its status ignored).

    Keys: each order status, ``refunding`` and ``all``.
    """
    rows = db.session.execute(
        _where(select(Order.status, func.count(Order.id)), flt, with_status=False).group_by(
            Order.status
        )
    ).all()
    counts = dict.fromkeys(ORDER_STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    counts["all"] = sum(counts[s] for s in ORDER_STATUSES)
    counts[REFUNDING] = int(
        db.session.scalar(
            _where(
                select(func.count(Order.id)).where(Order.id.in_(_open_refund_orders())),
                flt,
                with_status=False,
            )
        )
        or 0
    )
    return counts
