"""Regional dividends (区域分红): what agents earn on orders shipped into their regions,
and the order and sales figures of regions.

Earning rule. For each paid order line and each *active* agent whose region contains the
order's shipping district (``Order.district_code``, copied from the address when the order
was placed): a district agent's code equals it, a city agent's code is the district's city
(``regions.resolve``), a province agent's code is its province. Province, city and
district agents of one address all earn, each at its own rate::

    dividend = floor(line.amount_fen × rate_bp / 10000)      (rules.floor_commission)

``line.amount_fen`` is what the customer paid for the line (after discounts, without
shipping). The rate is the product's override for the agent's level, else the shop's rate
for the level.

A calculator: ``dividend_rows`` returns the rows (kind ``region_dividend``) and writes
nothing; the paid-order pipeline (``app/earnings/on_paid.py``) writes them once on the
ledger's unique (order_line_id, distributor_id, kind) key, after the line's commissions,
and applies refunds already completed as reversals (the same proportional rule as
commissions: the dividend nets to ``floor(dividend × remaining / line.amount_fen)``), so
the result does not depend on whether the refund came before or after the follow-up.
One user holding two nested regions (say 深圳市 and 南山区) gets one row per line with
both dividends added, because the key allows one ``region_dividend`` per line and
beneficiary. Settlement, reversal and withdrawal are the ledger's (``LINE_EARNING_KINDS``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import and_, bindparam, case, func, or_, select
from sqlalchemy.orm import aliased

from app import regions
from app.accounts.models import User
from app.cloud.agents import LEVEL_LABELS, get_cloud_settings, level_rate_bp, region_path
from app.cloud.models import AgentProductRate, RegionAgent
from app.core.batch import memo
from app.core.time import utcnow
from app.distribution.distributors import get_distribution_settings
from app.distribution.payout_cap import trim_note, trim_to_cap
from app.distribution.rules import EarningRow, earns_on_own_order, floor_commission, format_bp
from app.distribution.team import SALES_STATUSES
from app.extensions import db
from app.ledger.balances import entry_rows, mask_name
from app.ledger.kinds import PENDING, REVERSED
from app.ledger.models import LedgerEntry
from app.orders.models import Order, OrderLine

REGION_DIVIDEND = "region_dividend"


def region_codes_of(district_code: str) -> dict[str, str] | None:
    """{level: code} of the province, city and district containing a district code."""
    resolved = regions.resolve(district_code)
    if resolved is None:
        return None
    return {
        "province": resolved.province.code,
        "city": resolved.city.code,
        "district": resolved.district.code,
    }


# Built once with bound parameters: every paid order asks it.
_AGENTS_OF_REGIONS = select(RegionAgent).where(
    RegionAgent.status == "active",
    or_(
        *(
            and_(RegionAgent.level == level, RegionAgent.region_code == bindparam(level))
            for level in ("province", "city", "district")
        )
    ),
)


def agents_for_district(district_code: str) -> list[RegionAgent]:
    """The active agents whose region contains ``district_code`` (province first)."""
    return memo(("agents_for_district", district_code), lambda: _agents_for(district_code))


def _agents_for(district_code: str) -> list[RegionAgent]:
    codes = region_codes_of(district_code)
    if codes is None:
        return []
    rank = {"province": 0, "city": 1, "district": 2}
    rows = db.session.scalars(_AGENTS_OF_REGIONS, codes).all()
    return sorted(rows, key=lambda a: rank[a.level])


@dataclass(frozen=True)
class DividendShare:
    """What one agent earns on one line: the money rule of this module, in one place."""

    agent: RegionAgent
    rate_bp: int
    amount_fen: int  # floor(line amount × rate / 10000)
    source: str  # 商品分红比例 / 店铺默认
    note: str  # 广东省 深圳市 南山区 区县代理 3%


def product_overrides(product_ids) -> dict[tuple[int, str], int]:
    """{(product id, agent level): rate_bp} of the products' dividend overrides."""
    ids = frozenset(product_ids)
    return memo(("dividend_overrides", ids), lambda: _overrides_of(ids))


def _overrides_of(product_ids: frozenset[int]) -> dict[tuple[int, str], int]:
    return {
        (row.product_id, row.level): row.rate_bp
        for row in db.session.scalars(
            select(AgentProductRate).where(AgentProductRate.product_id.in_(product_ids))
        )
    }


