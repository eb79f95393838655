"""级差 (price differences): what ordering merchants earn on orders that pass through them.

Which orders. An order goes *through an ordering merchant* M when

- it is a merchant order (``MerchantOrder``: M bought for its own customer at its level
  price), or
- its buyer was bound to M when the order was placed: the order's level-1 attribution
  (fixed at placement by the distribution core, or at payment in bind-on-first-payment
  mode) is M's distributor, and M is active as a merchant and as a distributor.

What each earns, per order line (unit prices per ``app.cloud.pricing``, read when the
earnings are written)::

    retail order:    M earns          retail − price(M.level)
    every order:     ancestor A earns price(C.level) − price(A.level)   (C: the merchant
                                                                          just below A)
    merchant order:  M earns nothing; the walk starts from what M paid per unit

Walking up from M, each merchant's price is capped at the price below it, so no gap is
ever negative; a skipped level needs no rule (an L1 directly above an L3 earns
price(L3) − price(L1)); headquarters keeps the top merchant's price. A merchant that is
not active earns nothing and its gap stays with headquarters (like a disabled
distributor's commission); the walk goes on above it.

Paid amount rule. Gaps are per unit of the line's unit price (retail, or M's price for a
merchant order). When the line was paid less than unit price × quantity (a discount),
every share is scaled by what was actually paid::

    share = floor(unit gap × min(line.amount_fen, unit × quantity) / unit)

which is ``unit gap × quantity`` when nothing was discounted; rounding is down to the fen
and the odd fen stays with headquarters.

Precedence (``CloudSettings.precedence``): ``price_difference`` (default) → an order
through an ordering merchant earns price differences and no traditional commission;
``commission`` → no price differences at all; ``both`` → both. ``earnings_plan`` is the one
place that decides; ``commissions.write_earnings`` asks it.

Entries: kind ``price_difference``, ``pending``, one per (line, merchant's distributor),
inserted with ``ON CONFLICT DO NOTHING ... RETURNING`` on the ledger's unique key, so a
job run twice writes each once. They settle, reverse on refund (proportionally) and
withdraw through the distribution core like any line earning.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.catalog.models import Sku
from app.cloud.merchants import chain_up, is_active, merchant_for_distributor
from app.cloud.models import MerchantOrder, OrderingMerchant
from app.cloud.pricing import get_cloud_settings, level_names, level_prices, list_levels, set_prices
from app.core.money import format_yuan
from app.core.time import utcnow
from app.distribution.models import OrderAttribution
from app.extensions import db
from app.ledger.kinds import PENDING
from app.orders.models import Order

KIND = "price_difference"


@dataclass(frozen=True)
class EarningsPlan:
    """What an order earns: traditional commissions, price differences, or both."""

    commissions: bool
    price_differences: bool
    merchant: OrderingMerchant | None  # the merchant the order went through
    merchant_order: bool  # M placed it at its level price


def merchant_of_order(order: Order) -> tuple[OrderingMerchant | None, bool]:
    """(the ordering merchant ``order`` went through, whether it is a merchant order)."""
    # One query for both ways in (most orders have neither): the merchant that placed it,
    # and the merchant row of its level-1 seller.
    placed_by, seller_merchant = db.session.execute(
        select(
            select(MerchantOrder.merchant_id)
            .where(MerchantOrder.order_id == order.id)
            .scalar_subquery(),
            select(OrderingMerchant.id)
            .join(
                OrderAttribution, OrderAttribution.distributor_id == OrderingMerchant.distributor_id
            )
            .where(OrderAttribution.order_id == order.id, OrderAttribution.level == 1)
            .scalar_subquery(),
        )
    ).one()
    if placed_by is not None:
        return db.session.get(OrderingMerchant, placed_by), True
    if seller_merchant is None:
        return None, False
    merchant = db.session.get(OrderingMerchant, seller_merchant)
    return (merchant if is_active(merchant) else None), False


def plan_for(merchant: OrderingMerchant | None, merchant_order: bool) -> EarningsPlan:
    """The precedence rule on its own (the simulator uses it too)."""
    if merchant is None:
        return EarningsPlan(True, False, None, False)
    precedence = get_cloud_settings().precedence
    return EarningsPlan(
        commissions=precedence in ("commission", "both"),
        price_differences=precedence in ("price_difference", "both"),
        merchant=merchant,
        merchant_order=merchant_order,
    )


def earnings_plan(order: Order) -> EarningsPlan:
    """THE decision for one order: commissions, price differences, or both."""
    return plan_for(*merchant_of_order(order))


# --- the arithmetic -------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One merchant of the chain, M first."""

    merchant_id: int
    distributor_id: int
    level: int
    price_fen: int  # its unit price for the SKU
    active: bool


@dataclass(frozen=True)
class Share:
    """What one merchant earns on one line, and the sum behind it."""

    step: Step
    unit_gap_fen: int
    amount_fen: int
    explanation: str


