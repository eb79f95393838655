"""The commission simulator: who would earn what on one SKU, and why, without writing.

Given a SKU, a quantity and either a buyer (their binding, or themself with self-purchase
commission, decides level 1, as when an order is placed) or an explicit chain of
distributors (level 1 first), it runs exactly the engine's arithmetic
(``rules.line_shares`` with the rules loaded by ``distribution.levels``) and explains each level:
the distributor, the amount, the rule that matched and the sum behind it, or why the
level earns nothing (nobody there, not active, beyond the configured levels, excluded).

Rules about to be saved can be previewed: ``Preview`` replaces the shop's levels, default
rates or self-purchase setting, and/or the product's (or the SKU's) rule, for this one
calculation only. Nothing is written: the function only reads, and the edges that call it
roll the session back afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import select

from app import regions
from app.accounts.models import User
from app.accounts.names import display_name
from app.catalog.models import Sku
from app.cloud.dividends import RegionPreview, capped_dividends, preview_region_dividends
from app.cloud.price_difference import chain_steps
from app.cloud.price_difference import line_shares as difference_shares
from app.cloud.pricing import level_names
from app.core.money import format_yuan
from app.distribution.admin_settings import check_levels, check_rule
from app.distribution.attribution import buyer_chain
from app.distribution.binding import may_bind
from app.distribution.distributors import (
    DistributionError,
    ancestors,
    get_distribution_settings,
)
from app.distribution.levels import default_rule, grade_rule, product_rules
from app.distribution.models import Distributor, RefTouch
from app.distribution.payout_cap import trim_to_cap, with_trim_note
from app.distribution.rules import (
    MAX_LEVELS,
    NONE,
    PERCENT,
    Beneficiary,
    Rule,
    format_bp,
    line_shares,
    resolve_rule,
)
from app.earnings.plan import EarningsPlan, plan_for_seller
from app.extensions import db

MAX_QUANTITY = 10_000
STATUS_WHY = {
    "pending": "分销员待审核，该级佣金归商家",
    "disabled": "分销员已停用，该级佣金归商家",
    "rejected": "分销员申请被拒绝，该级佣金归商家",
}


@dataclass(frozen=True)
class Preview:
    """Unsaved rules to try: any field left None keeps what is saved."""

    levels: int | None = None
    self_purchase: bool | None = None
    default_bp: tuple[int, int, int] | None = None
    rule_mode: str | None = None  # percent / fixed / none: the product's (or SKU's) rule
    rule_values: tuple[int, int, int] = (0, 0, 0)
    rule_for_sku: bool = False  # the previewed rule is the SKU's rather than the product's


@dataclass(frozen=True)
class SimulatedLevel:
    """One level of the result."""

    level: int
    distributor_id: int | None
    distributor: str  # for people: "张三（分销员）" or "—"
    amount_fen: int
    rule_source: str  # which rule matched ("" when nobody earns at this level)
    explanation: str  # the arithmetic, or why nothing is earned


@dataclass(frozen=True)
class Simulation:
    """What an order of ``quantity`` × SKU would pay, level by level."""

    sku_id: int
    product_id: int
    title: str
    quantity: int
    paid_fen: int
    levels: int
    chain_source: str  # how level 1 was found, in words
    rows: list[SimulatedLevel]
    notes: list[str] = field(default_factory=list)
    # 级差 when level 1 is an ordering merchant (app/cloud/price_difference.py), else None.
    price_differences: DifferencePreview | None = None
    # Region dividends when a shipping district was given (app/cloud/dividends.py).
    region_dividends: RegionPreview | None = None
    payout_cap_bp: int = 0
    cap_trimmed_fen: int = 0  # what the payout cap took off commissions and dividends

    @property
    def total_fen(self) -> int:
        """Σ commission of every level."""
        return sum(row.amount_fen for row in self.rows)

    @property
    def price_difference_fen(self) -> int:
        """Σ price differences paid under the current precedence."""
        return self.price_differences.total_fen if self.price_differences else 0

    @property
    def region_dividend_fen(self) -> int:
        """Σ region dividends of the shipping district's agents."""
        return self.region_dividends.total_fen if self.region_dividends else 0

    @property
    def merchant_keeps_fen(self) -> int:
        """What stays with the merchant of the line's paid amount."""
        return self.paid_fen - self.total_fen - self.price_difference_fen - self.region_dividend_fen


def _label(d: Distributor | None) -> str:
    """``演示·小美（分销员）``: staff read names, the code is on the distributor's page."""
    if d is None:
        return "—"
    return f"{display_name(d.user.nickname if d.user else '', d.user_id)}（分销员）"


