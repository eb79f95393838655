"""The promotion funnel's figures per day and product: rolled up, and read (推广效果).

For one distributor and one Beijing day (docs/funnel.md has the definitions):

- visits: visitors counted in Redis by ``app.distribution.funnel`` (links and QR scans);
- bindings (新客户): customers who were bound or rebound to the distributor that day
  (``binding_events``), each counted once;
- orders: orders paid that day whose level-1 seller is the distributor through a binding
  (``order_attributions`` level 1, not a self-purchase): the orders their links brought;
- sales_fen: what those orders' goods were paid (line amounts after discounts, without
  shipping), as paid: a later refund does not change the day;
- commission_fen: the distributor's own level-1 commission (``level_1`` ledger entries)
  on those orders, as earned at payment (reversals by refunds are not subtracted).

Per product: the visits of that product's page and the orders, sales and commission of
its order lines; bindings are only counted for the whole day (product 0).

``rollup_day`` writes a day's rows (upsert: running it again is harmless); visits never
go down in the table (the larger of the stored and the Redis count), so a Redis flush
after a rollup loses nothing. A day rolled up after it ended is *closed*: ``funnel_report``
reads closed days from the table alone, and today (or a day not closed yet) live.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta

from sqlalchemy import case, distinct, func, select

from app.catalog.models import Product
from app.core.sql import dialect_insert
from app.core.time import shop_day_start, shop_today, utcnow
from app.distribution import funnel
from app.distribution.funnel_models import WHOLE_DAY, FunnelClosedDay, FunnelDay
from app.distribution.models import BindingEvent, Distributor, OrderAttribution
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.models import Order, OrderLine

ROLLUP_DAYS = 3  # today and the two days before: late commission jobs still land
BATCH = 500
PERIODS = (7, 30)
Key = tuple[int, int]  # (distributor id, product id)


def parse_period(raw: str | None) -> int | None:
    """``"7"`` or ``"30"`` (absent: 7) as days; None for anything else (shown as an error).

    Compared as text: ``str.isdigit`` also accepts "²" and other digits ``int`` refuses.
    """
    text = (raw or "7").strip()
    return int(text) if text in {str(n) for n in PERIODS} else None


@dataclass
class Figures:
    """One funnel's counts and money (fen)."""

    visits: int = 0
    bindings: int = 0
    orders: int = 0
    sales_fen: int = 0
    commission_fen: int = 0

    def add(self, other: Figures) -> None:
        for f in fields(Figures):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        """The five figures by name (also of a day's or a product's row)."""
        return {f.name: getattr(self, f.name) for f in fields(Figures)}


@dataclass
class DayRow(Figures):
    day: date = date.min


@dataclass
class ProductRow(Figures):
    product_id: int = 0
    title: str = ""


@dataclass
class FunnelReport:
    """A funnel over ``days`` days ending today: the day series, products, totals."""

    distributor_id: int | None
    first: date
    last: date
    days: list[DayRow] = field(default_factory=list)
    products: list[ProductRow] = field(default_factory=list)
    totals: Figures = field(default_factory=Figures)


# --- the database's side of one day --------------------------------------------------------


def _bounds(day: date) -> tuple[datetime, datetime]:
    return shop_day_start(day), shop_day_start(day + timedelta(days=1))


