"""What merchant staff change in distribution: settings, grades, distributors, bindings,
product/SKU commission rules; and the list queries the admin pages and the Open API share.

Services flush, never commit, and know nothing of requests: the admin pages and the Open
API call the same functions, so both refuse the same input with the same Chinese message
(``SettingsError`` / ``DistributionError`` carry a code and, for input, the field).

Audit trail:

- distributor status changes (approve, reject, disable, enable) are ``StatusChange`` rows
  with subject ``"distributor"``, through the same conditional-UPDATE state machine as
  orders (``app.orders.states.move_status``);
- a parent change is a ``StatusChange`` row with subject ``"dist_parent"``: the old and
  the new parent's distributor id in ``from_status`` / ``to_status`` ("none" for no
  parent), the people's version in ``reason``;
- a manual rebinding is a ``BindingEvent`` (source ``staff``, actor the staff member),
  written by ``app.distribution.binding.bind``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Select, func, or_, select, true
from sqlalchemy.orm import joinedload

from app.accounts.models import User
from app.catalog.models import Product, Sku
from app.catalog.services import MAX_PRICE_FEN
from app.distribution.binding import bind
from app.distribution.distributors import (
    DistributionError,
    get_distribution_settings,
    set_parent,
)
from app.distribution.models import (
    BIND_MODES,
    DISTRIBUTOR_STATUSES,
    JOIN_MODES,
    PAYOUT_CHANNELS,
    Binding,
    BindingEvent,
    CommissionRule,
    DistributionSettings,
    Distributor,
    Grade,
    Withdrawal,
)
from app.distribution.payout_cap import (
    LEGAL_CAP_BP,
    SHOP,
    RateRefused,
    cap_guard,
    product_scope,
    refuse_raise,
    rule_bp,
)
from app.distribution.rules import BP_DENOMINATOR, FIXED, MAX_LEVELS, NONE, PERCENT, RULE_MODES
from app.extensions import db
from app.ledger.kinds import LEDGER_KINDS
from app.ledger.models import LedgerEntry
from app.orders.models import StatusChange
from app.orders.search import day_start_utc
from app.orders.states import move_status, record_creation

MAX_DAYS = 3650
MAX_HOLD_DAYS = 365
MAX_DAILY_WITHDRAWALS = 100
MAX_FEN = 100_000_000_00  # ¥100,000,000: anything above is a typo
MAX_GRADE_RANK = 1000
MAX_COUNT = 1_000_000
RATE_WARNING_BP = 5000  # total default commission above 50% of the sale deserves a warning

LEGAL_NOTE = (
    "根据《禁止传销条例》，三级及以上、人数达到三十人以上、以下线销售额或发展人头计酬的组织"
    "可能被认定为传销，微信也会封禁此类账号。本系统只对真实、已付款、未退款的销售计佣，"
    "加入分销员不收取任何费用，也不为单纯拉人头发放奖励。"
)

LEVEL_LABELS = {1: "一级", 2: "二级", 3: "三级"}
JOIN_MODE_LABELS = {
    "open": "所有人可加入",
    "apply": "申请后由商家审核",
    "threshold": "累计消费满额自动成为分销员",
}
BIND_MODE_LABELS = {"first_visit": "首次访问即绑定", "first_payment": "首次付款时绑定"}
PAYOUT_CHANNEL_LABELS = {"wechat": "微信商家转账（到零钱）", "manual": "人工打款"}
DISTRIBUTOR_STATUS_LABELS = {
    "pending": "待审核",
    "active": "正常",
    "disabled": "已停用",
    "rejected": "已拒绝",
}
KIND_LABELS = {
    "level_1": "一级佣金",
    "level_2": "二级佣金",
    "level_3": "三级佣金",
    "region_dividend": "区域分红",
    "price_difference": "级差",
    "task_reward": "任务奖励",
    "invite_reward": "邀请奖励",
    "withdrawal": "提现",
    "reversal": "冲回",
}
STATE_LABELS = {
    "pending": "待结算",
    "settled": "已结算",
    "withdrawn": "已提现",
    "reversed": "已失效",
}
BINDING_ACTION_LABELS = {
    "bind": "绑定",
    "rebind": "改绑",
    "lapse": "过期解绑",
    "extend": "延长保护期",
}
BINDING_SOURCE_LABELS = {"link": "推广链接", "qr": "扫码", "staff": "商家手动"}

DISTRIBUTOR_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"active", "rejected"}),
    "active": frozenset({"disabled"}),
    "disabled": frozenset({"active"}),
    "rejected": frozenset({"active"}),  # staff may change their mind and approve later
}


class SettingsError(DistributionError):
    """Input refused, naming the field it concerns (422)."""

    def __init__(self, field: str, code: str, message: str, status: int = 422):
        super().__init__(code, message, status)
        self.field = field


# --- reading input ----------------------------------------------------------------------


def _int(data: Mapping, field: str, label: str, low: int, high: int) -> int:
    value = data[field]
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(field, "invalid_number", f"{label}应为整数")
    if value < low or value > high:
        raise SettingsError(field, "out_of_range", f"{label}需在 {low} 到 {high} 之间")
    return value


def _bp(data: Mapping, field: str, label: str) -> int:
    value = data[field]
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(field, "invalid_number", f"{label}应为整数（万分比）")
    if not 0 <= value <= BP_DENOMINATOR:
        raise SettingsError(field, "out_of_range", f"{label}需在 0% 到 100% 之间")
    return value


def _fen(data: Mapping, field: str, label: str) -> int:
    value = data[field]
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(field, "invalid_number", f"{label}应为整数（单位分）")
    if value < 0:
        raise SettingsError(field, "out_of_range", f"{label}不能为负数")
    if value > MAX_FEN:
        raise SettingsError(field, "out_of_range", f"{label}过大")
    return value


def _bool(data: Mapping, field: str, label: str) -> bool:
    value = data[field]
    if not isinstance(value, bool):
        raise SettingsError(field, "invalid_boolean", f"{label}应为是或否")
    return value


def _choice(data: Mapping, field: str, label: str, choices: Mapping[str, str]) -> str:
    value = data[field]
    if value not in choices:
        options = "、".join(f"{k}（{v}）" for k, v in choices.items())
        raise SettingsError(field, "invalid_choice", f"{label}只能是 {options}")
    return value


# --- settings ---------------------------------------------------------------------------

# field -> (label, reader). The readers refuse out-of-range values with a Chinese message.
SETTINGS_FIELDS: dict[str, tuple[str, object]] = {
    "enabled": ("启用分销", _bool),
    "levels": ("分销层级", None),  # special: the legal limit has its own message
    "self_purchase": ("自购返佣", _bool),
    "join_mode": ("成为分销员的方式", lambda d, f, lbl: _choice(d, f, lbl, JOIN_MODE_LABELS)),
    "join_threshold_fen": ("自动成为分销员的累计消费金额", _fen),
    "bind_mode": ("客户绑定时机", lambda d, f, lbl: _choice(d, f, lbl, BIND_MODE_LABELS)),
    "binding_days": ("绑定有效期（天）", lambda d, f, lbl: _int(d, f, lbl, 0, MAX_DAYS)),
    "protection_days": ("保护期（天）", lambda d, f, lbl: _int(d, f, lbl, 0, MAX_DAYS)),
    "protection_extend_days": (
        "付款后延长保护期（天）",
        lambda d, f, lbl: _int(d, f, lbl, 0, MAX_DAYS),
    ),
    "settlement_hold_days": (
        "结算冻结期（天）",
        lambda d, f, lbl: _int(d, f, lbl, 0, MAX_HOLD_DAYS),
    ),
    "level1_bp": ("一级佣金比例", _bp),
    "level2_bp": ("二级佣金比例", _bp),
    "level3_bp": ("三级佣金比例", _bp),
    "withdraw_min_fen": ("最低提现金额", _fen),
    "withdraw_fee_bp": ("提现手续费比例", _bp),
    "withdraw_daily_limit": (
        "每日提现次数上限",
        lambda d, f, lbl: _int(d, f, lbl, 0, MAX_DAILY_WITHDRAWALS),
    ),
    "payout_channel": ("提现打款方式", lambda d, f, lbl: _choice(d, f, lbl, PAYOUT_CHANNEL_LABELS)),
    "payout_cap_bp": ("分佣上限", _bp),
}
# Only the owner changes these (app/distribution/payout_cap.py).
OWNER_ONLY_FIELDS = ("payout_cap_bp",)
assert set(JOIN_MODE_LABELS) == set(JOIN_MODES)
assert set(BIND_MODE_LABELS) == set(BIND_MODES)
assert set(PAYOUT_CHANNEL_LABELS) == set(PAYOUT_CHANNELS)


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
    from app.distribution.rules import format_bp

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
    with cap_guard(*([SHOP] if rates_set else []), field=field, everything=cap_changed):
        for name, value in clean.items():
            setattr(settings, name, value)
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
    "rank": ("等级高低", lambda d, f, lbl: _int(d, f, lbl, 0, MAX_GRADE_RANK)),
    "level1_bp": ("一级佣金比例", _bp),
    "level2_bp": ("二级佣金比例", _bp),
    "level3_bp": ("三级佣金比例", _bp),
    "upgrade_team_sales_fen": ("升级条件：团队累计销售额", _fen),
    "upgrade_direct_count": (
        "升级条件：直属下级分销员人数",
        lambda d, f, lbl: _int(d, f, lbl, 0, MAX_COUNT),
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


def set_grade(distributor: Distributor, grade: Grade | None) -> None:
    """Staff give a distributor a grade by hand (or none); automatic upgrades go on from it."""
    distributor.grade_id = grade.id if grade is not None else None
    db.session.flush()


# --- distributors -----------------------------------------------------------------------


def _move_distributor(d: Distributor, to: str, actor: str, reason: str, **values) -> None:
    move_status(Distributor, d, DISTRIBUTOR_TRANSITIONS, "distributor", to, actor, reason, **values)


def approve_distributor(d: Distributor, actor: str) -> Distributor:
    """Approve an application (or a rejected one after all): the distributor can earn."""
    from app.core.time import utcnow

    _move_distributor(d, "active", actor, "审核通过", approved_at=d.approved_at or utcnow())
    return d


def reject_distributor(d: Distributor, actor: str, reason: str) -> Distributor:
    """Refuse an application, saying why."""
    reason = (reason or "").strip()
    if not reason:
        raise SettingsError("reason", "reason_required", "请填写拒绝原因")
    _move_distributor(d, "rejected", actor, reason)
    return d


def disable_distributor(d: Distributor, actor: str, reason: str = "") -> Distributor:
    """Stop a distributor earning from now on (entries already written stay theirs).

    Orders attributed before stay attributed; a disabled distributor at a level of a new
    order simply earns nothing (attribution.py). Customers stay bound.
    """
    _move_distributor(d, "disabled", actor, (reason or "").strip() or "停用")
    return d


def enable_distributor(d: Distributor, actor: str) -> Distributor:
    """Let a disabled distributor earn again."""
    _move_distributor(d, "active", actor, "恢复")
    return d


def distributor_label(d: Distributor | None) -> str:
    """``#12 张三（ABCD2345）`` for people; "无" for no distributor."""
    if d is None:
        return "无"
    name = d.user.nickname if d.user is not None and d.user.nickname else f"用户{d.user_id}"
    return f"#{d.id} {name}（{d.code}）"


