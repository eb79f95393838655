"""我的客户: the customers bound to a distributor, with what they bought through them.

One row per customer: a name people can tell apart (``accounts.names.display_name``), the
avatar WeChat gave, when the binding began, its state in plain words, and the orders the
customer paid through this distributor with what they spent.

Definitions (the same in the H5 page and the JSON API):

- **customer**: a binding row pointing at the distributor. ``active`` lists those in
  force (no expiry, or the expiry still ahead); ``lapsed`` those whose validity ran out
  and that nobody else has taken over yet (the row still points here).
- **binding state**: ``protected`` (绑定有效，保护期剩 N 天: no other link can take the
  customer over), ``permanent`` (永久绑定: no expiry), ``expiring`` (绑定有效，剩 N 天:
  bound until the validity ends) or ``lapsed`` (已失效). Days are whole days left,
  rounded up, so the last hours still read 剩 1 天.
- **orders / spend**: the customer's orders whose level-1 attribution is this distributor
  (fixed when the order was placed: sold through them), paid, shipped or completed;
  spend is goods only, ``items_fen - refunded_fen``, like every sales figure
  (``team.py``, ``joining.paid_purchases_fen``). Purchases made through someone else,
  before the binding, are not this distributor's to see.
- **last order**: when the latest of those orders was paid.

Efficiency for a distributor with 100k customers: a page is found by an index on
(distributor_id, bound_at) and its figures are one grouped query over the page's
customers only; sorting by spend or recency groups the distributor's own level-1 orders
once in SQL (the attribution index covers it) and reads back one page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, or_, select

from app.accounts.models import User
from app.accounts.names import display_name
from app.core.time import aware, utcnow
from app.distribution.models import Binding, OrderAttribution
from app.distribution.team import SALES_STATUSES
from app.extensions import db
from app.orders.models import Order

SORTS = ("bound", "recent", "spend")
SORT_LABELS = {"bound": "最近绑定", "recent": "最近下单", "spend": "消费最多"}
STATUSES = ("active", "lapsed")
SOURCE_LABELS = {"link": "链接", "qr": "扫码", "staff": "商家分配"}
STATE_LABELS = {
    "protected": "绑定有效，保护期剩 {days} 天",
    "expiring": "绑定有效，剩 {days} 天",
    "permanent": "永久绑定",
    "lapsed": "已失效",
}
DAY = timedelta(days=1)


@dataclass(frozen=True)
class BindingState:
    """A binding's state at one moment: a code for programs, words for people."""

    code: str  # protected / expiring / permanent / lapsed
    label: str
    days_left: int | None  # protection (protected) or validity (expiring) days left


def _days_left(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now) / DAY))


def binding_state(
    expires_at: datetime | None, protected_until: datetime | None, now: datetime
) -> BindingState:
    """Say in plain words where a binding stands at ``now``.

    Protection that outlasts the validity ends with it (the binding lapses first), so the
    protected days counted are those before either end.
    """
    expires = aware(expires_at) if expires_at is not None else None
    protected = aware(protected_until) if protected_until is not None else None
    if expires is not None and expires <= now:
        return BindingState("lapsed", STATE_LABELS["lapsed"], None)
    if protected is not None and protected > now:
        days = _days_left(min(protected, expires) if expires else protected, now)
        return BindingState("protected", STATE_LABELS["protected"].format(days=days), days)
    if expires is None:
        return BindingState("permanent", STATE_LABELS["permanent"], None)
    days = _days_left(expires, now)
    return BindingState("expiring", STATE_LABELS["expiring"].format(days=days), days)


@dataclass(frozen=True)
class CustomerRow:
    """One customer of the distributor, as their list shows it (money in fen)."""

    user_id: int
    name: str  # nickname, else 微信用户 + last 4 digits of the user id
    avatar_url: str  # "" when WeChat gave none
    source: str  # link / qr / staff
    bound_at: datetime
    expires_at: datetime | None  # None: permanent
    protected_until: datetime | None
    state: BindingState
    orders_count: int  # paid orders through this distributor
    spend_fen: int  # goods paid on them, less refunds (no shipping)
    last_order_at: datetime | None  # when the latest of them was paid

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source)


def _status_filter(status: str, now: datetime):
    if status == "lapsed":
        return Binding.expires_at <= now
    return or_(Binding.expires_at.is_(None), Binding.expires_at > now)