def line_dividends(
    amount_fen: int,
    product_id: int | None,
    agents: list[RegionAgent],
    settings,
    overrides: dict[tuple[int, str], int],
) -> list[DividendShare]:
    """Each agent's dividend on a line paid ``amount_fen`` (after discounts, no shipping):
    the product's override for the agent's level, else the shop's rate for the level,
    rounded down to the fen (``floor_commission``); agents earning 0 are left out. The
    payment path (``dividend_rows``) and the simulator both call this."""
    shares = []
    for agent in agents:
        override = overrides.get((product_id, agent.level))
        rate = override if override is not None else level_rate_bp(settings, agent.level)
        amount = floor_commission(amount_fen, rate)
        if amount <= 0:
            continue
        source = "商品分红比例" if override is not None else "店铺默认"
        note = f"{agent.region_name} {LEVEL_LABELS[agent.level]} {format_bp(rate)}"
        shares.append(DividendShare(agent, rate, amount, source, note))
    return shares


def capped_dividends(
    amount_fen: int, cap_bp: int, commissions: list[tuple[str, int]], shares: list[DividendShare]
) -> list[DividendShare]:
    """``shares`` trimmed under the payout cap, given the ``commissions`` already earned on
    the line ((level kind, fen)): district first, then city, then province
    (``payout_cap.trim_to_cap``, the one copy of the arithmetic). A trimmed share's note
    says by how much; a share trimmed to nothing is left out."""
    parts = commissions + [(share.agent.level, share.amount_fen) for share in shares]
    kept = trim_to_cap(amount_fen, cap_bp, parts)[len(commissions) :]
    out = []
    for share, amount in zip(shares, kept, strict=True):
        if amount == share.amount_fen:
            out.append(share)
        elif amount > 0:
            note = f"{share.note}，{trim_note(cap_bp, share.amount_fen - amount)}"
            out.append(replace(share, amount_fen=amount, note=note))
    return out


def dividend_agents(order: Order) -> list[RegionAgent]:
    """The agents who earn on ``order``: none when agents are switched off, the order is
    not paid, or no active agent's region contains its district; an agent earns nothing
    on their own order unless self-purchase is on (``rules.earns_on_own_order``)."""
    settings = get_cloud_settings()
    if not settings.agents_enabled or order.paid_at is None:
        return []
    self_purchase = get_distribution_settings().self_purchase
    return [
        agent
        for agent in agents_for_district(order.district_code)
        if earns_on_own_order(agent.user_id, order.user_id, self_purchase)
    ]


def dividend_rows(
    lines: list[OrderLine],
    agents: list[RegionAgent],
    commissions: dict[int, list[tuple[str, int]]],
) -> list[EarningRow]:
    """Each agent's dividend on each line still (partly) paid, trimmed to what the payout
    cap leaves after the line's ``commissions`` ({line id: [(level kind, fen)]}); one row
    per line and agent's distributor (nested regions of one user added up)."""
    if not agents:
        return []
    settings = get_cloud_settings()
    cap_bp = get_distribution_settings().payout_cap_bp
    overrides = product_overrides(line.product_id for line in lines if line.product_id)
    out: list[EarningRow] = []
    for line in lines:
        if line.amount_fen - line.refunded_fen <= 0:
            continue
        by_distributor: dict[int, list] = {}  # distributor: [fen, source, note]
        shares = capped_dividends(
            line.amount_fen,
            cap_bp,
            commissions.get(line.id, []),
            line_dividends(line.amount_fen, line.product_id, agents, settings, overrides),
        )
        for share in shares:
            row = by_distributor.setdefault(share.agent.distributor_id, [0, share.source, ""])
            row[0] += share.amount_fen
            row[2] = f"{row[2]}；{share.note}" if row[2] else share.note
        out += [
            EarningRow(line.id, distributor_id, REGION_DIVIDEND, fen, source, note[:200])
            for distributor_id, (fen, source, note) in by_distributor.items()
        ]
    return out


@dataclass(frozen=True)
class RegionPreview:
    """The region dividends a line shipped to one district would pay (the simulator)."""

    district_code: str
    region_text: str  # 广东省 深圳市 南山区
    shares: list[DividendShare]
    note: str  # why nothing, or ""

    @property
    def total_fen(self) -> int:
        return sum(share.amount_fen for share in self.shares)