def change_parent(d: Distributor, new_parent: Distributor | None, actor: str) -> None:
    """Move ``d`` and its whole team under ``new_parent`` (None: to the top); audited.

    Refuses a parent that is ``d`` itself or one of its descendants (``cycle``, 409), and
    a parent that is not an active distributor. Commission already written never moves;
    orders placed from now on follow the new tree.
    """
    old_parent = db.session.get(Distributor, d.parent_id) if d.parent_id else None
    if new_parent is not None:
        if new_parent.id == d.id:
            raise DistributionError("cycle", "不能把分销员设为自己的上级", 409)
        if new_parent.status != "active":
            raise DistributionError("invalid_parent", "新上级不是正常状态的分销员", 422)
    if (old_parent.id if old_parent else None) == (new_parent.id if new_parent else None):
        return
    try:
        set_parent(d, new_parent)
    except DistributionError as exc:
        if exc.code == "cycle":
            exc.status = 409
            exc.message = (
                f"不能把 {distributor_label(d)} 挂到 {distributor_label(new_parent)} 下面："
                "新上级是他自己的下级，会形成循环"
            )
        raise
    db.session.add(
        StatusChange(
            subject="dist_parent",
            subject_id=d.id,
            from_status=str(old_parent.id) if old_parent else "none",
            to_status=str(new_parent.id) if new_parent else "none",
            actor=actor,
            reason=f"上级：{distributor_label(old_parent)} → {distributor_label(new_parent)}"[:200],
        )
    )
    db.session.flush()


