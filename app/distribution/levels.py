"""Commission levels: what the attributed distributors earn on a paid order's lines.

A calculator: it reads the rules (SKU rule, then product rule, then the beneficiary's
grade, then the shop default) and returns ``EarningRow`` values; it writes nothing. The
paid-order pipeline (``app/earnings/on_paid.py``) decides whether the order earns
commissions at all (the precedence plan) and writes the rows.

Every attributed beneficiary (``attribution.py``) gets one row per order line and level
(kind ``level_1/2/3``), computed by ``rules.line_shares`` on what the customer paid for the
line (``line.amount_fen``, after discounts, without shipping). Lines refunded in full earn
nothing, nor do lines sold in a timed discount of a product whose discounted sales earn no
commission (``line.commission_exempt``, app/discounts/pricing.py). The payout cap trims
the line's commissions, level 3 first (``payout_cap.trim_to_cap``); a share trimmed to
nothing is left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select

from app.core.batch import memo
from app.distribution.distributors import get_distribution_settings
from app.distribution.models import CommissionRule, Distributor, Grade, OrderAttribution
from app.distribution.payout_cap import trim_to_cap, with_trim_note
from app.distribution.rules import PERCENT, Beneficiary, EarningRow, Rule, line_shares
from app.extensions import db
from app.orders.models import OrderLine

# Built once with bound parameters: every paid order asks them.
_RULES_OF_PRODUCT = select(CommissionRule).where(
    CommissionRule.product_id == bindparam("product_id")
)
_RULES_OF_PRODUCTS = select(CommissionRule).where(
    CommissionRule.product_id.in_(bindparam("product_ids", expanding=True))
)
_GRADES_OF = (
    select(Distributor.id, Grade)
    .outerjoin(Grade, Grade.id == Distributor.grade_id)
    .where(Distributor.id.in_(bindparam("ids", expanding=True)))
)


def default_rule() -> Rule:
    """The shop default rates (settings), as a rule."""
    s = get_distribution_settings()
    return Rule(PERCENT, (s.level1_bp, s.level2_bp, s.level3_bp), "店铺默认")


def grade_rule(grade: Grade | None) -> Rule | None:
    """A grade's rates as a rule (None for no grade)."""
    if grade is None:
        return None
    return Rule(PERCENT, (grade.level1_bp, grade.level2_bp, grade.level3_bp), f"等级 {grade.name}")


def product_rules(product_id: int | None, sku_id: int | None) -> tuple[Rule | None, Rule | None]:
    """(SKU rule, product rule) set for a line's product and SKU."""
    if product_id is None:
        return None, None
    return memo(("commission_rules", product_id, sku_id), lambda: _rules_of(product_id, sku_id))


def _as_rule(row: CommissionRule) -> Rule:
    values = (row.level1, row.level2, row.level3)
    return Rule(row.mode, values, "商品规则" if row.sku_id is None else "SKU 规则")


def _rules_of(product_id: int, sku_id: int | None) -> tuple[Rule | None, Rule | None]:
    sku_rule = product_rule = None
    for row in db.session.scalars(_RULES_OF_PRODUCT, {"product_id": product_id}):
        if row.sku_id is None:
            product_rule = _as_rule(row)
        elif row.sku_id == sku_id:
            sku_rule = _as_rule(row)
    return sku_rule, product_rule


def preload_product_rules(pairs: Iterable[tuple[int, int]]) -> None:
    """Inside a ``batch_scope``: read the rules of many (product id, SKU id) pairs in one
    query, so ``product_rules`` answers each of them from memory (lists of products, e.g.
    the 分享赚 estimates). Outside a scope it does nothing useful: ``memo`` keeps nothing."""
    pairs = list(pairs)
    product_ids = sorted({product_id for product_id, _sku_id in pairs})
    if not product_ids:
        return
    product_level: dict[int, Rule] = {}
    sku_level: dict[int, Rule] = {}
    for row in db.session.scalars(_RULES_OF_PRODUCTS, {"product_ids": product_ids}):
        if row.sku_id is None:
            product_level[row.product_id] = _as_rule(row)
        else:
            sku_level[row.sku_id] = _as_rule(row)
    for product_id, sku_id in pairs:
        found = (sku_level.get(sku_id), product_level.get(product_id))
        memo(("commission_rules", product_id, sku_id), lambda found=found: found)


_GRADE_OF = "levels:grade_of"  # batch memo: {distributor id: grade row or None}


def beneficiaries(rows: list[OrderAttribution]) -> list[Beneficiary]:
    """The attributed distributors with the rates of their grade today (one query; in a
    batch of follow-ups, only for those not read yet or upgraded since: ``forget_grades``)."""
    grades = memo(_GRADE_OF, dict)
    unread = [row.distributor_id for row in rows if row.distributor_id not in grades]
    if unread:
        grades.update(dict(db.session.execute(_GRADES_OF, {"ids": unread}).all()))
    return [
        Beneficiary(row.level, row.distributor_id, grade_rule(grades.get(row.distributor_id)))
        for row in rows
    ]


def forget_grades(distributor_ids: Iterable[int]) -> None:
    """These distributors' grades moved (an upgrade in the batch): read them again."""
    grades = memo(_GRADE_OF, dict)
    for distributor_id in distributor_ids:
        grades.pop(distributor_id, None)


def commission_rows(
    lines: list[OrderLine], attribution: list[OrderAttribution]
) -> list[EarningRow]:
    """Each attributed level's commission on each line still (partly) paid, after the
    payout cap; in line order, level 1 first. Empty without an attribution."""
    if not attribution:
        return []
    settings = get_distribution_settings()
    chain = beneficiaries(attribution)
    default = default_rule()
    out: list[EarningRow] = []
    for line in lines:
        if line.amount_fen - line.refunded_fen <= 0:
            continue
        if line.commission_exempt:
            continue  # sold in a timed discount without commissions (app/discounts)
        sku_rule, product_rule = product_rules(line.product_id, line.sku_id)
        shares = line_shares(
            paid_fen=line.amount_fen,
            quantity=line.quantity,
            chain=chain,
            levels=settings.levels,
            default_rule=default,
            product_rule=product_rule,
            sku_rule=sku_rule,
        )
        if not shares:
            continue
        # The payout cap, again (rules saved before it existed): level 3 gives way first.
        kept = trim_to_cap(
            line.amount_fen,
            settings.payout_cap_bp,
            [(f"level_{share.level}", share.amount_fen) for share in shares],
        )
        out += [
            EarningRow(
                order_line_id=line.id,
                distributor_id=share.distributor_id,
                kind=f"level_{share.level}",
                amount_fen=amount,
                rule_source=share.source[:64],
                note=(
                    share.explanation[:200]
                    if amount == share.amount_fen
                    else with_trim_note(
                        share.explanation, settings.payout_cap_bp, share.amount_fen - amount
                    )
                ),
            )
            for share, amount in zip(shares, kept, strict=True)
            if amount > 0  # trimmed to nothing: that level earns nothing on this line
        ]
    return out