def database_figures(day: date, distributor_id: int | None = None) -> dict[Key, Figures]:
    """Bindings, paid orders, sales and commission of ``day`` per (distributor, product).

    Product 0 holds the whole day. Every distributor when ``distributor_id`` is None.
    """
    start, end = _bounds(day)
    out: dict[Key, Figures] = defaultdict(Figures)

    bound = select(BindingEvent.distributor_id, func.count(distinct(BindingEvent.user_id))).where(
        BindingEvent.action.in_(("bind", "rebind")),
        BindingEvent.distributor_id.is_not(None),
        BindingEvent.created_at >= start,
        BindingEvent.created_at < end,
    )
    if distributor_id is not None:
        bound = bound.where(BindingEvent.distributor_id == distributor_id)
    for did, n in db.session.execute(bound.group_by(BindingEvent.distributor_id)):
        out[(did, WHOLE_DAY)].bindings = n

    seller = (
        (OrderAttribution.order_id == Order.id)
        & (OrderAttribution.level == 1)
        & OrderAttribution.self_purchase.is_(False)
    )
    paid = (Order.paid_at >= start) & (Order.paid_at < end)
    if distributor_id is not None:
        seller = seller & (OrderAttribution.distributor_id == distributor_id)

    orders = (
        select(OrderAttribution.distributor_id, func.count(Order.id), func.sum(Order.items_fen))
        .join(Order, seller)
        .where(paid)
        .group_by(OrderAttribution.distributor_id)
    )
    for did, n, sales in db.session.execute(orders):
        whole = out[(did, WHOLE_DAY)]
        whole.orders, whole.sales_fen = n, int(sales or 0)

    lines = (
        select(
            OrderAttribution.distributor_id,
            OrderLine.product_id,
            func.count(distinct(Order.id)),
            func.sum(OrderLine.amount_fen),
        )
        .join(Order, seller)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(paid, OrderLine.product_id.is_not(None))
        .group_by(OrderAttribution.distributor_id, OrderLine.product_id)
    )
    for did, pid, n, sales in db.session.execute(lines):
        row = out[(did, pid)]
        row.orders, row.sales_fen = n, int(sales or 0)

    commission = (
        select(
            LedgerEntry.distributor_id,
            OrderLine.product_id,
            func.sum(LedgerEntry.amount_fen),
        )
        .join(Order, Order.id == LedgerEntry.order_id)
        .join(
            OrderAttribution,
            seller & (OrderAttribution.distributor_id == LedgerEntry.distributor_id),
        )
        .join(OrderLine, OrderLine.id == LedgerEntry.order_line_id)
        .where(paid, LedgerEntry.kind == "level_1")
        .group_by(LedgerEntry.distributor_id, OrderLine.product_id)
    )
    for did, pid, fen in db.session.execute(commission):
        out[(did, WHOLE_DAY)].commission_fen += int(fen or 0)
        if pid is not None:
            out[(did, pid)].commission_fen = int(fen or 0)
    return out


def _codes_to_ids(codes: list[str]) -> dict[str, int]:
    if not codes:
        return {}
    rows = db.session.execute(
        select(Distributor.code, Distributor.id).where(Distributor.code.in_(codes))
    )
    return dict(rows.all())


def live_figures(day: date, distributor: Distributor | None = None) -> dict[Key, Figures]:
    """``database_figures`` with the visits Redis holds for ``day`` (one distributor, or
    every distributor when None)."""
    out = database_figures(day, distributor.id if distributor is not None else None)
    if distributor is not None:
        visits = funnel.day_visits(day, [distributor.code])
        ids = {distributor.code: distributor.id}
    else:
        visits = funnel.day_visits(day)
        ids = _codes_to_ids(list(visits))
    for code, per_product in visits.items():
        did = ids.get(code)
        if did is None:  # a code nobody has (typed by hand, or a distributor's old code)
            continue
        for pid, n in per_product.items():
            out.setdefault((did, pid), Figures()).visits = n
    return out


# --- the rollup ----------------------------------------------------------------------------


def _upsert(day: date, rows: dict[Key, Figures], now: datetime) -> None:
    table = FunnelDay.__table__
    values = [
        {"day": day, "distributor_id": did, "product_id": pid, "updated_at": now, **f.as_dict()}
        for (did, pid), f in sorted(rows.items())
    ]
    for i in range(0, len(values), BATCH):
        statement = dialect_insert(FunnelDay).values(values[i : i + BATCH])
        new = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=["day", "distributor_id", "product_id"],
            set_={
                # A Redis flush (or a visitor moved at sign-in) never lowers a stored count.
                "visits": case((new.visits > table.c.visits, new.visits), else_=table.c.visits),
                "bindings": new.bindings,
                "orders": new.orders,
                "sales_fen": new.sales_fen,
                "commission_fen": new.commission_fen,
                "updated_at": new.updated_at,
            },
        )
        db.session.execute(statement)


def rollup_day(day: date, now: datetime | None = None) -> int:
    """Write ``day``'s funnel rows of every distributor (flushes; the caller commits).

    A day that has ended is marked closed. Returns the number of rows written.
    """
    now = now or utcnow()
    rows = live_figures(day)
    _upsert(day, rows, now)
    if day < shop_today(now):
        statement = dialect_insert(FunnelClosedDay).values(day=day, rolled_at=now)
        db.session.execute(
            statement.on_conflict_do_update(index_elements=["day"], set_={"rolled_at": now})
        )
    db.session.flush()
    return len(rows)


def rollup_days(now: datetime | None = None, days: int = ROLLUP_DAYS) -> list[date]:
    """The days the periodic rollup covers: today and the ``days - 1`` before it."""
    today = shop_today(now)
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


# --- reading -------------------------------------------------------------------------------


