"""The payout cap (分佣上限): what one order line may pay out, checked when a rate is saved
and enforced again when earnings are written.

The rule. Everything one order line pays out, commission levels 1-3 plus the province,
city and district agents' dividends, adds up to at most::

    cap_fen = floor(paid_fen × payout_cap_bp / 10000)

``paid_fen`` is what the customer paid for the line (after discounts, without shipping:
the base of every commission). ``payout_cap_bp`` is the owner's setting
(``DistributionSettings.payout_cap_bp``), 0..10000, default 3000: 30% is the line China's
直销管理条例 (art. 24) draws for direct-selling pay. Price differences (级差) are left out on
purpose: an ordering merchant's difference is the margin between two purchase prices (it
bought lower than it sells), not a payout taken from the sale, and precedence already
decides between it and commissions (app/cloud/price_difference.py).

Guard 1, when a rate is saved (``cap_guard``). Every service that saves a rate (shop
defaults, levels, grades, product and SKU rules, agent rates and product overrides, the
cap itself) runs its change inside ``cap_guard``: it takes the worst cases before, applies
the change, flushes, takes them again and raises ``PayoutCapExceeded`` (422,
``payout_cap_exceeded``) naming each case that breaks the cap, e.g.
"一级 40% + 二级 10% + 省 3% + 市 2% + 区 1% = 56%，超过上限 30%". The edge rolls back.
A worst case is, for the shop's defaults and for each product with its own rule or
dividend override: per commission level actually enabled, the highest rate that could
apply to one line (SKU rule, else product rule, else the highest of the shop default and
every grade, since a beneficiary may hold any grade), plus the province + city + district
dividend rates when region dividends are on. A fixed per-unit rule counts at its worst:
fen per unit against the SKU's price, as bp rounded up (the lowest price is the worst).
A save is refused for the cases it touches (the product saved; the shop context for
shop-wide settings) and for any case it makes worse; a rule saved before the cap existed
elsewhere does not block unrelated saves (the earning job trims it). Lowering the cap
checks every case: the owner is shown the rules to lower first, rather than the cap
silently trimming them.

Guard 2, when earnings are written (``trim_to_cap``). Rules saved before the cap existed
may still break it, so the earning job trims each line's earnings from the lowest priority
up: district, city, province, level 3, level 2, level 1, until the sum is at most
``cap_fen``; the trimmed entry's note says by how much (``trim_note``). Commissions are
written first (trimmed on their own), then dividends against what is left of the cap: the
same result as trimming all of them together, since dividends are trimmed first anyway.
The simulator shows the same trimming with the same function.

Staff without the owner role may not raise a rate above the shop default
(``refuse_raise``, 403 ``rate_above_default``); the owner may.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select

from app.catalog.models import Product, Sku
from app.cloud.models import AGENT_LEVELS, AgentProductRate, CloudSettings
from app.core.money import format_yuan
from app.distribution.distributors import DistributionError, get_distribution_settings
from app.distribution.models import CommissionRule, Grade
from app.distribution.rules import BP_DENOMINATOR, FIXED, NONE, floor_commission, format_bp
from app.extensions import db

DEFAULT_CAP_BP = 3000
LEGAL_CAP_BP = 3000  # 直销管理条例 第二十四条: direct-selling pay at most 30% of the sale
# Trimmed first to last. Region dividends go before commissions; within each, the
# farthest from the sale (district, level 3) goes first.
TRIM_ORDER = ("district", "city", "province", "level_3", "level_2", "level_1")
PART_LABELS = {
    "level_1": "一级",
    "level_2": "二级",
    "level_3": "三级",
    "province": "省",
    "city": "市",
    "district": "区",
}
LEVEL_NAMES = {1: "一级", 2: "二级", 3: "三级"}
AGENT_LEVEL_NAMES = {"province": "省级", "city": "市级", "district": "区县"}
MAX_LISTED = 5  # offending cases named in one message


class RateRefused(DistributionError):
    """A rate refused by the cap or by the owner-only rule, naming the field it concerns."""

    def __init__(self, code: str, message: str, status: int, field: str = ""):
        super().__init__(code, message, status)
        self.field = field


class PayoutCapExceeded(RateRefused):
    """A save whose worst case would pay out more than the cap (422)."""

    def __init__(self, message: str, field: str = "", offenders: Sequence[WorstCase] = ()):
        super().__init__("payout_cap_exceeded", message, 422, field)
        self.offenders = list(offenders)


class RateAboveDefault(RateRefused):
    """Staff (not the owner) raising a rate above the shop default (403)."""

    def __init__(self, message: str, field: str = ""):
        super().__init__("rate_above_default", message, 403, field)


# --- the earning side: trimming one line --------------------------------------------------


def cap_fen(paid_fen: int, cap_bp: int) -> int:
    """The most one line paid ``paid_fen`` may pay out: rounded down to the fen."""
    return floor_commission(paid_fen, cap_bp)


def trim_to_cap(paid_fen: int, cap_bp: int, parts: Sequence[tuple[str, int]]) -> list[int]:
    """What each of a line's earnings keeps under the cap, in the order given.

    ``parts`` are (kind, fen) with kind one of ``TRIM_ORDER`` (``level_1`` .. ``district``;
    a kind may appear more than once). The excess over ``cap_fen`` is taken from the lowest
    priority up (district, city, province, level 3, level 2, level 1), each part down to 0
    before the next is touched. Integer arithmetic only.
    """
    kept = [amount for _kind, amount in parts]
    excess = sum(kept) - cap_fen(paid_fen, cap_bp)
    if excess <= 0:
        return kept
    for i in sorted(range(len(parts)), key=lambda i: TRIM_ORDER.index(parts[i][0])):
        cut = min(kept[i], excess)
        kept[i] -= cut
        excess -= cut
        if excess <= 0:
            break
    return kept


def trim_note(cap_bp: int, trimmed_fen: int) -> str:
    """What an entry's note says about its trimming: 超出分佣上限 30%，扣减 ¥1.23."""
    return f"超出分佣上限 {format_bp(cap_bp)}，扣减 {format_yuan(trimmed_fen)}"


