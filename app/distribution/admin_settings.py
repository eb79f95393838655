"""The distribution rules staff set: shop settings, distributor grades, and product/SKU
commission rules. Each form is checked here, so the admin pages and the Open API refuse
the same input with the same Chinese message; services flush, never commit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select, true

from app.catalog.models import Product, Sku
from app.catalog.services import MAX_PRICE_FEN
from app.core.money import format_yuan
from app.distribution.admin_input import (
    MAX_COUNT,
    MAX_DAILY_WITHDRAWALS,
    MAX_DAYS,
    MAX_GRADE_RANK,
    MAX_HOLD_DAYS,
    SettingsError,
    read_bool,
    read_bp,
    read_choice,
    read_fen,
    read_int,
)
from app.distribution.admin_labels import (
    BIND_MODE_LABELS,
    JOIN_MODE_LABELS,
    LEVEL_LABELS,
    MODE_LABELS,
    PAYOUT_CHANNEL_LABELS,
)
from app.distribution.distributors import DistributionError, get_distribution_settings
from app.distribution.models import CommissionRule, DistributionSettings, Distributor, Grade
from app.distribution.payout_cap import (
    LEGAL_CAP_BP,
    SHOP,
    RateRefused,
    cap_guard,
    product_scope,
    refuse_raise,
    rule_bp,
)
from app.distribution.rules import (
    BP_DENOMINATOR,
    FIXED,
    MAX_LEVELS,
    NONE,
    PERCENT,
    RULE_MODES,
    format_bp,
)
from app.extensions import db
from app.ledger.settlement import reschedule_all

# --- settings ---------------------------------------------------------------------------

RATE_WARNING_BP = 5000  # total default commission above 50% of the sale deserves a warning

# field -> (label, reader). The readers refuse out-of-range values with a Chinese message.
SETTINGS_FIELDS: dict[str, tuple[str, object]] = {
    "enabled": ("启用分销", read_bool),
    "levels": ("分销层级", None),  # special: the legal limit has its own message
    "self_purchase": ("自购返佣", read_bool),
    "join_mode": ("成为分销员的方式", lambda d, f, lbl: read_choice(d, f, lbl, JOIN_MODE_LABELS)),
    "join_threshold_fen": ("自动成为分销员的累计消费金额", read_fen),
    "bind_mode": ("客户绑定时机", lambda d, f, lbl: read_choice(d, f, lbl, BIND_MODE_LABELS)),
    "binding_days": ("绑定有效期（天）", lambda d, f, lbl: read_int(d, f, lbl, 0, MAX_DAYS)),
    "protection_days": ("保护期（天）", lambda d, f, lbl: read_int(d, f, lbl, 0, MAX_DAYS)),
    "protection_extend_days": (
        "付款后延长保护期（天）",
        lambda d, f, lbl: read_int(d, f, lbl, 0, MAX_DAYS),
    ),
    "settlement_hold_days": (
        "结算冻结期（天）",
        lambda d, f, lbl: read_int(d, f, lbl, 0, MAX_HOLD_DAYS),
    ),
    "level1_bp": ("一级佣金比例", read_bp),
    "level2_bp": ("二级佣金比例", read_bp),
    "level3_bp": ("三级佣金比例", read_bp),
    "withdraw_min_fen": ("最低提现金额", read_fen),
    "withdraw_fee_bp": ("提现手续费比例", read_bp),
    "withdraw_daily_limit": (
        "每日提现次数上限",
        lambda d, f, lbl: read_int(d, f, lbl, 0, MAX_DAILY_WITHDRAWALS),
    ),
    "payout_channel": (
        "提现打款方式",
        lambda d, f, lbl: read_choice(d, f, lbl, PAYOUT_CHANNEL_LABELS),
    ),
    "payout_cap_bp": ("分佣上限", read_bp),
}
# Only the owner changes these (app/distribution/payout_cap.py).
OWNER_ONLY_FIELDS = ("payout_cap_bp",)


def check_levels(value: object) -> int:
    """1, 2 or 3 levels; 4 and more are refused as pyramid selling (传销)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError("levels", "invalid_number", "分销层级应为 1、2 或 3")
    if value > MAX_LEVELS:
        raise SettingsError(
            "levels",
            "too_many_levels",
            f"分销层级最多 {MAX_LEVELS} 级：超过三级计酬可能构成传销（《禁止传销条例》），"
            "微信也会封禁此类账号",
        )
    if value < 1:
        raise SettingsError("levels", "out_of_range", "分销层级至少 1 级")
    return value