def distributor_history(distributor_id: int) -> list[StatusChange]:
    """Status and parent changes of a distributor, oldest first."""
    return list(
        db.session.scalars(
            select(StatusChange)
            .where(
                StatusChange.subject.in_(("distributor", "dist_parent")),
                StatusChange.subject_id == distributor_id,
            )
            .order_by(StatusChange.created_at, StatusChange.id)
        )
    )


def create_distributor_by_staff(user: User, parent: Distributor | None, actor: str) -> Distributor:
    """Staff make a customer a distributor directly (active, under ``parent``); audited."""
    from app.distribution.distributors import create_distributor, distributor_for_user

    if distributor_for_user(user.id) is not None:
        raise DistributionError("already_distributor", "该用户已经是分销员", 409)
    d = create_distributor(user.id, parent)
    record_creation("distributor", d.id, d.status, actor, "商家添加")
    db.session.flush()
    return d


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"


def distributor_query(status: str | None = None, q: str | None = None) -> Select:
    """Distributors, newest first, filtered by status and by code, nickname or id."""
    query = select(Distributor).join(User, User.id == Distributor.user_id)
    if status:
        query = query.where(Distributor.status == status)
    q = (q or "").strip()
    if q:
        pattern = _like(q)
        conditions = [
            Distributor.code.ilike(pattern, escape="\\"),
            User.nickname.ilike(pattern, escape="\\"),
        ]
        if q.isdecimal() and len(q) < 10:
            conditions += [Distributor.id == int(q), Distributor.user_id == int(q)]
        query = query.where(or_(*conditions))
    return query.options(joinedload(Distributor.user), joinedload(Distributor.grade)).order_by(
        Distributor.created_at.desc(), Distributor.id.desc()
    )


