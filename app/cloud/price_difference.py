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
``commission`` → no price differences at all; ``both`` → both. ``app/earnings/plan.py`` is
the one place that decides; the paid-order pipeline and the simulator both ask it.

This module is a calculator: ``price_difference_rows`` returns the rows (kind
``price_difference``, one per line and merchant's distributor) and writes nothing. The
pipeline (``app/earnings/on_paid.py``) writes them once on the ledger's unique key; they
settle, reverse on refund (proportionally) and withdraw like any line earning.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.catalog.models import Sku
from app.cloud.merchants import chain_up, is_active
from app.cloud.models import OrderingMerchant
from app.cloud.pricing import level_names, level_prices, list_levels, set_prices
from app.core.batch import memo
from app.core.money import format_yuan
from app.distribution.rules import EarningRow
from app.extensions import db
from app.orders.models import OrderLine

KIND = "price_difference"


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
    """The merchant chain from ``merchant`` up, with each one's unit price for the SKU
    (in a batch of follow-ups, read once per merchant, SKU and retail price: the
    pipeline writes no merchant, level or price; ``app/core/batch.py``)."""
    return list(
        memo(
            ("price_difference_steps", merchant.id, sku_id, retail_fen),
            lambda: tuple(_chain_steps(merchant, sku_id, retail_fen)),
        )
    )


def _chain_steps(merchant: OrderingMerchant, sku_id: int, retail_fen: int) -> list[Step]:
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


# --- the rows ------------------------------------------------------------------------------


def price_difference_rows(
    lines: list[OrderLine], merchant: OrderingMerchant, merchant_order: bool
) -> list[EarningRow]:
    """Each merchant's price difference on each line still (partly) paid, for an order
    through ``merchant`` (``merchant_order``: M placed it at its level price); in line
    order, M first. Lines without a SKU (or whose SKU is gone) earn nothing."""
    names = level_names()
    out: list[EarningRow] = []
    for line in lines:
        if line.amount_fen - line.refunded_fen <= 0 or line.sku_id is None:
            continue
        sku = memo(("sku", line.sku_id), lambda: db.session.get(Sku, line.sku_id))  # noqa: B023
        if sku is None:
            continue
        # Discounted level prices are taken off the retail the customer saw (the line's
        # unit price); a merchant order's line is at M's price, so today's retail is used.
        retail = sku.price_fen if merchant_order else line.unit_price_fen
        shares, _hq = line_shares(
            line.unit_price_fen,
            line.quantity,
            line.amount_fen,
            chain_steps(merchant, sku.id, retail),
            merchant_order=merchant_order,
            names=names,
        )
        out += [
            EarningRow(
                order_line_id=line.id,
                distributor_id=share.step.distributor_id,
                kind=KIND,
                amount_fen=share.amount_fen,
                rule_source=f"级差 {names.get(share.step.level, share.step.level)}"[:64],
                note=share.explanation,
            )
            for share in shares
            if share.amount_fen > 0
        ]
    return out
