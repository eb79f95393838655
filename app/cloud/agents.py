"""Regional agents (区域代理): settings, applications, staff decisions, product rates.

Services flush; the edge (view, API, CLI) commits. Every status change of an agent goes
through ``move_status`` with subject ``"agent"`` (a conditional UPDATE plus a
``StatusChange`` row), so decisions are audited and two staff cannot both decide.

Region protection is the database's: the partial unique index
``uq_region_agents_region_held`` allows one pending-or-active row per (level, region
code). An application is ``INSERT ... ON CONFLICT (level, region_code) WHERE ... DO NOTHING
RETURNING id``: whichever of two concurrent applications commits first holds the region,
the other gets no id and is told the region is taken, never by whom. (No savepoint and no
IntegrityError: on SQLite a savepoint opened before any write commits when released.)

An agent is also a distributor (created here when missing), so dividends use the same
ledger, settlement and withdrawals as commissions.
"""

from __future__ import annotations

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError

from app import regions
from app.accounts.models import User
from app.cloud.models import (
    AGENT_LEVELS,
    PRECEDENCE,
    AgentProductRate,
    CloudSettings,
    RegionAgent,
)
from app.core.batch import memo
from app.core.models import StatusChange
from app.core.sql import dialect_insert, single_row
from app.core.status import move_status, record_creation
from app.core.time import utcnow
from app.distribution.distributors import (
    DistributionError,
    create_distributor,
    distributor_for_user,
)
from app.distribution.models import Distributor
from app.distribution.payout_cap import (
    AGENT_LEVEL_NAMES,
    SHOP,
    cap_guard,
    product_scope,
    refuse_raise,
)
from app.extensions import db

PENDING, ACTIVE, REJECTED, REVOKED = "pending", "active", "rejected", "revoked"
HELD_STATUSES = (PENDING, ACTIVE)  # the partial unique index's WHERE
MAX_BP = 10_000

LEVEL_LABELS = {"province": "省级代理", "city": "市级代理", "district": "区县代理"}
STATUS_LABELS = {
    PENDING: "审核中",
    ACTIVE: "生效中",
    REJECTED: "未通过",
    REVOKED: "已撤销",
}
AGENT_TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({ACTIVE, REJECTED}),
    ACTIVE: frozenset({REVOKED}),
    REJECTED: frozenset(),
    REVOKED: frozenset(),
}
TAKEN_MESSAGE = "该地区已有代理或正在审核中，请选择其他地区"


class AgentError(DistributionError):
    """An agent request refused: a snake_case code, a Chinese message and an HTTP status."""


# --- settings -------------------------------------------------------------------------------


def get_cloud_settings() -> CloudSettings:
    """The single cloud settings row, created with defaults on first use (race-safe)."""
    return memo("cloud_settings", _load_cloud_settings)


def _load_cloud_settings() -> CloudSettings:
    return single_row(CloudSettings)


def level_rate_bp(settings: CloudSettings, level: str) -> int:
    """The shop's dividend rate for an agent level, in basis points."""
    return {
        "province": settings.province_bp,
        "city": settings.city_bp,
        "district": settings.district_bp,
    }[level]