def line_shares(
    unit_fen: int,
    quantity: int,
    paid_fen: int,
    steps: list[Step],
    *,
    merchant_order: bool,
    names: dict[int, str] | None = None,
) -> tuple[list[Share], int]:
    """(shares of every merchant in ``steps``, headquarters' unit price) for one line.

    ``unit_fen`` is what the buyer was charged per unit (retail, or M's level price);
    ``paid_fen`` what the line was paid. Pure: see the module docstring for the rules.
    """
    names = names or {}
    full = unit_fen * quantity
    base = min(paid_fen, full)
    shares: list[Share] = []
    prev = unit_fen
    prev_label = "零售价"
    for i, step in enumerate(steps):
        price = prev if (merchant_order and i == 0) else min(prev, step.price_fen)
        gap = prev - price
        label = f"{names.get(step.level, f'{step.level}级')}价"
        amount = 0 if unit_fen <= 0 or gap <= 0 or not step.active else gap * base // unit_fen
        explanation = (
            f"{prev_label} {format_yuan(prev)} − {label} {format_yuan(price)} = "
            f"{format_yuan(gap)} × {quantity} 件"
        )
        if base < full and amount:
            explanation += f"，按实付 {format_yuan(base)} / {format_yuan(full)} 折算"
        if merchant_order and i == 0:
            explanation = f"自己按{label} {format_yuan(price)} 进货，不计级差"
        elif not step.active:
            explanation += "；订货商未启用，归总部"
        shares.append(Share(step, gap, amount, explanation[:200]))
        prev, prev_label = price, label
    return shares, prev


def chain_steps(merchant: OrderingMerchant, sku_id: int, retail_fen: int) -> list[Step]:
    """The merchant chain from ``merchant`` up, with each one's unit price for the SKU."""
    levels = list_levels()
    prices = level_prices(sku_id, retail_fen, levels, set_prices([sku_id]))
    top = min(prices.values()) if prices else retail_fen
    return [
        Step(
            merchant_id=m.id,
            distributor_id=m.distributor_id,
            level=m.level,
            # A level that no longer exists prices like the top level: its gap is 0.
            price_fen=prices.get(m.level, top),
            active=is_active(m),
        )
        for m in chain_up(merchant)
    ]


# --- writing --------------------------------------------------------------------------------


def write_price_differences(order: Order, plan: EarningsPlan | None = None) -> list[int]:
    """Write the order's pending price-difference entries once; return the ids written now.

    Lines refunded in full earn nothing; refunds already completed on a line are applied
    as reversals right away (the same code as a later refund). Flushes.
    """
    from app.distribution.commissions import lines_of_order, lock_order_lines
    from app.ledger.entries import write_line_earnings

    plan = plan or earnings_plan(order)
    if not plan.price_differences or plan.merchant is None:
        return []
    lock_order_lines(order.id)
    names = level_names()
    lines = lines_of_order(order.id)
    now = utcnow()
    written: list[int] = []
    for line in lines:
        if line.amount_fen - line.refunded_fen <= 0 or line.sku_id is None:
            continue
        sku = db.session.get(Sku, line.sku_id)
        if sku is None:
            continue
        # Discounted level prices are taken off the retail the customer saw (the line's
        # unit price); a merchant order's line is at M's price, so today's retail is used.
        retail = sku.price_fen if plan.merchant_order else line.unit_price_fen
        steps = chain_steps(plan.merchant, sku.id, retail)
        shares, _hq = line_shares(
            line.unit_price_fen,
            line.quantity,
            line.amount_fen,
            steps,
            merchant_order=plan.merchant_order,
            names=names,
        )
        values = [
            {
                "distributor_id": share.step.distributor_id,
                "kind": KIND,
                "amount_fen": share.amount_fen,
                "state": PENDING,
                "order_id": order.id,
                "order_line_id": line.id,
                "rule_source": f"级差 {names.get(share.step.level, share.step.level)}"[:64],
                "note": share.explanation,
                "created_at": now,
            }
            for share in shares
            if share.amount_fen > 0
        ]
        if not values:
            continue
        written += write_line_earnings(line, values, now)
    db.session.flush()
    return written


# --- the simulator --------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedDifference:
    """One merchant's price difference in the commission simulator."""

    merchant_id: int
    distributor_id: int
    level: int
    level_name: str
    amount_fen: int
    explanation: str


@dataclass(frozen=True)
class DifferencePreview:
    """Price differences of a simulated line, and what precedence does with commissions."""

    plan: EarningsPlan
    rows: list[SimulatedDifference]
    headquarters_unit_fen: int
    note: str

    @property
    def total_fen(self) -> int:
        return sum(row.amount_fen for row in self.rows)


def simulate_differences(
    sku: Sku, quantity: int, paid_fen: int, seller_distributor_id: int | None
) -> DifferencePreview | None:
    """What a retail order of ``quantity`` × ``sku`` bound to the level-1 distributor
    ``seller_distributor_id`` would earn in price differences (None: not a merchant)."""
    if seller_distributor_id is None:
        return None
    merchant = merchant_for_distributor(seller_distributor_id)
    if not is_active(merchant):
        return None
    plan = plan_for(merchant, False)
    names = level_names()
    shares, hq = line_shares(
        sku.price_fen,
        quantity,
        paid_fen,
        chain_steps(merchant, sku.id, sku.price_fen),
        merchant_order=False,
        names=names,
    )
    rows = [
        SimulatedDifference(
            s.step.merchant_id,
            s.step.distributor_id,
            s.step.level,
            names.get(s.step.level, f"{s.step.level}级"),
            s.amount_fen if plan.price_differences else 0,
            s.explanation,
        )
        for s in shares
    ]
    if plan.price_differences and not plan.commissions:
        note = "级差优先：经订货商的订单只计级差，不计分销佣金。"
    elif plan.commissions and not plan.price_differences:
        note = "佣金优先：只计分销佣金，以下级差不发放。"
    else:
        note = "级差与分销佣金同时发放。"
    return DifferencePreview(plan, rows, hq, note)