def customer_counts(distributor_id: int, now: datetime | None = None) -> dict[str, int]:
    """How many customers are bound now (``active``) and how many have lapsed, in one query."""
    now = now or utcnow()
    live = _status_filter("active", now)
    active, total = db.session.execute(
        select(func.coalesce(func.sum(case((live, 1), else_=0)), 0), func.count())
        .select_from(Binding)
        .where(Binding.distributor_id == distributor_id)
    ).one()
    return {"active": int(active), "lapsed": int(total) - int(active)}


def _sales_through(distributor_id: int):
    """Per buyer: paid orders sold through the distributor, goods spend, last payment."""
    return (
        select(
            Order.user_id.label("user_id"),
            func.count().label("orders_count"),
            func.sum(Order.items_fen - Order.refunded_fen).label("spend_fen"),
            func.max(Order.paid_at).label("last_order_at"),
        )
        .join(
            OrderAttribution,
            (OrderAttribution.order_id == Order.id) & (OrderAttribution.level == 1),
        )
        .where(
            OrderAttribution.distributor_id == distributor_id,
            Order.status.in_(SALES_STATUSES),
        )
        .group_by(Order.user_id)
    )


def customers_page(
    distributor_id: int,
    *,
    sort: str = "bound",
    status: str = "active",
    page: int = 1,
    per_page: int = 20,
    now: datetime | None = None,
) -> list[CustomerRow]:
    """A page of the distributor's customers.

    ``sort``: ``bound`` (newest binding first), ``recent`` (latest paid order first,
    customers who never ordered last) or ``spend`` (most spent first). ``status``:
    ``active`` or ``lapsed``. Ties fall back to the newest binding, so pages are stable.
    """
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}")
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    now = now or utcnow()
    offset = (max(page, 1) - 1) * per_page
    where = (Binding.distributor_id == distributor_id, _status_filter(status, now))
    newest = (Binding.bound_at.desc(), Binding.id.desc())
    if sort == "bound":
        rows = db.session.execute(
            select(Binding, User.nickname, User.avatar_url)
            .join(User, User.id == Binding.user_id)
            .where(*where)
            .order_by(*newest)
            .limit(per_page)
            .offset(offset)
        ).all()
        ids = [b.user_id for b, _n, _a in rows]
        figures = {
            r.user_id: (r.orders_count, r.spend_fen, r.last_order_at)
            for r in db.session.execute(
                _sales_through(distributor_id).where(Order.user_id.in_(ids))
            )
        }
        found = [(b, n, a, *figures.get(b.user_id, (0, 0, None))) for b, n, a in rows]
    else:
        sales = _sales_through(distributor_id).subquery()
        spend = func.coalesce(sales.c.spend_fen, 0)
        order = (
            (spend.desc(), *newest)
            if sort == "spend"
            else (sales.c.last_order_at.desc().nulls_last(), *newest)
        )
        # The order is decided over bindings and sales alone; names and avatars are read
        # for the page only (joining users for every customer first doubles the work).
        ranked = db.session.execute(
            select(
                Binding,
                func.coalesce(sales.c.orders_count, 0),
                spend,
                sales.c.last_order_at,
            )
            .outerjoin(sales, sales.c.user_id == Binding.user_id)
            .where(*where)
            .order_by(*order)
            .limit(per_page)
            .offset(offset)
        ).all()
        people = {
            uid: (nickname, avatar)
            for uid, nickname, avatar in db.session.execute(
                select(User.id, User.nickname, User.avatar_url).where(
                    User.id.in_([b.user_id for b, *_ in ranked])
                )
            )
        }
        found = [(b, *people.get(b.user_id, ("", "")), *figures) for b, *figures in ranked]
    return [
        CustomerRow(
            user_id=b.user_id,
            name=display_name(nickname, b.user_id),
            avatar_url=avatar or "",
            source=b.source,
            bound_at=b.bound_at,
            expires_at=b.expires_at,
            protected_until=b.protected_until,
            state=binding_state(b.expires_at, b.protected_until, now),
            orders_count=int(count or 0),
            spend_fen=int(spent or 0),
            last_order_at=last,
        )
        for b, nickname, avatar, count, spent, last in found
    ]