def _rate(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BP:
        raise AgentError("invalid_rate", f"{field} 应为 0 到 10000 之间的整数（万分比）", 422)
    return value


def update_cloud_settings(values: dict, *, owner: bool = False) -> CloudSettings:
    """Change the given settings: ``agents_enabled`` (bool), ``province_bp``, ``city_bp``,
    ``district_bp`` (0..10000) and ``precedence``. Refuses bad values (flushes), a rate
    raised by staff rather than the ``owner`` (403 ``rate_above_default``), and rates whose
    worst case breaks the payout cap (422 ``payout_cap_exceeded``)."""
    settings = get_cloud_settings()
    clean: dict[str, object] = {}
    for name, value in values.items():
        if name in ("province_bp", "city_bp", "district_bp"):
            clean[name] = _rate(value, name)
        elif name == "agents_enabled":
            if not isinstance(value, bool):
                raise AgentError("invalid_value", "agents_enabled 应为 true 或 false", 422)
            clean[name] = value
        elif name == "precedence":
            if value not in PRECEDENCE:
                raise AgentError("invalid_value", "precedence 取值不正确", 422)
            clean[name] = value
        else:
            raise AgentError("invalid_value", f"未知的设置项 {name}", 422)
    refuse_raise(
        owner,
        (
            # the shop rate is its own yardstick: staff may lower it, never raise it
            (name, f"{AGENT_LEVEL_NAMES[level]}分红", clean[name], current, current)
            for level in AGENT_LEVELS
            if (name := f"{level}_bp") in clean and (current := getattr(settings, name)) is not None
        ),
    )
    # Only a change of the rates or the switch must fit the cap: setting the precedence
    # alone is not refused for rates saved before the cap existed.
    rates_set = any(
        name != "precedence" and clean[name] != getattr(settings, name) for name in clean
    )
    field = next((n for n in clean if n.endswith("_bp")), "")
    with cap_guard(*([SHOP] if rates_set else []), field=field):
        for name, value in clean.items():
            setattr(settings, name, value)
    return settings


# --- regions --------------------------------------------------------------------------------


def region_for(level: str, code: str) -> regions.Region | None:
    """The region an agent of ``level`` may hold under ``code``, or None when ``code`` is
    not a province (province level), a city (city level) or a district (district level)
    of the GB/T 2260 tree."""
    code = str(code or "").strip()
    if level not in AGENT_LEVELS or len(code) != 6 or not code.isdecimal():
        return None
    if level == "province":
        return next((p for p in regions.provinces() if p.code == code), None)
    if level == "city":
        return next((c for c in regions.cities(code[:2] + "0000") if c.code == code), None)
    resolved = regions.resolve(code)
    return resolved.district if resolved is not None else None


def region_path(level: str, code: str) -> str:
    """A region's full name for people: 广东省 深圳市 南山区."""
    if level == "province":
        region = region_for(level, code)
        return region.name if region else code
    if level == "city":
        province = region_for("province", code[:2] + "0000")
        city = region_for("city", code)
        if city is None:
            return code
        if province is None or province.name == city.name:
            return city.name
        return f"{province.name} {city.name}"
    resolved = regions.resolve(code)
    if resolved is None:
        return code
    names = [resolved.province.name, resolved.city.name, resolved.district.name]
    return " ".join(dict.fromkeys(names))  # 北京市 北京市 东城区 → 北京市 东城区


def _valid_region(level: str, code: str) -> regions.Region:
    if level not in AGENT_LEVELS:
        raise AgentError("invalid_level", "代理级别应为 province、city 或 district", 422)
    region = region_for(level, code)
    if region is None:
        what = {"province": "省份", "city": "城市", "district": "区县"}[level]
        raise AgentError("invalid_region", f"请选择有效的{what}", 422)
    return region


# --- applying and assigning -----------------------------------------------------------------


def agent_distributor(user_id: int) -> Distributor:
    """The user's distributor row, made (active, without a parent) when missing.

    Agents are paid through the distributor ledger and withdrawals. A disabled or rejected
    distributor may not become an agent (the merchant stopped them).
    """
    distributor = distributor_for_user(user_id)
    if distributor is None:
        try:
            with db.session.begin_nested():
                distributor = create_distributor(user_id, None)
            record_creation("distributor", distributor.id, "active", "system", "成为区域代理")
        except IntegrityError:  # a double tap created it first
            distributor = distributor_for_user(user_id)
            if distributor is None:
                raise
    if distributor.status in ("disabled", "rejected"):
        raise AgentError("distributor_disabled", "你的账号已被商家停用，无法成为代理", 403)
    return distributor


def _hold_region(
    user_id: int, distributor_id: int, level: str, region: regions.Region, status: str
) -> RegionAgent | None:
    """Insert the agent row unless the region is held; None when it is (no exception)."""
    now = utcnow()
    new_id = db.session.scalar(
        dialect_insert(RegionAgent)
        .values(
            user_id=user_id,
            distributor_id=distributor_id,
            level=level,
            region_code=region.code,
            region_name=region_path(level, region.code)[:64],
            status=status,
            created_at=now,
            approved_at=now if status == ACTIVE else None,
        )
        .on_conflict_do_nothing(
            index_elements=["level", "region_code"],
            index_where=text("status IN ('pending', 'active')"),
        )
        .returning(RegionAgent.id)
    )
    return db.session.get(RegionAgent, new_id) if new_id is not None else None


def apply_for_region(user_id: int, level: str, region_code: str) -> RegionAgent:
    """A customer applies to be the agent of one region; pending until staff approve.

    Refuses (``AgentError``): agents switched off, a bad level or code, a region already
    held or under review (without saying by whom), a disabled distributor. Flushes.
    """
    if not get_cloud_settings().agents_enabled:
        raise AgentError("agents_disabled", "本店暂未开放区域代理", 403)
    region = _valid_region(level, region_code)
    user = db.session.get(User, user_id)
    if user is None:
        raise AgentError("not_found", "用户不存在", 404)
    distributor = agent_distributor(user_id)
    agent = _hold_region(user_id, distributor.id, level, region, PENDING)
    if agent is None:
        raise AgentError("region_taken", TAKEN_MESSAGE, 409)
    record_creation("agent", agent.id, PENDING, f"user:{user_id}", "提交代理申请")
    db.session.flush()
    return agent


def assign_region(user_id: int, level: str, region_code: str, actor: str) -> RegionAgent:
    """Staff make a user the active agent of a region (no application needed). Flushes.

    Refuses a held region like an application does (staff can see who holds it in the
    admin and revoke or transfer instead).
    """
    region = _valid_region(level, region_code)
    if db.session.get(User, user_id) is None:
        raise AgentError("not_found", "用户不存在", 404)
    distributor = agent_distributor(user_id)
    agent = _hold_region(user_id, distributor.id, level, region, ACTIVE)
    if agent is None:
        raise AgentError("region_taken", "该地区已有代理或待审核的申请，请先撤销或驳回", 409)
    record_creation("agent", agent.id, ACTIVE, actor, "商家指定代理")
    db.session.flush()
    return agent


# --- staff decisions ------------------------------------------------------------------------


def _move(agent: RegionAgent, to: str, actor: str, reason: str, **values) -> None:
    move_status(RegionAgent, agent, AGENT_TRANSITIONS, "agent", to, actor, reason, **values)


def approve(agent: RegionAgent, actor: str, reason: str = "") -> RegionAgent:
    """Pending → active (raises ``InvalidTransition`` otherwise). Flushes."""
    _move(agent, ACTIVE, actor, reason or "审核通过", approved_at=utcnow())
    return agent


def reject(agent: RegionAgent, actor: str, reason: str) -> RegionAgent:
    """Pending → rejected, with the reason the applicant sees; frees the region."""
    reason = (reason or "").strip()
    if not reason:
        raise AgentError("reason_required", "请填写驳回原因", 422)
    _move(agent, REJECTED, actor, reason, ended_at=utcnow())
    return agent


def revoke(agent: RegionAgent, actor: str, reason: str) -> RegionAgent:
    """Active → revoked: no dividends on orders paid from now on; frees the region.
    Dividends already earned stay (they settle and withdraw as usual)."""
    reason = (reason or "").strip()
    if not reason:
        raise AgentError("reason_required", "请填写撤销原因", 422)
    _move(agent, REVOKED, actor, reason, ended_at=utcnow())
    return agent


def transfer(agent: RegionAgent, to_user_id: int, actor: str, reason: str = "") -> RegionAgent:
    """Hand an active agent's region to another user in one transaction: the old row is
    revoked and a new active row made for ``to_user_id``. Returns the new row. Flushes.

    Both steps are in the caller's transaction, so the region is never seen free by
    another applicant: the revoked row and the new one commit together.
    """
    if agent.status != ACTIVE:
        raise AgentError("invalid_transition", "只能转让生效中的代理区域", 409)
    if to_user_id == agent.user_id:
        raise AgentError("same_user", "不能转让给当前代理本人", 422)
    if db.session.get(User, to_user_id) is None:
        raise AgentError("not_found", "接收人不存在", 404)
    why = (reason or "").strip() or "区域转让"
    distributor = agent_distributor(to_user_id)
    _move(agent, REVOKED, actor, f"转让给用户 {to_user_id}：{why}", ended_at=utcnow())
    region = regions.Region(agent.region_code, agent.region_name)
    new = _hold_region(to_user_id, distributor.id, agent.level, region, ACTIVE)
    if new is None:  # cannot happen while we hold the old row's lock; be loud if it does
        raise AgentError("region_taken", TAKEN_MESSAGE, 409)
    record_creation("agent", new.id, ACTIVE, actor, f"由代理 #{agent.id} 转让：{why}")
    db.session.flush()
    return new


# --- product rate overrides -----------------------------------------------------------------


def set_product_rate(
    product_id: int, level: str, rate_bp: int | None, *, owner: bool = False
) -> AgentProductRate | None:
    """Set (or with None, remove) a product's dividend rate for one agent level.

    Staff may not set it above the shop's rate for the level (the ``owner`` may); a rate
    whose worst case breaks the payout cap is refused (422 ``payout_cap_exceeded``).
    """
    if level not in AGENT_LEVELS:
        raise AgentError("invalid_level", "代理级别应为 province、city 或 district", 422)
    if rate_bp is None:
        with cap_guard(field="rate_bp"):  # refused only if the shop rate makes it worse
            db.session.execute(
                delete(AgentProductRate).where(
                    AgentProductRate.product_id == product_id, AgentProductRate.level == level
                )
            )
        return None
    rate = _rate(rate_bp, "rate_bp")
    old = db.session.scalar(
        select(AgentProductRate.rate_bp).where(
            AgentProductRate.product_id == product_id, AgentProductRate.level == level
        )
    )
    label = f"商品{AGENT_LEVEL_NAMES[level]}分红"
    shop_rate = level_rate_bp(get_cloud_settings(), level)
    refuse_raise(owner, [("rate_bp", label, rate, old, shop_rate)])
    with cap_guard(product_scope(product_id), field="rate_bp"):
        db.session.execute(
            dialect_insert(AgentProductRate)
            .values(product_id=product_id, level=level, rate_bp=rate)
            .on_conflict_do_update(index_elements=["product_id", "level"], set_={"rate_bp": rate})
        )
    return db.session.scalar(
        select(AgentProductRate)
        .where(AgentProductRate.product_id == product_id, AgentProductRate.level == level)
        .execution_options(populate_existing=True)
    )


def product_rates() -> list[AgentProductRate]:
    """Every product override, by product then level."""
    return list(
        db.session.scalars(
            select(AgentProductRate).order_by(AgentProductRate.product_id, AgentProductRate.level)
        )
    )


# --- reading --------------------------------------------------------------------------------


def agents_of_user(user_id: int) -> list[RegionAgent]:
    """The user's agent rows (any status), active first, newest first."""
    rows = db.session.scalars(
        select(RegionAgent).where(RegionAgent.user_id == user_id).order_by(RegionAgent.id.desc())
    ).all()
    order = {ACTIVE: 0, PENDING: 1, REVOKED: 2, REJECTED: 3}
    return sorted(rows, key=lambda a: order.get(a.status, 9))


def last_reason(agent: RegionAgent) -> str:
    """Why the agent row has its current status (the StatusChange reason)."""
    return (
        db.session.scalar(
            select(StatusChange.reason)
            .where(
                StatusChange.subject == "agent",
                StatusChange.subject_id == agent.id,
                StatusChange.to_status == agent.status,
            )
            .order_by(StatusChange.id.desc())
            .limit(1)
        )
        or ""
    )