def _buyer_chain(
    buyer_id: int, levels: int, self_purchase: bool, notes: list[str]
) -> tuple[list[int | None], str]:
    """Distributor ids at levels 1.. for ``buyer_id`` (None where nobody stands), as the
    order would be attributed (``attribution.buyer_chain``), and how level 1 was found."""
    found, own = buyer_chain(buyer_id, levels, self_purchase)
    how = "买家本人（自购返佣）" if own else "买家当前绑定的分销员"
    if not found and get_distribution_settings().bind_mode == "first_payment":
        # Bind-on-first-payment: the last ref seen binds when the order is paid.
        touch = db.session.get(RefTouch, buyer_id)
        candidate = db.session.get(Distributor, touch.distributor_id) if touch else None
        if candidate is not None and may_bind(buyer_id, candidate):
            above = ancestors(candidate.id, levels - 1)
            found = [(1, candidate.id)] + [(depth + 1, a) for depth, a in above]
            how = "买家最近访问的推广链接（首次付款时绑定）"
    if not found:
        notes.append("买家没有绑定分销员，也不是自购返佣的分销员：这笔订单不产生分销佣金。")
        return [], "无"
    at = dict(found)
    return [at.get(level) for level in range(1, levels + 1)], how


def simulate(
    sku_id: int,
    quantity: int,
    *,
    buyer_id: int | None = None,
    chain: list[int] | None = None,
    paid_fen: int | None = None,
    preview: Preview | None = None,
    district_code: str | None = None,
) -> Simulation:
    """Who would earn what for ``quantity`` × SKU ``sku_id``; writes nothing.

    Exactly one of ``buyer_id`` and ``chain`` (distributor ids, level 1 first, at most 3).
    ``paid_fen`` is what the customer pays for the line (default: price × quantity, no
    discount). ``district_code`` (GB/T 2260), when given, is the shipping district: the
    region dividends its province, city and district agents would earn are added, by
    the payment path's own rule (``dividends.line_dividends``). Raises
    ``DistributionError`` (404/422) for an unknown SKU, buyer, distributor or district
    or a bad input.
    """
    preview = preview or Preview()
    sku = db.session.get(Sku, sku_id)
    if sku is None:
        raise DistributionError("not_found", "SKU 不存在", 404)
    if not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise DistributionError("invalid_quantity", f"数量需在 1 到 {MAX_QUANTITY} 之间", 422)
    if (buyer_id is None) == (chain is None):
        raise DistributionError("invalid_chain", "请选择买家，或填写分销员链条（二选一）", 422)
    base = sku.price_fen * quantity if paid_fen is None else paid_fen
    if base < 0:
        raise DistributionError("invalid_amount", "实付金额不能为负数", 422)
    if district_code and regions.resolve(str(district_code)) is None:
        raise DistributionError("invalid_district", "请选择正确的收货省市区", 422)

    settings = get_distribution_settings()
    levels = check_levels(preview.levels) if preview.levels is not None else settings.levels
    self_purchase = (
        preview.self_purchase if preview.self_purchase is not None else settings.self_purchase
    )
    default = default_rule()
    if preview.default_bp is not None:
        _mode, values = check_rule(PERCENT, list(preview.default_bp))
        default = Rule(PERCENT, values, "店铺默认（预览）")
    sku_rule, product_rule = product_rules(sku.product_id, sku.id)
    if preview.rule_mode is not None:
        mode, values = check_rule(preview.rule_mode, list(preview.rule_values))
        if preview.rule_for_sku:
            sku_rule = Rule(mode, values, "SKU 规则（预览）")
        else:
            product_rule = Rule(mode, values, "商品规则（预览）")

    notes: list[str] = []
    if not settings.enabled:
        notes.append("分销功能未启用：实际订单不会产生佣金，以下为启用后的结果。")
    if buyer_id is not None:
        if db.session.get(User, buyer_id) is None:
            raise DistributionError("not_found", "买家不存在", 404)
        ids, chain_source = _buyer_chain(buyer_id, levels, self_purchase, notes)
    else:
        if not chain or len(chain) > MAX_LEVELS:
            raise DistributionError("invalid_chain", "分销员链条需为 1 到 3 个分销员编号", 422)
        if len(set(chain)) != len(chain):
            raise DistributionError("invalid_chain", "链条中同一分销员出现了多次", 422)
        ids, chain_source = list(chain), "指定的分销员链条"
    people = {
        d.id: d
        for d in db.session.scalars(
            select(Distributor).where(Distributor.id.in_([i for i in ids if i is not None]))
        )
    }
    for i in ids:
        if i is not None and i not in people:
            raise DistributionError("not_found", f"分销员 #{i} 不存在", 404)

    beneficiaries = [
        Beneficiary(level, people[i].id, grade_rule(people[i].grade))
        for level, i in enumerate(ids, start=1)
        if i is not None and people[i].status == "active" and level <= levels
    ]
    shares = {
        s.level: s
        for s in line_shares(
            paid_fen=base,
            quantity=quantity,
            chain=beneficiaries,
            levels=levels,
            default_rule=default,
            product_rule=product_rule,
            sku_rule=sku_rule,
        )
    }
    by_level = {b.level: b for b in beneficiaries}
    rows = []
    for level in range(1, max(levels, len(ids)) + 1):
        who_id = ids[level - 1] if level <= len(ids) else None
        who = people.get(who_id) if who_id is not None else None
        if level > levels:
            why = f"超出设置的 {levels} 级分销，不计佣金"
            rows.append(SimulatedLevel(level, who_id, _label(who), 0, "", why))
            continue
        if who is None:
            why = "没有这一级的分销员，该级佣金归商家" if ids else "无分销员"
            rows.append(SimulatedLevel(level, None, "—", 0, "", why))
            continue
        if who.status != "active":
            rows.append(SimulatedLevel(level, who.id, _label(who), 0, "", STATUS_WHY[who.status]))
            continue
        share = shares.get(level)
        if share is not None:
            rows.append(
                SimulatedLevel(
                    level, who.id, _label(who), share.amount_fen, share.source, share.explanation
                )
            )
            continue
        rule = resolve_rule(sku_rule, product_rule, by_level[level].grade_rule, default)
        if rule.mode == NONE:
            why = "该商品不参与分佣"
        elif rule.mode == PERCENT:
            value = rule.values[level - 1]
            why = f"实付 {base} 分 × {format_bp(value)} 不足 1 分" if value else "该级比例为 0"
        else:
            why = "该级固定佣金为 0"
        rows.append(SimulatedLevel(level, who.id, _label(who), 0, rule.source, why))

    # Cloud distribution: the payment path's precedence plan, for the level-1 seller.
    plan = plan_for_seller(ids[0] if ids else None)
    differences = simulate_differences(sku, quantity, base, plan)
    if differences is not None:
        notes.append(differences.note)
        if not plan.commissions:
            rows = [
                SimulatedLevel(
                    r.level, r.distributor_id, r.distributor, 0, r.rule_source, "级差优先，不计佣金"
                )
                if r.amount_fen
                else r
                for r in rows
            ]

    dividends = None
    if district_code:
        dividends = preview_region_dividends(
            str(district_code),
            sku.product_id,
            base,
            buyer_id=buyer_id,
            self_purchase=self_purchase,
        )
    rows, dividends, trimmed = _apply_cap(base, settings.payout_cap_bp, rows, dividends)
    if trimmed:
        notes.append(
            f"超出分佣上限 {format_bp(settings.payout_cap_bp)}：共扣减 {format_yuan(trimmed)}"
            "（按区、市、省、三级、二级、一级的顺序扣减），与实际入账一致。"
        )

    return Simulation(
        sku_id=sku.id,
        product_id=sku.product_id,
        title=f"{sku.product.title}{'（' + sku.spec_text + '）' if sku.spec_text else ''}",
        quantity=quantity,
        paid_fen=base,
        levels=levels,
        chain_source=chain_source,
        rows=rows,
        notes=notes,
        price_differences=differences,
        region_dividends=dividends,
        payout_cap_bp=settings.payout_cap_bp,
        cap_trimmed_fen=trimmed,
    )