def status_counts() -> dict[str, int]:
    """How many distributors are in each status ('' = all)."""
    counts = dict.fromkeys(DISTRIBUTOR_STATUSES, 0)
    for status, n in db.session.execute(
        select(Distributor.status, func.count()).group_by(Distributor.status)
    ):
        counts[status] = int(n)
    counts[""] = sum(counts.values())
    return counts


# --- bindings ---------------------------------------------------------------------------


def binding_query(q: str | None = None, distributor_id: int | None = None) -> Select:
    """Customer bindings, latest first; search by customer nickname or id, or code."""
    query = select(Binding).join(User, User.id == Binding.user_id)
    if distributor_id:
        query = query.where(Binding.distributor_id == distributor_id)
    q = (q or "").strip()
    if q:
        pattern = _like(q)
        by_code = select(Distributor.id).where(Distributor.code.ilike(pattern, escape="\\"))
        conditions = [
            User.nickname.ilike(pattern, escape="\\"),
            Binding.distributor_id.in_(by_code),
        ]
        if q.isdecimal() and len(q) < 10:
            conditions.append(Binding.user_id == int(q))
        query = query.where(or_(*conditions))
    return query.options(joinedload(Binding.distributor).joinedload(Distributor.user)).order_by(
        Binding.bound_at.desc(), Binding.id.desc()
    )