@dataclass(frozen=True)
class SettingsResult:
    """The saved settings and what the merchant should be warned about."""

    settings: DistributionSettings
    warnings: list[str]


def settings_warnings(settings: DistributionSettings) -> list[str]:
    """Warnings for settings that are allowed but risky (shown on the page and in the API)."""
    warnings = []
    if settings.levels == 3:
        warnings.append(
            "已选择三级分销：三级及以上且人数达到三十人以上的计酬组织可能被认定为传销，"
            "微信也可能封禁账号。建议使用一级或二级分销。"
        )
    rates = [settings.level1_bp, settings.level2_bp, settings.level3_bp][: settings.levels]
    if sum(rates) > RATE_WARNING_BP:
        warnings.append(
            f"各级默认佣金合计 {_percent(sum(rates))}，超过商品实付金额的 50%，请确认利润足够。"
        )
    if settings.payout_cap_bp > LEGAL_CAP_BP:
        warnings.append(
            f"分佣上限设为 {_percent(settings.payout_cap_bp)}，超过 30%：《直销管理条例》第二十四条"
            "规定直销员的报酬总额不得超过其本人直接向消费者销售产品收入的 30%，"
            "请确认符合规定。"
        )
    if settings.withdraw_fee_bp > 2000:
        warnings.append(f"提现手续费 {_percent(settings.withdraw_fee_bp)}，分销员可能难以接受。")
    return warnings


def _percent(bp: int) -> str:
    return format_bp(bp)


def update_settings(data: Mapping[str, object], *, owner: bool = False) -> SettingsResult:
    """Validate and save the keys given in ``data`` (others stay as they are); flushes.

    Values are typed (int, bool, str): money in fen, rates in basis points, days as
    integers. Raises ``SettingsError`` (422, with the field) on the first bad value, before
    anything changes. There is no join fee to set, on purpose: joining is always free.
    Only the ``owner`` may change the payout cap or raise a default rate (403
    ``owner_required`` / ``rate_above_default``); a change whose worst case breaks the
    cap is refused (422 ``payout_cap_exceeded``, ``payout_cap.cap_guard``).
    """
    unknown = sorted(set(data) - set(SETTINGS_FIELDS))
    if unknown:
        raise SettingsError(unknown[0], "unknown_field", f"未知的设置项：{unknown[0]}")
    clean: dict[str, object] = {}
    for field, (label, reader) in SETTINGS_FIELDS.items():
        if field not in data:
            continue
        clean[field] = check_levels(data[field]) if reader is None else reader(data, field, label)
    settings = get_distribution_settings()
    for field in OWNER_ONLY_FIELDS:
        if not owner and field in clean and clean[field] != getattr(settings, field):
            label = SETTINGS_FIELDS[field][0]
            raise RateRefused("owner_required", f"只有店主可以修改{label}", 403, field)
    refuse_raise(
        owner,
        (
            # a default is its own yardstick: staff may lower it, never raise it
            (name, f"默认{LEVEL_LABELS[level]}佣金", clean[name], current, current)
            for level in range(1, MAX_LEVELS + 1)
            if (name := f"level{level}_bp") in clean
            and (current := getattr(settings, name)) is not None
        ),
    )
    cap_changed = "payout_cap_bp" in clean and clean["payout_cap_bp"] != settings.payout_cap_bp
    field = "payout_cap_bp" if cap_changed else _first_rate_field(clean)
    # A save that leaves the rates alone (say, the withdrawal fee) is not refused for
    # defaults saved before the cap existed; one that sets them must fit.
    rates_set = any(
        name in clean and clean[name] != getattr(settings, name)
        for name in ("levels", "level1_bp", "level2_bp", "level3_bp")
    )
    hold_changed = clean.get("settlement_hold_days", settings.settlement_hold_days) != (
        settings.settlement_hold_days
    )
    with cap_guard(*([SHOP] if rates_set else []), field=field, everything=cap_changed):
        for name, value in clean.items():
            setattr(settings, name, value)
    if hold_changed:  # what is pending on completed orders now settles at another date
        reschedule_all(settings.settlement_hold_days)
    return SettingsResult(settings, settings_warnings(settings))


def _first_rate_field(clean: Mapping[str, object]) -> str:
    """The field a cap refusal of a settings change points at (the rates, else levels)."""
    for name in ("level1_bp", "level2_bp", "level3_bp", "levels"):
        if name in clean:
            return name
    return ""