def _stored(first: date, last: date, distributor_id: int | None) -> dict[date, dict[int, Figures]]:
    """The table's rows of the range, per day and product (summed over distributors)."""
    sums = [func.sum(getattr(FunnelDay, f.name)).label(f.name) for f in fields(Figures)]
    query = select(FunnelDay.day, FunnelDay.product_id, *sums).where(
        FunnelDay.day.between(first, last)
    )
    if distributor_id is not None:
        query = query.where(FunnelDay.distributor_id == distributor_id)
    out: dict[date, dict[int, Figures]] = defaultdict(dict)
    for row in db.session.execute(query.group_by(FunnelDay.day, FunnelDay.product_id)):
        out[row.day][row.product_id] = Figures(
            **{f.name: int(getattr(row, f.name) or 0) for f in fields(Figures)}
        )
    return out


def _closed(first: date, last: date) -> set[date]:
    return set(
        db.session.scalars(
            select(FunnelClosedDay.day).where(FunnelClosedDay.day.between(first, last))
        )
    )


def _titles(product_ids: list[int]) -> dict[int, str]:
    if not product_ids:
        return {}
    rows = db.session.execute(select(Product.id, Product.title).where(Product.id.in_(product_ids)))
    return dict(rows.all())


def funnel_report(
    distributor: Distributor | None, days: int, now: datetime | None = None
) -> FunnelReport:
    """The last ``days`` days (today included) of one distributor's funnel, or of every
    distributor together (the whole shop) when ``distributor`` is None."""
    if days not in PERIODS:
        raise ValueError(f"funnel period must be one of {PERIODS}")
    last = shop_today(now)
    first = last - timedelta(days=days - 1)
    did = distributor.id if distributor is not None else None
    stored = _stored(first, last, did)
    closed = _closed(first, last)
    report = FunnelReport(did, first, last)
    per_product: dict[int, Figures] = defaultdict(Figures)
    for n in range(days):
        day = first + timedelta(days=n)
        figures = stored.get(day, {})
        if day not in closed:
            merged: dict[int, Figures] = defaultdict(Figures)
            for (_did, pid), f in live_figures(day, distributor).items():
                merged[pid].add(f)
            for pid, f in merged.items():
                f.visits = max(f.visits, figures[pid].visits if pid in figures else 0)
            figures = {**{p: Figures(visits=f.visits) for p, f in figures.items()}, **merged}
        whole = figures.get(WHOLE_DAY, Figures())
        report.days.append(DayRow(day=day, **whole.as_dict()))
        report.totals.add(whole)
        for pid, f in figures.items():
            if pid != WHOLE_DAY:
                per_product[pid].add(f)
    titles = _titles(list(per_product))
    report.products = sorted(
        (
            ProductRow(product_id=pid, title=titles.get(pid, "已删除的商品"), **f.as_dict())
            for pid, f in per_product.items()
        ),
        key=lambda r: (-r.sales_fen, -r.visits, r.product_id),
    )
    return report


def distributor_ranking(
    days: int, now: datetime | None = None, limit: int = 20
) -> list[tuple[int, Figures]]:
    """The whole shop's funnel split by distributor over the last ``days`` days: (id,
    totals), most sales first (then orders, visits), at most ``limit`` of them."""
    if days not in PERIODS:
        raise ValueError(f"funnel period must be one of {PERIODS}")
    last = shop_today(now)
    first = last - timedelta(days=days - 1)
    closed = _closed(first, last)
    sums = [func.sum(getattr(FunnelDay, f.name)).label(f.name) for f in fields(Figures)]
    totals: dict[int, Figures] = defaultdict(Figures)
    stored_open: dict[tuple[date, int], int] = {}
    query = (
        select(FunnelDay.day, FunnelDay.distributor_id, *sums)
        .where(FunnelDay.day.between(first, last), FunnelDay.product_id == WHOLE_DAY)
        .group_by(FunnelDay.day, FunnelDay.distributor_id)
    )
    for row in db.session.execute(query):
        if row.day in closed:
            totals[row.distributor_id].add(
                Figures(**{f.name: int(getattr(row, f.name) or 0) for f in fields(Figures)})
            )
        else:
            stored_open[(row.day, row.distributor_id)] = int(row.visits or 0)
    for n in range(days):
        day = first + timedelta(days=n)
        if day in closed:
            continue
        live = {did: f for (did, pid), f in live_figures(day).items() if pid == WHOLE_DAY}
        for did in {d for (d_day, d) in stored_open if d_day == day} | set(live):
            f = live.get(did, Figures())
            f.visits = max(f.visits, stored_open.get((day, did), 0))
            totals[did].add(f)
    ranked = sorted(
        totals.items(), key=lambda kv: (-kv[1].sales_fen, -kv[1].orders, -kv[1].visits, kv[0])
    )
    return [(did, f) for did, f in ranked if f.visits or f.bindings or f.orders][:limit]