def preview_region_dividends(
    district_code: str,
    product_id: int | None,
    paid_fen: int,
    *,
    buyer_id: int | None = None,
    self_purchase: bool = True,
) -> RegionPreview | None:
    """What the active province, city and district agents of ``district_code`` would earn
    on a line of ``product_id`` paid ``paid_fen``, before the payout cap (the simulator
    trims with ``capped_dividends`` once it knows the commissions); writes nothing. With
    ``buyer_id`` and self-purchase off, the buyer's own regions earn nothing, as on
    payment. None for a code that is not a GB/T 2260 district."""
    if regions.resolve(district_code) is None:
        return None
    text = region_path("district", district_code)
    settings = get_cloud_settings()
    if not settings.agents_enabled:
        return RegionPreview(district_code, text, [], "区域代理已关闭：不产生区域分红。")
    agents = agents_for_district(district_code)
    if not agents:
        return RegionPreview(district_code, text, [], "该地区没有生效中的省、市、区县代理。")
    if buyer_id is not None:
        agents = [a for a in agents if earns_on_own_order(a.user_id, buyer_id, self_purchase)]
        if not agents:
            return RegionPreview(
                district_code, text, [], "买家本人是该地区代理，未开启自购返佣：不产生区域分红。"
            )
    overrides = product_overrides([product_id] if product_id else [])
    shares = line_dividends(paid_fen, product_id, agents, settings, overrides)
    return RegionPreview(district_code, text, shares, "" if shares else "分红不足 1 分。")


# --- what the agent centre and the admin read ----------------------------------------------


def _district_filter(agent: RegionAgent):
    """SQL condition: the order shipped into the agent's region."""
    if agent.level == "province":
        return Order.district_code.like(agent.region_code[:2] + "%")
    if agent.level == "city":
        codes = [d.code for d in regions.districts(agent.region_code)]
        return Order.district_code.in_(codes or [agent.region_code])
    return Order.district_code == agent.region_code


def region_order_filter(agents: list[RegionAgent]):
    """SQL condition: paid orders shipped into one of ``agents``' regions while active.

    An agent sees the orders of its region from when it became the agent, never earlier
    ones (they belong to whoever held the region then).
    """
    parts = [
        and_(_district_filter(a), Order.paid_at >= a.approved_at)
        for a in agents
        if a.approved_at is not None
    ]
    return and_(Order.paid_at.is_not(None), or_(*parts)) if parts else None


@dataclass(frozen=True)
class RegionOrderRow:
    """An order shipped into my region, as an agent may see it (buyer masked)."""

    order_id: int
    number: str
    buyer_name: str
    district_code: str
    region_text: str  # 广东省 深圳市 南山区
    status: str
    amount_fen: int  # goods paid, less refunds (what dividends are reckoned on)
    items_fen: int  # goods as ordered (商品金额), no shipping
    paid_fen: int  # what the customer paid: goods and shipping (实付)
    refunded_fen: int  # refunded so far
    dividend_fen: int  # what I earned on it, net of reversals (0 when nothing)
    carrier: str | None
    tracking_number: str | None
    paid_at: datetime