def _apply_cap(
    paid_fen: int, cap_bp: int, rows: list[SimulatedLevel], dividends: RegionPreview | None
) -> tuple[list[SimulatedLevel], RegionPreview | None, int]:
    """The payout cap as the pipeline applies it: commissions trimmed first on their
    own (``levels.commission_rows``), then the dividends against what they leave
    (``dividends.capped_dividends``), by the same functions. Returns the rows, the
    dividends and the total trimmed."""
    earning = [row for row in rows if row.amount_fen > 0]
    kept = trim_to_cap(paid_fen, cap_bp, [(f"level_{r.level}", r.amount_fen) for r in earning])
    trimmed = 0
    after: dict[int, SimulatedLevel] = {}
    for row, amount in zip(earning, kept, strict=True):
        if amount != row.amount_fen:
            cut = row.amount_fen - amount
            trimmed += cut
            after[row.level] = replace(
                row,
                amount_fen=amount,
                explanation=with_trim_note(row.explanation, cap_bp, cut),
            )
    rows = [after.get(row.level, row) if row.amount_fen > 0 else row for row in rows]
    if dividends is not None and dividends.shares:
        commissions = [(f"level_{r.level}", r.amount_fen) for r in rows if r.amount_fen > 0]
        shares = capped_dividends(paid_fen, cap_bp, commissions, dividends.shares)
        trimmed += dividends.total_fen - sum(share.amount_fen for share in shares)
        dividends = replace(dividends, shares=shares)
    return rows, dividends, trimmed


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
    sku: Sku, quantity: int, paid_fen: int, plan: EarningsPlan
) -> DifferencePreview | None:
    """What a retail order of ``quantity`` × ``sku`` would earn in price differences under
    ``plan`` (``plan.plan_for_seller``), by the payment path's own arithmetic
    (``price_difference.line_shares``); None when it does not go through a merchant."""
    merchant = plan.merchant
    if merchant is None:
        return None
    names = level_names()
    shares, hq = difference_shares(
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