def settings_values(settings: DistributionSettings) -> dict[str, object]:
    """Every setting by name (what the API returns and the form starts from)."""
    return {field: getattr(settings, field) for field in SETTINGS_FIELDS}


# --- grades -----------------------------------------------------------------------------

GRADE_FIELDS: dict[str, tuple[str, object]] = {
    "name": ("等级名称", None),
    "rank": ("等级高低", lambda d, f, lbl: read_int(d, f, lbl, 0, MAX_GRADE_RANK)),
    "level1_bp": ("一级佣金比例", read_bp),
    "level2_bp": ("二级佣金比例", read_bp),
    "level3_bp": ("三级佣金比例", read_bp),
    "upgrade_team_sales_fen": ("升级条件：团队累计销售额", read_fen),
    "upgrade_direct_count": (
        "升级条件：直属下级分销员人数",
        lambda d, f, lbl: read_int(d, f, lbl, 0, MAX_COUNT),
    ),
}


def _grade_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError("name", "required", "请填写等级名称")
    name = value.strip()
    if len(name) > 32 or "\x00" in name:
        raise SettingsError("name", "too_long", "等级名称最多 32 个字")
    return name


def save_grade(
    data: Mapping[str, object], grade: Grade | None = None, *, owner: bool = False
) -> Grade:
    """Create a grade (``grade`` None) or change the keys given; flushes.

    The name is unique (checked here for the message; the unique key is the final guard,
    so the edge still handles ``IntegrityError`` from a concurrent save). A grade with no
    upgrade condition is only ever given by staff; conditions are met when every one set
    is reached (team sales and direct sub-distributors). Staff may not raise a rate above
    the shop default (the ``owner`` may); no grade may break the payout cap.
    """
    unknown = sorted(set(data) - set(GRADE_FIELDS))
    if unknown:
        raise SettingsError(unknown[0], "unknown_field", f"未知的字段：{unknown[0]}")
    if grade is None and "name" not in data:
        raise SettingsError("name", "required", "请填写等级名称")
    clean: dict[str, object] = {}
    for field, (label, reader) in GRADE_FIELDS.items():
        if field in data:
            clean[field] = (
                _grade_name(data[field]) if reader is None else reader(data, field, label)
            )
    if "name" in clean:
        taken = select(Grade.id).where(Grade.name == clean["name"])
        if grade is not None:
            taken = taken.where(Grade.id != grade.id)
        if db.session.scalar(taken) is not None:
            raise SettingsError("name", "name_taken", f"等级名称“{clean['name']}”已存在", 409)
    defaults = get_distribution_settings()
    refuse_raise(
        owner,
        (
            (
                f"level{level}_bp",
                f"等级{LEVEL_LABELS[level]}佣金",
                new,
                getattr(grade, f"level{level}_bp") if grade is not None else None,
                getattr(defaults, f"level{level}_bp"),
            )
            for level in range(1, MAX_LEVELS + 1)
            if (new := clean.get(f"level{level}_bp")) is not None
        ),
    )
    rate_fields = [f for f in ("level1_bp", "level2_bp", "level3_bp") if f in clean]
    with cap_guard(SHOP, field=rate_fields[0] if rate_fields else ""):
        if grade is None:
            grade = Grade()
            db.session.add(grade)
        for field, value in clean.items():
            setattr(grade, field, value)
    return grade


def delete_grade(grade: Grade) -> None:
    """Delete a grade nobody holds; refuse (409) while distributors still hold it."""
    holders = db.session.scalar(
        select(func.count()).select_from(Distributor).where(Distributor.grade_id == grade.id)
    )
    if holders:
        raise DistributionError(
            "grade_in_use", f"还有 {holders} 名分销员是该等级，请先调整他们的等级", 409
        )
    db.session.delete(grade)
    db.session.flush()


def list_grades() -> list[Grade]:
    """Grades, lowest rank first."""
    return list(db.session.scalars(select(Grade).order_by(Grade.rank, Grade.id)))


# --- product and SKU commission rules ---------------------------------------------------


def rules_of(product_id: int) -> list[CommissionRule]:
    """The product's rule (``sku_id`` None) first, then its SKU rules."""
    return list(
        db.session.scalars(
            select(CommissionRule)
            .where(CommissionRule.product_id == product_id)
            .order_by(CommissionRule.sku_id.is_not(None), CommissionRule.sku_id)
        )
    )