def binding_events(user_id: int | None = None, limit: int = 100) -> list[BindingEvent]:
    """The latest binding events (of one customer, or everyone), newest first."""
    query = select(BindingEvent).order_by(BindingEvent.created_at.desc(), BindingEvent.id.desc())
    if user_id is not None:
        query = query.where(BindingEvent.user_id == user_id)
    return list(db.session.scalars(query.limit(limit)))


def rebind_customer(user_id: int, distributor: Distributor, actor: str) -> Binding:
    """Staff bind a customer to ``distributor`` by hand, over any protection period.

    The self and cycle rules still hold, and only an active distributor can take a
    customer: those are refused with the reason (422). The change is recorded as a
    ``BindingEvent`` with source ``staff`` and the staff member as actor. Orders already
    placed keep their attribution.
    """
    if db.session.get(User, user_id) is None:
        raise DistributionError("not_found", "客户不存在", 404)
    if distributor.status != "active":
        raise DistributionError("invalid_distributor", "只能绑定到正常状态的分销员", 422)
    if distributor.user_id == user_id:
        raise DistributionError("self_binding", "客户不能绑定到自己", 422)
    binding = bind(user_id, distributor, "staff", actor=actor, force=True)
    if binding is None or binding.distributor_id != distributor.id:
        raise DistributionError(
            "cycle", "该客户本身是分销员，不能绑定到他自己团队里的分销员（会形成循环）", 422
        )
    return binding


# --- ledger and withdrawals -------------------------------------------------------------


@dataclass(frozen=True)
class LedgerFilter:
    """What the ledger list and export are narrowed to (Beijing calendar days)."""

    distributor_id: int | None = None
    kind: str | None = None
    state: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    order_id: int | None = None


def ledger_query(flt: LedgerFilter) -> Select:
    """Ledger entries matching ``flt``, newest first."""
    query = select(LedgerEntry)
    if flt.distributor_id:
        query = query.where(LedgerEntry.distributor_id == flt.distributor_id)
    if flt.kind:
        if flt.kind not in LEDGER_KINDS:
            raise SettingsError("kind", "invalid_choice", "未知的明细类型")
        query = query.where(LedgerEntry.kind == flt.kind)
    if flt.state:
        if flt.state not in STATE_LABELS:
            raise SettingsError("state", "invalid_choice", "未知的状态")
        query = query.where(LedgerEntry.state == flt.state)
    if flt.created_from:
        query = query.where(LedgerEntry.created_at >= day_start_utc(flt.created_from))
    if flt.created_to:
        end = day_start_utc(flt.created_to + timedelta(days=1))
        query = query.where(LedgerEntry.created_at < end)
    if flt.order_id:
        query = query.where(LedgerEntry.order_id == flt.order_id)
    return query.order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())


def ledger_totals(flt: LedgerFilter) -> int:
    """Σ amount of the filtered entries, in fen."""
    inner = ledger_query(flt).order_by(None).subquery()
    return int(db.session.scalar(select(func.coalesce(func.sum(inner.c.amount_fen), 0))) or 0)


def withdrawal_query(status: str | None = None, distributor_id: int | None = None) -> Select:
    """Withdrawals, those awaiting review first, then newest."""
    from sqlalchemy import case

    query = select(Withdrawal)
    if status:
        query = query.where(Withdrawal.status == status)
    if distributor_id:
        query = query.where(Withdrawal.distributor_id == distributor_id)
    urgency = case((Withdrawal.status == "requested", 0), else_=1)
    return query.order_by(urgency, Withdrawal.created_at.desc(), Withdrawal.id.desc())


# --- product and SKU commission rules ---------------------------------------------------

MODE_LABELS = {PERCENT: "按比例", FIXED: "固定金额", NONE: "不参与分佣"}


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
    from app.core.money import format_yuan

    if rule.mode == NONE:
        return MODE_LABELS[NONE]
    values = (rule.level1, rule.level2, rule.level3)
    show = _percent if rule.mode == PERCENT else format_yuan
    parts = [f"{LEVEL_LABELS[i + 1]} {show(v)}" for i, v in enumerate(values)]
    return f"{MODE_LABELS[rule.mode]} " + " · ".join(parts)
