"""How much each level earns on one order line: rate resolution and the rounding rule.

Pure functions over plain values, so the admin simulator, the commission job and the
tests all use exactly the same arithmetic. Nothing here touches the database.

Rounding rule (the only place it is applied): a percentage commission is
``floor(base_fen * rate_bp / 10000)``, rounded down to the fen; the remainder stays with
the merchant. A fixed commission is ``fen_per_unit * quantity``, never more than what the
customer paid for the line.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LEVELS = 3  # never more: 3+ levels is the legal line for pyramid selling (domain.md)
BP_DENOMINATOR = 10_000

PERCENT = "percent"
FIXED = "fixed"
NONE = "none"
RULE_MODES = (PERCENT, FIXED, NONE)


def floor_commission(base_fen: int, rate_bp: int) -> int:
    """The rounding rule: ``floor(base_fen × rate_bp / 10000)`` in integer arithmetic."""
    if base_fen <= 0 or rate_bp <= 0:
        return 0
    return base_fen * rate_bp // BP_DENOMINATOR


def earns_on_own_order(beneficiary_user_id: int, buyer_user_id: int, self_purchase: bool) -> bool:
    """The self-purchase rule for every earning on a sale: with self-purchase off, nobody
    earns anything on an order they placed themself (commission levels, where attribution
    skips the buyer, and region dividends alike); with it on, they may."""
    return self_purchase or beneficiary_user_id != buyer_user_id


def format_bp(rate_bp: int) -> str:
    """Basis points as a percentage for people, without floats: 1050 -> '10.5%'."""
    whole, frac = divmod(rate_bp, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") + "%"


@dataclass(frozen=True)
class Rule:
    """A commission rule: per-level values, in basis points (percent) or fen per unit (fixed).

    ``mode == NONE`` means "this product pays no commission at any level".
    """

    mode: str
    values: tuple[int, int, int]
    source: str  # what matched, for people: "SKU 规则", "商品规则", "等级 金牌", "店铺默认"


@dataclass(frozen=True)
class Beneficiary:
    """Who sits at a level, with the rates of their grade (None when they have no grade)."""

    level: int
    distributor_id: int
    grade_rule: Rule | None


@dataclass(frozen=True)
class Share:
    """What one beneficiary earns on one line, and why."""

    level: int
    distributor_id: int
    amount_fen: int
    source: str
    explanation: str


def resolve_rule(
    sku_rule: Rule | None, product_rule: Rule | None, grade_rule: Rule | None, default_rule: Rule
) -> Rule:
    """Most specific first: SKU rule, product rule, the beneficiary's grade, shop default."""
    for rule in (sku_rule, product_rule, grade_rule):
        if rule is not None:
            return rule
    return default_rule


def line_shares(
    *,
    paid_fen: int,
    quantity: int,
    chain: list[Beneficiary],
    levels: int,
    default_rule: Rule,
    product_rule: Rule | None = None,
    sku_rule: Rule | None = None,
) -> list[Share]:
    """The commission of each beneficiary on one order line.

    ``paid_fen`` is what the customer paid for the line after discounts, without
    shipping. ``chain`` holds the beneficiaries present (a missing or disabled ancestor
    is simply absent: its share stays with the merchant). Levels beyond ``levels`` earn
    nothing. Shares of zero fen are left out.
    """
    if not 1 <= levels <= MAX_LEVELS:
        raise ValueError(f"levels must be 1..{MAX_LEVELS}")
    shares = []
    for who in chain:
        if who.level > levels:
            continue
        rule = resolve_rule(sku_rule, product_rule, who.grade_rule, default_rule)
        value = rule.values[who.level - 1]
        if rule.mode == NONE:
            amount, how = 0, "不参与分佣"
        elif rule.mode == FIXED:
            amount = min(value * quantity, paid_fen)
            how = f"每件 {value} 分 × {quantity} 件"
        else:
            amount = floor_commission(paid_fen, value)
            how = f"实付 {paid_fen} 分 × {format_bp(value)}（向下取整到分）"
        if amount > 0:
            shares.append(Share(who.level, who.distributor_id, amount, rule.source, how))
    return shares


@dataclass(frozen=True)
class EarningRow:
    """One earning a calculator asks for on one order line: who, what kind, how much and
    why. Calculators (commission levels, 级差, region dividends) return these; the
    paid-order pipeline (``app/earnings/on_paid.py``) writes them to the ledger."""

    order_line_id: int
    distributor_id: int
    kind: str  # level_1/2/3, price_difference, region_dividend
    amount_fen: int
    rule_source: str  # at most 64 characters
    note: str  # at most 200 characters