def check_rule(mode: object, values: object) -> tuple[str, tuple[int, int, int]]:
    """Validate a rule: percent in bp (0..10000), fixed in fen per unit (≥ 0), or none."""
    if mode not in RULE_MODES:
        raise SettingsError("mode", "invalid_choice", "分佣方式只能是 percent、fixed 或 none")
    if mode == NONE:
        return NONE, (0, 0, 0)
    if not isinstance(values, list | tuple) or len(values) != MAX_LEVELS:
        raise SettingsError("values", "invalid_values", "请填写一、二、三级的佣金")
    clean = []
    for level, value in enumerate(values, start=1):
        field = f"level{level}"
        label = f"{LEVEL_LABELS[level]}佣金"
        if not isinstance(value, int) or isinstance(value, bool):
            raise SettingsError(field, "invalid_number", f"{label}应为整数")
        if value < 0:
            raise SettingsError(field, "out_of_range", f"{label}不能为负数")
        if mode == PERCENT and value > BP_DENOMINATOR:
            raise SettingsError(field, "out_of_range", f"{label}比例不能超过 100%")
        if mode == FIXED and value > MAX_PRICE_FEN:
            raise SettingsError(field, "out_of_range", f"{label}金额过大")
        clean.append(value)
    return mode, (clean[0], clean[1], clean[2])


def save_commission_rule(
    product: Product,
    sku_id: int | None,
    mode: str,
    values: tuple[int, int, int] | list[int],
    *,
    owner: bool = False,
) -> CommissionRule:
    """Set the product's rule (``sku_id`` None) or one SKU's rule; flushes.

    A SKU rule wins over the product rule, which wins over grades and the shop default.
    Staff may not raise a level above the shop default (a fixed amount counts against the
    lowest price it applies to); the ``owner`` may. A rule whose worst case breaks the
    payout cap is refused (``payout_cap_exceeded``), whoever saves it.
    """
    mode, clean = check_rule(mode, values)
    if sku_id is not None:
        sku = db.session.get(Sku, sku_id)
        if sku is None or sku.product_id != product.id:
            raise SettingsError("sku_id", "not_found", "该 SKU 不属于这个商品", 404)
    condition = (
        CommissionRule.sku_id.is_(None) if sku_id is None else CommissionRule.sku_id == sku_id
    )
    rule = db.session.scalar(
        select(CommissionRule).where(CommissionRule.product_id == product.id, condition)
    )
    prices = db.session.scalars(
        select(Sku.price_fen).where(
            Sku.product_id == product.id, true() if sku_id is None else Sku.id == sku_id
        )
    ).all()
    lowest = min(prices) if prices else None
    new_bp = rule_bp(mode, clean, lowest)
    old_bp = rule_bp(rule.mode, (rule.level1, rule.level2, rule.level3), lowest) if rule else None
    defaults = get_distribution_settings()
    refuse_raise(
        owner,
        (
            (
                f"level{level}",
                f"{LEVEL_LABELS[level]}佣金",
                new_bp[level - 1],
                old_bp[level - 1] if old_bp is not None else None,
                getattr(defaults, f"level{level}_bp"),
            )
            for level in range(1, defaults.levels + 1)
        ),
    )
    with cap_guard(product_scope(product.id), field="values"):
        if rule is None:
            rule = CommissionRule(product_id=product.id, sku_id=sku_id)
            db.session.add(rule)
        rule.mode = mode
        rule.level1, rule.level2, rule.level3 = clean
    return rule


def delete_commission_rule(product: Product, sku_id: int | None) -> bool:
    """Remove the product's (or a SKU's) rule: grades and the shop default apply again."""
    condition = (
        CommissionRule.sku_id.is_(None) if sku_id is None else CommissionRule.sku_id == sku_id
    )
    rule = db.session.scalar(
        select(CommissionRule).where(CommissionRule.product_id == product.id, condition)
    )
    if rule is None:
        return False
    # Grades and the shop default apply again (or the product rule, for a SKU): refused
    # only if that makes the product's worst case worse and over the cap.
    with cap_guard(field="values"):
        db.session.delete(rule)
    return True


def describe_rule(rule: CommissionRule) -> str:
    """``按比例 一级 10% · 二级 5%`` / ``固定金额 一级 ¥2.00 ...`` / ``不参与分佣``."""
    if rule.mode == NONE:
        return MODE_LABELS[NONE]
    values = (rule.level1, rule.level2, rule.level3)
    show = _percent if rule.mode == PERCENT else format_yuan
    parts = [f"{LEVEL_LABELS[i + 1]} {show(v)}" for i, v in enumerate(values)]
    return f"{MODE_LABELS[rule.mode]} " + " · ".join(parts)