def dividends_by_order(distributor_id: int, order_ids: list[int]) -> dict[int, int]:
    """My net region dividend per order: dividends plus their reversals, lapsed ones not
    counted (one query)."""
    if not order_ids:
        return {}
    earning = aliased(LedgerEntry)
    rows = db.session.execute(
        select(LedgerEntry.order_id, func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
        .outerjoin(earning, earning.id == LedgerEntry.reverses_id)
        .where(
            LedgerEntry.distributor_id == distributor_id,
            LedgerEntry.order_id.in_(order_ids),
            LedgerEntry.state != REVERSED,
            or_(
                LedgerEntry.kind == REGION_DIVIDEND,
                and_(LedgerEntry.kind == "reversal", earning.kind == REGION_DIVIDEND),
            ),
        )
        .group_by(LedgerEntry.order_id)
    ).all()
    return {order_id: int(total) for order_id, total in rows}


def region_orders(
    agents: list[RegionAgent], distributor_id: int, page: int = 1, per_page: int = 20
) -> list[RegionOrderRow]:
    """A page of paid orders shipped into the agents' regions, newest payment first."""
    condition = region_order_filter(agents)
    if condition is None:
        return []
    rows = db.session.execute(
        select(Order, User.nickname)
        .join(User, User.id == Order.user_id)
        .where(condition)
        .order_by(Order.paid_at.desc(), Order.id.desc())
        .limit(per_page)
        .offset((max(page, 1) - 1) * per_page)
    ).all()
    dividends = dividends_by_order(distributor_id, [o.id for o, _n in rows])
    return [
        RegionOrderRow(
            order_id=o.id,
            number=o.number,
            buyer_name=mask_name(nickname, o.user_id),
            district_code=o.district_code,
            region_text=o.region_text,
            status=o.status,
            amount_fen=o.items_fen - o.refunded_fen,
            items_fen=o.items_fen,
            paid_fen=o.paid_fen,
            refunded_fen=o.refunded_fen,
            dividend_fen=dividends.get(o.id, 0),
            carrier=o.carrier,
            tracking_number=o.tracking_number,
            paid_at=o.paid_at,
        )
        for o, nickname in rows
    ]


def region_sales(agents: list[RegionAgent]) -> tuple[int, int]:
    """(orders, goods sold less refunds) shipped into the agents' regions while they held
    them, on paid, shipped or completed orders."""
    condition = region_order_filter(agents)
    if condition is None:
        return 0, 0
    count, total = db.session.execute(
        select(
            func.count(Order.id),
            func.coalesce(func.sum(Order.items_fen - Order.refunded_fen), 0),
        ).where(condition, Order.status.in_(SALES_STATUSES))
    ).one()
    return int(count), int(total)


def dividend_totals(distributor_id: int) -> dict[str, int]:
    """My region dividends in fen: earned (net of refunds), of which pending and settled."""
    earning = aliased(LedgerEntry)
    is_dividend = or_(
        LedgerEntry.kind == REGION_DIVIDEND,
        and_(LedgerEntry.kind == "reversal", earning.kind == REGION_DIVIDEND),
    )
    amount = LedgerEntry.amount_fen
    earned, pending = db.session.execute(
        select(
            func.coalesce(func.sum(amount), 0),
            func.coalesce(func.sum(case((LedgerEntry.state == PENDING, amount), else_=0)), 0),
        )
        .outerjoin(earning, earning.id == LedgerEntry.reverses_id)
        .where(
            LedgerEntry.distributor_id == distributor_id,
            LedgerEntry.state != REVERSED,
            is_dividend,
        )
    ).one()
    return {"earned_fen": int(earned), "pending_fen": int(pending)}


@dataclass
class RegionSales:
    """Sales shipped into one region (district, city or province)."""

    code: str
    name: str
    level: str
    orders: int = 0
    sales_fen: int = 0


def sales_by_district() -> dict[str, tuple[int, int]]:
    """{district code: (orders, goods sold less refunds)} over paid, shipped and completed
    orders: one GROUP BY in SQL."""
    rows = db.session.execute(
        select(
            Order.district_code,
            func.count(Order.id),
            func.coalesce(func.sum(Order.items_fen - Order.refunded_fen), 0),
        )
        .where(Order.status.in_(SALES_STATUSES))
        .group_by(Order.district_code)
    ).all()
    return {code: (int(n), int(total)) for code, n, total in rows}


def sales_rollup() -> dict[tuple[str, str], RegionSales]:
    """Sales per (level, code) for every province, city and district with sales: the
    district totals from SQL, added up the GB/T 2260 tree."""
    out: dict[tuple[str, str], RegionSales] = {}
    for district_code, (n, total) in sales_by_district().items():
        resolved = regions.resolve(district_code)
        if resolved is None:
            continue
        for level, region in (
            ("province", resolved.province),
            ("city", resolved.city),
            ("district", resolved.district),
        ):
            row = out.setdefault((level, region.code), RegionSales(region.code, region.name, level))
            row.orders += n
            row.sales_fen += total
    return out


def dividend_entries(
    distributor_id: int, page: int = 1, per_page: int = 20, now: datetime | None = None
):
    """A page of my region dividends and their refund reversals, newest first, as the
    ledger list shows them (order number, masked buyer, why not withdrawable yet)."""
    now = now or utcnow()
    earning = aliased(LedgerEntry)
    rows = db.session.execute(
        select(LedgerEntry, Order, User.nickname)
        .outerjoin(earning, earning.id == LedgerEntry.reverses_id)
        .outerjoin(Order, Order.id == LedgerEntry.order_id)
        .outerjoin(User, User.id == Order.user_id)
        .where(
            LedgerEntry.distributor_id == distributor_id,
            or_(
                LedgerEntry.kind == REGION_DIVIDEND,
                and_(LedgerEntry.kind == "reversal", earning.kind == REGION_DIVIDEND),
            ),
        )
        .order_by(LedgerEntry.id.desc())
        .limit(per_page)
        .offset((max(page, 1) - 1) * per_page)
    ).all()
    return entry_rows(rows, now)


def line_titles(rows) -> dict[int, str]:
    """{order line id: "title spec"} for the entries of ``rows`` (``EntryRow``s), so a card
    of one order tells its lines apart (one query)."""
    line_ids = {row.entry.order_line_id for row in rows if row.entry.order_line_id}
    if not line_ids:
        return {}
    found = db.session.execute(
        select(OrderLine.id, OrderLine.title, OrderLine.spec_text).where(OrderLine.id.in_(line_ids))
    ).all()
    return {line_id: f"{title} {spec}".strip() for line_id, title, spec in found}
