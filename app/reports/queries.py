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
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, case, exists, func, literal, select
from sqlalchemy.orm import aliased

from app.accounts.models import User
from app.distribution.models import (
    LEVEL_KINDS,
    PENDING,
    REVERSED,
    SETTLED,
    WITHDRAWN,
    Binding,
    BindingEvent,
    Distributor,
    LedgerEntry,
    OrderAttribution,
)
from app.extensions import db
from app.orders.models import REFUND_REFUNDED, Order, OrderLine, Refund
from app.reports.periods import Range, period_start

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


# --- sales --------------------------------------------------------------------------------


def sales(rng: Range) -> Report:
    """Sales, paid orders, average order, refunds and net sales per period."""
    bucket = period_start(Order.paid_at, rng.grain)
    paid = db.session.execute(
        select(bucket, func.count(Order.id), func.coalesce(func.sum(Order.paid_fen), 0))
        .where(Order.paid_at.is_not(None), rng.within(Order.paid_at))
        .group_by(bucket)
    ).all()
    refund_bucket = period_start(Refund.refunded_at, rng.grain)
    refunded = db.session.execute(
        select(refund_bucket, func.coalesce(func.sum(Refund.amount_fen), 0))
        .where(Refund.status == REFUND_REFUNDED, rng.within(Refund.refunded_at))
        .group_by(refund_bucket)
    ).all()
    found: dict[str, dict] = {}
    for period, orders, amount in paid:
        found.setdefault(period, {}).update(orders=orders, sales_fen=amount)
    for period, amount in refunded:
        found.setdefault(period, {})["refunds_fen"] = amount
    rows = _fill(rng, found, ["orders", "sales_fen", "refunds_fen"])
    for r in rows:
        r["avg_fen"] = r["sales_fen"] // r["orders"] if r["orders"] else 0
        r["net_fen"] = r["sales_fen"] - r["refunds_fen"]
    totals = _sum(rows, ["orders", "sales_fen", "refunds_fen", "net_fen"])
    totals["avg_fen"] = totals["sales_fen"] // totals["orders"] if totals["orders"] else 0
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
        totals,
    )


# --- commission and dividends -----------------------------------------------------------------


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


def commission(rng: Range) -> Report:
    """Commission, dividends and rewards (pending / settled) and payouts per period."""
    kind = _kind_or_reversed_kind()
    amount = LedgerEntry.amount_fen
    bucket = period_start(LedgerEntry.created_at, rng.grain)
    category = _category(kind)
    result = db.session.execute(
        select(
            bucket,
            category,
            func.coalesce(func.sum(case((LedgerEntry.state == PENDING, amount), else_=0)), 0),
            func.coalesce(
                func.sum(case((LedgerEntry.state.in_((SETTLED, WITHDRAWN)), amount), else_=0)), 0
            ),
            func.coalesce(
                func.sum(
                    case(
                        (
                            and_(LedgerEntry.kind == "withdrawal", LedgerEntry.state == WITHDRAWN),
                            -amount,
                        ),
                        else_=0,
                    )
                ),
                0,
            ),
        )
        .where(rng.within(LedgerEntry.created_at))
        .group_by(bucket, category)
    ).all()
    found: dict[str, dict] = {}
    for period, cat, pending, settled, withdrawn in result:
        row = found.setdefault(period, {})
        if cat in CATEGORIES:
            row[f"{cat}_pending_fen"] = pending
            row[f"{cat}_settled_fen"] = settled
        row["withdrawn_fen"] = row.get("withdrawn_fen", 0) + withdrawn
    keys = [f"{c}_{s}_fen" for c in CATEGORIES for s in ("pending", "settled")] + ["withdrawn_fen"]
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


def distribution_share(rng: Range) -> Report:
    """Sales and orders with a distributor (level-1 attribution) against without."""
    attributed = exists().where(OrderAttribution.order_id == Order.id, OrderAttribution.level == 1)
    bucket = period_start(Order.paid_at, rng.grain)
    result = db.session.execute(
        select(
            bucket,
            func.coalesce(func.sum(case((attributed, Order.paid_fen), else_=0)), 0),
            func.coalesce(func.sum(case((attributed, 1), else_=0)), 0),
            func.coalesce(func.sum(Order.paid_fen), 0),
            func.count(Order.id),
        )
        .where(Order.paid_at.is_not(None), rng.within(Order.paid_at))
        .group_by(bucket)
    ).all()
    found = {
        p: {"dist_fen": d, "dist_orders": do, "natural_fen": s - d, "natural_orders": n - do}
        for p, d, do, s, n in result
    }
    keys = ["dist_fen", "dist_orders", "natural_fen", "natural_orders"]
    rows = _fill(rng, found, keys)
    totals = _sum(rows, keys)
    for r in [*rows, totals]:
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
        totals,
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


def top_products(rng: Range, limit: int = TOP_N) -> Report:
    """The best-selling products of the range by net amount (after refunds)."""
    net = func.sum(OrderLine.amount_fen - OrderLine.refunded_fen)
    result = db.session.execute(
        select(
            OrderLine.product_id,
            func.max(OrderLine.title),
            func.sum(OrderLine.quantity - OrderLine.refunded_quantity),
            net,
            func.count(func.distinct(OrderLine.order_id)),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.paid_at.is_not(None), rng.within(Order.paid_at))
        .group_by(OrderLine.product_id)
        .order_by(net.desc(), OrderLine.product_id)
        .limit(limit)
    ).all()
    rows = [
        {"rank": i, "title": title, "quantity": int(qty), "amount_fen": int(amount), "orders": n}
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


def top_distributors(rng: Range, limit: int = TOP_N) -> Report:
    """Distributors whose own customers bought most in the range, with their earnings."""
    sales_fen = func.sum(Order.paid_fen)
    top = db.session.execute(
        select(OrderAttribution.distributor_id, sales_fen, func.count(Order.id))
        .join(Order, Order.id == OrderAttribution.order_id)
        .where(OrderAttribution.level == 1, Order.paid_at.is_not(None), rng.within(Order.paid_at))
        .group_by(OrderAttribution.distributor_id)
        .order_by(sales_fen.desc(), OrderAttribution.distributor_id)
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
    earned = dict(
        db.session.execute(
            select(LedgerEntry.distributor_id, func.sum(LedgerEntry.amount_fen))
            .where(
                LedgerEntry.distributor_id.in_(ids),
                # payouts and their returns are not earnings
                _kind_or_reversed_kind() != "withdrawal",
                LedgerEntry.state != REVERSED,
                rng.within(LedgerEntry.created_at),
            )
            .group_by(LedgerEntry.distributor_id)
        ).all()
    )
    rows = [
        {
            "rank": i,
            "name": f"{names.get(d) or '分销员'} #{d}",
            "sales_fen": int(s),
            "orders": n,
            "earned_fen": int(earned.get(d) or 0),
        }
        for i, (d, s, n) in enumerate(top, 1)
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


def all_reports(rng: Range) -> list[Report]:
    """Every report for ``rng``, in page order."""
    return [build(rng) for build in REPORTS.values()]
