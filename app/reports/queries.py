"""Report queries. Each aggregates in the database (GROUP BY the Beijing period) and
returns at most one row per period or per top item; Python only lays those few rows onto
the full list of periods so empty days show as zeros.

Definitions (money in fen):

- sales: ``paid_fen`` of orders paid in the range, by ``paid_at``; orders: their count;
  average order: sales // orders; refunds: ``amount_fen`` of refunds completed
  (``refunded``) in the range, by ``refunded_at``; net = sales - refunds.
- commission, dividends, rewards: ledger entries by ``created_at``, a reversal counted
  with the kind of the entry it reverses. ``pending`` = state pending; ``settled`` = state
  settled or withdrawn (credited to the distributor: the ledger's "available" side);
  reversed entries count as nothing (see app/distribution/ledger.py). ``withdrawn`` = paid
  out withdrawals.
- distribution share: sales of paid orders with a level-1 attribution (a distributor's
  customer) against those without.
- new customers by source: customers registered in the range, by the source of their first
  binding event (link, qr, staff), else of their binding, else natural.

Speed: days before today whose daily summary is current are read from the summary tables
(app/reports/summary.py states the rule that keeps them exact); the other days of the range
are aggregated live by the same queries the summaries are computed with, and the two parts
are added per period (or UNION ALL-ed and ranked in SQL for the top lists).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, literal, select, union_all
from sqlalchemy.orm import aliased

from app.accounts.models import User
from app.distribution.models import Binding, BindingEvent, Distributor, OrderAttribution
from app.extensions import db
from app.ledger.kinds import LEVEL_KINDS, PENDING, REVERSED, SETTLED, WITHDRAWN
from app.ledger.models import LedgerEntry
from app.orders.models import REFUND_REFUNDED, Order, OrderLine, Refund
from app.reports.models import ReportDailyDistributor, ReportDailyProduct, ReportDailyTotal
from app.reports.periods import Range, beijing_date, day_period, period_start
from app.reports.summary import Split, split

DIVIDEND_KINDS = ("region_dividend", "price_difference")
REWARD_KINDS = ("task_reward", "invite_reward")
CATEGORIES = ("commission", "dividend", "reward")
SOURCES = ("link", "qr", "staff", "natural")
TOP_N = 10


@dataclass(frozen=True)
class Column:
    """One column of a report table: key, Chinese label, and kind (money/count/text/pct)."""

    key: str
    label: str
    kind: str = "money"


@dataclass
class Report:
    """A report: its columns, its rows (dicts by column key), and the totals row."""

    key: str
    title: str
    columns: list[Column]
    rows: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)


def _fill(rng: Range, found: dict[str, dict], keys: list[str]) -> list[dict]:
    """One row per period of ``rng``; periods the database did not return are zeros."""
    return [
        {"period": bucket, **{k: int(found.get(bucket, {}).get(k) or 0) for k in keys}}
        for bucket in rng.buckets()
    ]


def _sum(rows: list[dict], keys: list[str]) -> dict:
    return {k: sum(r[k] for r in rows) for k in keys}


PERIOD = Column("period", "日期", "text")


# --- per-period totals: sales, refunds, distribution share, ledger ---------------------------

Within = Callable[[object], object]  # a UTC timestamp column -> SQL condition

LEDGER_KEYS = [f"{c}_{s}_fen" for c in CATEGORIES for s in ("pending", "settled")]
TOTAL_KEYS = [
    "orders",
    "sales_fen",
    "refunds_fen",
    "dist_orders",
    "dist_fen",
    *LEDGER_KEYS,
    "withdrawn_fen",
]


def _category(kind) -> object:
    return case(
        (kind.in_(LEVEL_KINDS), literal("commission")),
        (kind.in_(DIVIDEND_KINDS), literal("dividend")),
        (kind.in_(REWARD_KINDS), literal("reward")),
        else_=literal("other"),
    )


def _kind_or_reversed_kind():
    """SQL: an entry's kind, or for a reversal the kind of the entry it reverses.

    The lookup is a subquery guarded by the CASE, so it runs (by primary key) for reversal
    rows only; an outer join would hash the whole ledger on every page view.
    """
    original = aliased(LedgerEntry)
    reversed_kind = (
        select(original.kind).where(original.id == LedgerEntry.reverses_id).scalar_subquery()
    )
    return case((LedgerEntry.kind == "reversal", reversed_kind), else_=LedgerEntry.kind)


def live_totals(grain: str, within: Within) -> dict[str, dict[str, int]]:
    """Every total of ``TOTAL_KEYS`` per period, aggregated live from orders, refunds and
    the ledger over the rows ``within`` selects (by paid, refund and entry time)."""
    found: dict[str, dict[str, int]] = {}

    def add(period: str, **values) -> None:
        row = found.setdefault(period, dict.fromkeys(TOTAL_KEYS, 0))
        for key, value in values.items():
            row[key] += int(value or 0)

    # A level-1 attribution by outer join (unique per order and level, so no row is
    # doubled): PostgreSQL turns an EXISTS inside CASE into a hash of the whole
    # attribution table, which cost more than the range itself.
    attributed = OrderAttribution.id.is_not(None)
    bucket = period_start(Order.paid_at, grain)
    for period, orders, amount, dist_fen, dist_orders in db.session.execute(
        select(
            bucket,
            func.count(Order.id),
            func.coalesce(func.sum(Order.paid_fen), 0),
            func.coalesce(func.sum(case((attributed, Order.paid_fen), else_=0)), 0),
            func.coalesce(func.sum(case((attributed, 1), else_=0)), 0),
        )
        .outerjoin(
            OrderAttribution,
            and_(OrderAttribution.order_id == Order.id, OrderAttribution.level == 1),
        )
        .where(Order.paid_at.is_not(None), within(Order.paid_at))
        .group_by(bucket)
    ):
        add(period, orders=orders, sales_fen=amount, dist_fen=dist_fen, dist_orders=dist_orders)

    refund_bucket = period_start(Refund.refunded_at, grain)
    for period, amount in db.session.execute(
        select(refund_bucket, func.coalesce(func.sum(Refund.amount_fen), 0))
        .where(Refund.status == REFUND_REFUNDED, within(Refund.refunded_at))
        .group_by(refund_bucket)
    ):
        add(period, refunds_fen=amount)

    amount = LedgerEntry.amount_fen
    ledger_bucket = period_start(LedgerEntry.created_at, grain)
    category = _category(_kind_or_reversed_kind())
    paid_out = and_(LedgerEntry.kind == "withdrawal", LedgerEntry.state == WITHDRAWN)
    for period, cat, pending, settled, withdrawn in db.session.execute(
        select(
            ledger_bucket,
            category,
            func.coalesce(func.sum(case((LedgerEntry.state == PENDING, amount), else_=0)), 0),
            func.coalesce(
                func.sum(case((LedgerEntry.state.in_((SETTLED, WITHDRAWN)), amount), else_=0)), 0
            ),
            func.coalesce(func.sum(case((paid_out, -amount), else_=0)), 0),
        )
        .where(within(LedgerEntry.created_at))
        .group_by(ledger_bucket, category)
    ):
        add(period, withdrawn_fen=withdrawn)
        if cat in CATEGORIES:
            add(period, **{f"{cat}_pending_fen": pending, f"{cat}_settled_fen": settled})
    return found


def summary_totals(grain: str, part: Split) -> dict[str, dict[str, int]]:
    """The same totals per period, summed from the daily summaries of the clean days."""
    if not part.summary:
        return {}
    bucket = day_period(ReportDailyTotal.day, grain)
    columns = [func.sum(getattr(ReportDailyTotal, key)) for key in TOTAL_KEYS]
    result = db.session.execute(
        select(bucket, *columns).where(part.summary_within(ReportDailyTotal.day)).group_by(bucket)
    )
    return {
        row[0]: {k: int(v or 0) for k, v in zip(TOTAL_KEYS, row[1:], strict=True)} for row in result
    }


def period_totals(rng: Range, part: Split | None = None) -> dict[str, dict[str, int]]:
    """Totals per period of ``rng``: clean days from the summaries plus live days."""
    part = part or split(rng)
    found = summary_totals(rng.grain, part)
    if part.live:
        for period, values in live_totals(rng.grain, part.live_within).items():
            row = found.setdefault(period, dict.fromkeys(TOTAL_KEYS, 0))
            for key, value in values.items():
                row[key] += value
    return found


# --- sales --------------------------------------------------------------------------------


def sales(rng: Range, totals: dict | None = None) -> Report:
    """Sales, paid orders, average order, refunds and net sales per period."""
    found = period_totals(rng) if totals is None else totals
    rows = _fill(rng, found, ["orders", "sales_fen", "refunds_fen"])
    for r in rows:
        r["avg_fen"] = r["sales_fen"] // r["orders"] if r["orders"] else 0
        r["net_fen"] = r["sales_fen"] - r["refunds_fen"]
    totals_row = _sum(rows, ["orders", "sales_fen", "refunds_fen", "net_fen"])
    totals_row["avg_fen"] = (
        totals_row["sales_fen"] // totals_row["orders"] if totals_row["orders"] else 0
    )
    return Report(
        "sales",
        "销售额与订单",
        [
            PERIOD,
            Column("sales_fen", "销售额（实付）"),
            Column("orders", "支付订单数", "count"),
            Column("avg_fen", "客单价"),
            Column("refunds_fen", "退款"),
            Column("net_fen", "净销售额"),
        ],
        rows,
        totals_row,
    )


# --- commission and dividends -----------------------------------------------------------------


def commission(rng: Range, totals: dict | None = None) -> Report:
    """Commission, dividends and rewards (pending / settled) and payouts per period."""
    found = period_totals(rng) if totals is None else totals
    keys = [*LEDGER_KEYS, "withdrawn_fen"]
    rows = _fill(rng, found, keys)
    return Report(
        "commission",
        "佣金与分红",
        [
            PERIOD,
            Column("commission_settled_fen", "佣金·已结算"),
            Column("commission_pending_fen", "佣金·待结算"),
            Column("dividend_settled_fen", "分红·已结算"),
            Column("dividend_pending_fen", "分红·待结算"),
            Column("reward_settled_fen", "奖励·已结算"),
            Column("reward_pending_fen", "奖励·待结算"),
            Column("withdrawn_fen", "已提现"),
        ],
        rows,
        _sum(rows, keys),
    )


# --- distribution share -----------------------------------------------------------------------


def distribution_share(rng: Range, totals: dict | None = None) -> Report:
    """Sales and orders with a distributor (level-1 attribution) against without."""
    found = period_totals(rng) if totals is None else totals
    shaped = {
        p: {
            "dist_fen": v["dist_fen"],
            "dist_orders": v["dist_orders"],
            "natural_fen": v["sales_fen"] - v["dist_fen"],
            "natural_orders": v["orders"] - v["dist_orders"],
        }
        for p, v in found.items()
    }
    keys = ["dist_fen", "dist_orders", "natural_fen", "natural_orders"]
    rows = _fill(rng, shaped, keys)
    totals_row = _sum(rows, keys)
    for r in [*rows, totals_row]:
        whole = r["dist_fen"] + r["natural_fen"]
        r["share_pct"] = round(r["dist_fen"] * 100 / whole, 1) if whole else 0
    return Report(
        "share",
        "分销带来的销售占比",
        [
            PERIOD,
            Column("dist_fen", "分销订单销售额"),
            Column("dist_orders", "分销订单数", "count"),
            Column("natural_fen", "自然订单销售额"),
            Column("natural_orders", "自然订单数", "count"),
            Column("share_pct", "分销占比", "pct"),
        ],
        rows,
        totals_row,
    )


# --- new customers ----------------------------------------------------------------------------


def new_customers(rng: Range) -> Report:
    """Customers registered per period, by how they came: link, QR, staff, natural."""
    first_event = (
        select(BindingEvent.source)
        .where(BindingEvent.user_id == User.id)
        .order_by(BindingEvent.id)
        .limit(1)
        .correlate(User)
        .scalar_subquery()
    )
    bound = select(Binding.source).where(Binding.user_id == User.id).correlate(User)
    source = func.coalesce(first_event, bound.scalar_subquery(), literal("natural"))
    inner = (
        select(period_start(User.created_at, rng.grain).label("period"), source.label("source"))
        .where(rng.within(User.created_at))
        .subquery()
    )
    result = db.session.execute(
        select(inner.c.period, inner.c.source, func.count()).group_by(
            inner.c.period, inner.c.source
        )
    ).all()
    found: dict[str, dict] = {}
    for period, src, count in result:
        key = src if src in SOURCES else "link"  # an unknown source is still a referral
        row = found.setdefault(period, {})
        row[key] = row.get(key, 0) + count
    rows = _fill(rng, found, list(SOURCES))
    for r in rows:
        r["total"] = sum(r[s] for s in SOURCES)
    return Report(
        "customers",
        "新增客户来源",
        [
            PERIOD,
            Column("link", "推广链接", "count"),
            Column("qr", "扫码", "count"),
            Column("staff", "商家绑定", "count"),
            Column("natural", "自然进店", "count"),
            Column("total", "合计", "count"),
        ],
        rows,
        _sum(rows, [*SOURCES, "total"]),
    )


# --- top lists --------------------------------------------------------------------------------


def _day(column):
    """SQL: the Beijing day of a UTC timestamp as a DATE (the summaries' key)."""
    return beijing_date(column).label("day")


def live_products(within: Within, by_day: bool = False):
    """SELECT per product (0 = a deleted product) over the lines of orders paid ``within``:
    title, quantity and amount net of refunds, orders. ``by_day``: per (day, product), the
    rows of the summary table (its refresh INSERTs them from this SELECT)."""
    product = func.coalesce(OrderLine.product_id, 0)
    day = _day(Order.paid_at)
    stmt = (
        select(
            *([day] if by_day else []),
            product.label("product_id"),
            func.max(OrderLine.title).label("title"),
            func.sum(OrderLine.quantity - OrderLine.refunded_quantity).label("quantity"),
            func.count(func.distinct(OrderLine.order_id)).label("orders"),
            func.sum(OrderLine.amount_fen - OrderLine.refunded_fen).label("amount_fen"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.paid_at.is_not(None), within(Order.paid_at))
    )
    return stmt.group_by(*([day] if by_day else []), product)


def _earnings_filter():
    # payouts and their returns are not earnings; reversed entries earned nothing
    return (_kind_or_reversed_kind() != "withdrawal", LedgerEntry.state != REVERSED)


def live_distributors(within: Within, by_day: bool = False, ids: list[int] | None = None):
    """Two SELECTs per distributor: own customers' paid orders ``within`` (sales_fen,
    orders), and earnings (ledger entries ``within``, not payouts, not reversed; only
    ``ids`` if given). ``by_day``: per (day, distributor), for the summary refresh."""
    day = _day(Order.paid_at)
    ledger_day = _day(LedgerEntry.created_at)
    sales_stmt = (
        select(
            *([day] if by_day else []),
            OrderAttribution.distributor_id.label("distributor_id"),
            func.sum(Order.paid_fen).label("sales_fen"),
            func.count(Order.id).label("orders"),
        )
        .join(Order, Order.id == OrderAttribution.order_id)
        .where(OrderAttribution.level == 1, Order.paid_at.is_not(None), within(Order.paid_at))
        .group_by(*([day] if by_day else []), OrderAttribution.distributor_id)
    )
    earned_stmt = select(
        *([ledger_day] if by_day else []),
        LedgerEntry.distributor_id.label("distributor_id"),
        func.sum(LedgerEntry.amount_fen).label("earned_fen"),
    ).where(*_earnings_filter(), within(LedgerEntry.created_at))
    if ids is not None:
        earned_stmt = earned_stmt.where(LedgerEntry.distributor_id.in_(ids))
    earned_stmt = earned_stmt.group_by(
        *([ledger_day] if by_day else []), LedgerEntry.distributor_id
    )
    return sales_stmt, earned_stmt


def top_products(rng: Range, limit: int = TOP_N, part: Split | None = None) -> Report:
    """The best-selling products of the range by net amount (after refunds)."""
    part = part or split(rng)
    parts = []
    if part.live:
        parts.append(live_products(part.live_within))
    if part.summary:
        s = ReportDailyProduct
        parts.append(
            select(
                s.product_id,
                func.max(s.title).label("title"),
                func.sum(s.quantity).label("quantity"),
                func.sum(s.orders).label("orders"),
                func.sum(s.amount_fen).label("amount_fen"),
            )
            .where(part.summary_within(s.day))
            .group_by(s.product_id)
        )
    both = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    net = func.sum(both.c.amount_fen)
    result = db.session.execute(
        select(
            both.c.product_id,
            func.max(both.c.title),
            func.sum(both.c.quantity),
            net,
            func.sum(both.c.orders),
        )
        .group_by(both.c.product_id)
        .order_by(net.desc(), both.c.product_id)
        .limit(limit)
    ).all()
    rows = [
        {
            "rank": i,
            "title": title,
            "quantity": int(qty),
            "amount_fen": int(amount),
            "orders": int(n),
        }
        for i, (_, title, qty, amount, n) in enumerate(result, 1)
    ]
    return Report(
        "products",
        "热销商品",
        [
            Column("rank", "排名", "count"),
            Column("title", "商品", "text"),
            Column("quantity", "销量（件）", "count"),
            Column("orders", "订单数", "count"),
            Column("amount_fen", "销售额（扣退款）"),
        ],
        rows,
        _sum(rows, ["quantity", "orders", "amount_fen"]),
    )


def top_distributors(rng: Range, limit: int = TOP_N, part: Split | None = None) -> Report:
    """Distributors whose own customers bought most in the range, with their earnings."""
    part = part or split(rng)
    s = ReportDailyDistributor
    sales_parts, earned_parts = [], []
    if part.live:
        live_sales, _ = live_distributors(part.live_within)
        sales_parts.append(live_sales)
    if part.summary:
        sales_parts.append(
            select(
                s.distributor_id,
                func.sum(s.sales_fen).label("sales_fen"),
                func.sum(s.orders).label("orders"),
            )
            .where(part.summary_within(s.day))
            .group_by(s.distributor_id)
        )
    both = union_all(*sales_parts).subquery() if len(sales_parts) > 1 else sales_parts[0].subquery()
    sales_fen = func.sum(both.c.sales_fen)
    top = db.session.execute(
        select(both.c.distributor_id, sales_fen, func.sum(both.c.orders))
        .group_by(both.c.distributor_id)
        .having(func.sum(both.c.orders) > 0)  # only distributors with a paid order in range
        .order_by(sales_fen.desc(), both.c.distributor_id)
        .limit(limit)
    ).all()
    ids = [d for d, _, _ in top]
    names = dict(
        db.session.execute(
            select(Distributor.id, User.nickname)
            .join(User, User.id == Distributor.user_id)
            .where(Distributor.id.in_(ids))
        ).all()
    )
    if part.live:
        _, live_earned = live_distributors(part.live_within, ids=ids)
        earned_parts.append(live_earned)
    if part.summary:
        earned_parts.append(
            select(s.distributor_id, func.sum(s.earned_fen).label("earned_fen"))
            .where(part.summary_within(s.day), s.distributor_id.in_(ids))
            .group_by(s.distributor_id)
        )
    earned_all = (
        union_all(*earned_parts).subquery() if len(earned_parts) > 1 else earned_parts[0].subquery()
    )
    earned = dict(
        db.session.execute(
            select(earned_all.c.distributor_id, func.sum(earned_all.c.earned_fen)).group_by(
                earned_all.c.distributor_id
            )
        ).all()
    )
    rows = [
        {
            "rank": i,
            "name": f"{names.get(d) or '分销员'} #{d}",
            "sales_fen": int(sales or 0),
            "orders": int(n),
            "earned_fen": int(earned.get(d) or 0),
        }
        for i, (d, sales, n) in enumerate(top, 1)
    ]
    return Report(
        "distributors",
        "分销员排行",
        [
            Column("rank", "排名", "count"),
            Column("name", "分销员", "text"),
            Column("sales_fen", "带来销售额"),
            Column("orders", "订单数", "count"),
            Column("earned_fen", "期间收益（佣金等）"),
        ],
        rows,
        _sum(rows, ["sales_fen", "orders", "earned_fen"]),
    )


REPORTS = {
    "sales": sales,
    "commission": commission,
    "share": distribution_share,
    "customers": new_customers,
    "products": top_products,
    "distributors": top_distributors,
}


def all_reports(rng: Range, part: Split | None = None) -> list[Report]:
    """Every report for ``rng``, in page order (the range is split and the per-period
    totals read once, for the three reports that share them). ``part`` forces a split
    (tests compare the summary path with an all-live one)."""
    part = part or split(rng)
    totals = period_totals(rng, part)
    return [
        sales(rng, totals),
        commission(rng, totals),
        distribution_share(rng, totals),
        new_customers(rng),
        top_products(rng, part=part),
        top_distributors(rng, part=part),
    ]