def with_trim_note(note: str, cap_bp: int, trimmed_fen: int, limit: int = 200) -> str:
    """``note`` with the trimming appended (the trimming survives the length limit)."""
    extra = trim_note(cap_bp, trimmed_fen)
    return f"{note[: max(0, limit - len(extra) - 1)]}；{extra}" if note else extra


# --- the saving side: worst cases -----------------------------------------------------------


def fixed_bp(fen_per_unit: int, price_fen: int) -> int:
    """A fixed per-unit commission as bp of the unit price, rounded up; at most 100%
    (the engine never pays more than the line). Worst case for a free SKU: 100%."""
    if fen_per_unit <= 0:
        return 0
    if price_fen <= 0:
        return BP_DENOMINATOR
    return min(BP_DENOMINATOR, -(-fen_per_unit * BP_DENOMINATOR // price_fen))


def rule_bp(mode: str, values: Sequence[int], price_fen: int | None) -> tuple[int, int, int]:
    """A rule's per-level rates in bp (fixed ones against ``price_fen``; None: no price)."""
    if mode == NONE:
        return (0, 0, 0)
    if mode == FIXED:
        if price_fen is None:
            return (0, 0, 0)
        return tuple(fixed_bp(v, price_fen) for v in values)  # type: ignore[return-value]
    return (values[0], values[1], values[2])


@dataclass(frozen=True)
class WorstCase:
    """The most one line could pay out under one set of rules, part by part, in bp."""

    key: tuple
    where: str  # "" for the shop's defaults and grades, else the product (and SKU)
    parts: tuple[tuple[str, int], ...]  # (kind, bp), level_1 first, district last

    @property
    def total_bp(self) -> int:
        """Σ of the parts."""
        return sum(bp for _kind, bp in self.parts)

    def text(self, cap_bp: int) -> str:
        """一级 40% + 二级 10% + 省 3% + 市 2% + 区 1% = 56%，超过上限 30%."""
        sums = " + ".join(f"{PART_LABELS[kind]} {format_bp(bp)}" for kind, bp in self.parts)
        head = f"{self.where}：" if self.where else "店铺默认及等级："
        return f"{head}{sums} = {format_bp(self.total_bp)}，超过上限 {format_bp(cap_bp)}"


SHOP = ("shop",)


def product_scope(product_id: int) -> tuple:
    """The key of a product's worst case (``cap_guard`` scope)."""
    return ("product", product_id)


@dataclass(frozen=True)
class ShopRates:
    """The shop-wide rates every worst case starts from."""

    levels: int
    cap_bp: int
    default: tuple[int, int, int]
    base: tuple[int, int, int]  # per level: the highest of the default and every grade
    dividends: dict[str, int] | None  # {agent level: bp}; None when region dividends are off


def _cloud_rates() -> tuple[bool, dict[str, int]]:
    row = CloudSettings.__table__.c
    settings = db.session.get(CloudSettings, 1)
    if settings is None:  # never saved: the column defaults apply
        return True, {level: row[f"{level}_bp"].default.arg for level in AGENT_LEVELS}
    return settings.agents_enabled, {
        level: getattr(settings, f"{level}_bp") for level in AGENT_LEVELS
    }


def shop_rates() -> ShopRates:
    """The settings, grades and agent rates the worst cases use (two small queries)."""
    settings = get_distribution_settings()
    default = (settings.level1_bp, settings.level2_bp, settings.level3_bp)
    base = list(default)
    for row in db.session.execute(select(Grade.level1_bp, Grade.level2_bp, Grade.level3_bp)):
        for i, bp in enumerate(row):
            base[i] = max(base[i], bp)
    enabled, dividends = _cloud_rates()
    return ShopRates(
        settings.levels,
        settings.payout_cap_bp,
        default,
        (base[0], base[1], base[2]),
        dividends if enabled else None,
    )


def _case(key: tuple, where: str, levels_bp: Sequence[int], rates: ShopRates, div) -> WorstCase:
    parts = [(f"level_{i + 1}", levels_bp[i]) for i in range(rates.levels)]
    if div is not None:
        parts += [(level, div[level]) for level in AGENT_LEVELS]
    return WorstCase(key, where, tuple(parts))


def worst_cases(rates: ShopRates | None = None) -> list[WorstCase]:
    """The shop's worst case, then one per product with its own rule or dividend override.

    A product without either pays by the shop's rates, so the shop's case covers it.
    """
    rates = rates or shop_rates()
    cases = [_case(SHOP, "", rates.base, rates, rates.dividends)]
    # Plain rows, not ORM objects: a raw UPDATE in the guarded change (an upsert) must be
    # seen, not an object the identity map loaded before it.
    rules: dict[int, dict[int | None, tuple[str, tuple[int, int, int]]]] = {}
    for product_id, sku_id, mode, *values in db.session.execute(
        select(
            CommissionRule.product_id,
            CommissionRule.sku_id,
            CommissionRule.mode,
            CommissionRule.level1,
            CommissionRule.level2,
            CommissionRule.level3,
        )
    ):
        rules.setdefault(product_id, {})[sku_id] = (mode, tuple(values))
    overrides: dict[int, dict[str, int]] = {}
    for product_id, level, rate in db.session.execute(
        select(AgentProductRate.product_id, AgentProductRate.level, AgentProductRate.rate_bp)
    ):
        overrides.setdefault(product_id, {})[level] = rate
    product_ids = sorted(set(rules) | set(overrides))
    if not product_ids:
        return cases
    titles = dict(
        db.session.execute(
            select(Product.id, Product.title).where(Product.id.in_(product_ids))
        ).all()
    )
    skus: dict[int, list[Sku]] = {}
    for sku in db.session.scalars(
        select(Sku).where(Sku.product_id.in_(product_ids)).order_by(Sku.id)
    ):
        skus.setdefault(sku.product_id, []).append(sku)
    for product_id in product_ids:
        if product_id not in titles:
            continue
        div = None
        if rates.dividends is not None:
            own = overrides.get(product_id, {})
            div = {level: own.get(level, rates.dividends[level]) for level in AGENT_LEVELS}
        own_rules = rules.get(product_id, {})
        where = f"商品“{titles[product_id]}”"
        worst = None
        for sku in skus.get(product_id) or [None]:
            sku_rule = own_rules.get(sku.id) if sku is not None else None
            rule = sku_rule or own_rules.get(None)
            price = sku.price_fen if sku is not None else None
            levels_bp = rates.base if rule is None else rule_bp(rule[0], rule[1], price)
            label = where
            if sku_rule is not None:
                label = f"{where}（SKU {sku.spec_text}）"
            elif rule is not None and rule[0] == FIXED and sku is not None:
                label = f"{where}（SKU {sku.spec_text} 售价 {format_yuan(sku.price_fen)}）"
            case = _case(product_scope(product_id), label, levels_bp, rates, div)
            if worst is None or case.total_bp > worst.total_bp:
                worst = case
        cases.append(worst)
    return cases


def _refuse(offenders: list[WorstCase], cap_bp: int, field: str, intro: str = "") -> None:
    listed = "；".join(case.text(cap_bp) for case in offenders[:MAX_LISTED])
    more = f"；另有 {len(offenders) - MAX_LISTED} 项" if len(offenders) > MAX_LISTED else ""
    raise PayoutCapExceeded(f"{intro}{listed}{more}", field, offenders)


@contextmanager
def cap_guard(*scope: tuple, field: str = "", everything: bool = False) -> Iterator[None]:
    """Run a rate change and refuse it (``PayoutCapExceeded``) if it breaks the cap.

    ``scope``: the keys of the worst cases the change is about (``SHOP``,
    ``product_scope(id)``); those are refused whenever over the cap, any other case only
    when the change made it worse. ``everything``: every case counts (changing the cap).
    The body flushes or is flushed here; on refusal the caller rolls back.
    """
    before = {case.key: case.total_bp for case in worst_cases()}
    yield
    db.session.flush()
    rates = shop_rates()
    after = worst_cases(rates)
    shop_before = before.get(SHOP, 0)
    offenders = [
        case
        for case in after
        if case.total_bp > rates.cap_bp
        and (everything or case.key in scope or case.total_bp > before.get(case.key, shop_before))
    ]
    if offenders:
        intro = (
            f"分佣上限改为 {format_bp(rates.cap_bp)} 后，以下规则会超过上限，请先调低它们："
            if everything
            else ""
        )
        _refuse(offenders, rates.cap_bp, field, intro)


def refuse_raise(owner: bool, changes: Iterable[tuple[str, str, int, int | None, int]]) -> None:
    """Staff may not raise a rate above the shop default; the owner may.

    ``changes``: (field, label, new bp, old bp or None when new, shop default bp). A change
    is refused when the new rate is above the default and above what was saved before
    (so staff can still re-save a rule the owner set higher).
    """
    if owner:
        return
    for field, label, new, old, default in changes:
        if new > default and (old is None or new > old):
            raise RateAboveDefault(
                f"只有店主可以把比例调到店铺默认以上：{label} {format_bp(new)}"
                f" 高于店铺默认 {format_bp(default)}",
                field,
            )
