"""Merchant Open API for distribution (bearer token; see app.api.blueprints).

Settings, grades, distributors, the ledger, withdrawals and the commission simulator.
Views validate types (spectree, strict pydantic), call the same services as the admin
pages (app.distribution.admin_services, withdrawals, simulator) and commit once. Errors:
input a service refuses → 422 with the service's code (e.g. ``too_many_levels``) and the
field; a refused status change → 409 ``invalid_transition``; a parent that would make a
cycle → 409 ``cycle``; WeChat refusing a payout → 502 ``payment_error``; unknown ids → 404.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Literal

from flask import g
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr, model_validator
from spectree import Response
from sqlalchemy.exc import IntegrityError

from app.api.blueprints import admin_bp, requires_scope, token_has_owner_rights
from app.api.present import page_meta
from app.api.schemas import (
    MAX_ID,
    Body,
    ErrorResponse,
    Id,
    Name,
    PageMeta,
    PageQuery,
    QueryId,
    QueryText,
    omitted,
)
from app.api.spec import BEARER, spec
from app.cloud.dividends import RegionPreview
from app.core.errors import ApiError
from app.distribution import admin_services as svc
from app.distribution import withdrawals as wd
from app.distribution.distributors import DistributionError
from app.distribution.ledger import balances
from app.distribution.models import (
    BIND_MODES,
    DISTRIBUTOR_STATUSES,
    JOIN_MODES,
    PAYOUT_CHANNELS,
    DistributionSettings,
    Distributor,
    Grade,
    Withdrawal,
)
from app.distribution.payout_cap import RateRefused
from app.distribution.team import team_counts
from app.earnings.simulator import DifferencePreview, Preview, simulate
from app.extensions import db
from app.incentives.audit import audited, row, rows
from app.ledger.kinds import LEDGER_KINDS
from app.ledger.models import LedgerEntry
from app.orders.states import InvalidTransition
from app.payments.client import PaymentError

DISTRIBUTOR_ID = "<int:distributor_id>"
WITHDRAWAL_ID = "<int:withdrawal_id>"
GRADE_ID = "<int:grade_id>"
TAGS = ["admin-distribution"]
SECURITY = {BEARER: []}
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_404": ErrorResponse}
BODY_ERRORS = {**ERRORS, "HTTP_400": ErrorResponse, "HTTP_415": ErrorResponse}
Bp = StrictInt  # ranges are the services' (one set of messages for the page and the API)
Days = StrictInt
FenIn = StrictInt


# --- models ---------------------------------------------------------------------------------


class DistributionSettingsOut(BaseModel):
    enabled: bool
    levels: int = Field(description="分销层级 1-3")
    self_purchase: bool = Field(description="自购返佣")
    join_mode: str = Field(description="open / apply / threshold")
    join_threshold_fen: int
    bind_mode: str = Field(description="first_visit / first_payment")
    binding_days: int = Field(description="绑定有效期（天），0 为永久")
    protection_days: int = Field(description="保护期（天），0 为最新链接生效")
    protection_extend_days: int
    settlement_hold_days: int = Field(description="订单完成后的结算冻结期（天）")
    level1_bp: int = Field(description="默认一级佣金，万分比")
    level2_bp: int
    level3_bp: int
    withdraw_min_fen: int
    withdraw_fee_bp: int
    withdraw_daily_limit: int = Field(description="0 为不限")
    payout_channel: str = Field(description="wechat / manual")
    payout_cap_bp: int = Field(
        description="分佣上限（万分比）：一条订单行的各级佣金与区域分红合计不超过其实付金额的这一比例"
    )
    warnings: list[str] = Field(description="允许但有风险的设置（如三级分销）")


class DistributionSettingsPut(Body):
    """Only the fields given change. Ranges: levels 1-3 (4+ is refused: 传销), bp 0-10000,
    days ≥ 0, fen ≥ 0. There is no join fee, on purpose."""

    enabled: StrictBool = omitted()
    levels: StrictInt = omitted(description="1、2 或 3；超过 3 级会被拒绝（too_many_levels）")
    self_purchase: StrictBool = omitted()
    join_mode: Literal[JOIN_MODES] = omitted()  # type: ignore[valid-type]
    join_threshold_fen: FenIn = omitted()
    bind_mode: Literal[BIND_MODES] = omitted()  # type: ignore[valid-type]
    binding_days: Days = omitted()
    protection_days: Days = omitted()
    protection_extend_days: Days = omitted()
    settlement_hold_days: Days = omitted()
    level1_bp: Bp = omitted()
    level2_bp: Bp = omitted()
    level3_bp: Bp = omitted()
    withdraw_min_fen: FenIn = omitted()
    withdraw_fee_bp: Bp = omitted()
    withdraw_daily_limit: StrictInt = omitted()
    payout_channel: Literal[PAYOUT_CHANNELS] = omitted()  # type: ignore[valid-type]
    payout_cap_bp: Bp = omitted(
        description="分佣上限 0-10000，仅店主可改；超过 3000（30%）会给出警告；"
        "低于现有规则的最坏情况时拒绝（payout_cap_exceeded）"
    )


class AdminGrade(BaseModel):
    id: int
    name: str
    rank: int = Field(description="越大等级越高；只会自动升级，不会自动降级")
    level1_bp: int
    level2_bp: int
    level3_bp: int
    upgrade_team_sales_fen: int = Field(description="升级条件：团队累计销售额，0 为不作要求")
    upgrade_direct_count: int = Field(description="升级条件：直属下级人数，0 为不作要求")
    distributors: int = Field(description="该等级的分销员人数")


class AdminGradeList(BaseModel):
    items: list[AdminGrade]


class AdminGradeCreate(Body):
    name: Name = Field(min_length=1, max_length=32)
    rank: StrictInt = 0
    level1_bp: Bp = 0
    level2_bp: Bp = 0
    level3_bp: Bp = 0
    upgrade_team_sales_fen: FenIn = 0
    upgrade_direct_count: StrictInt = 0


class AdminGradePatch(Body):
    """Only the fields given change (the admin grade form's rules and messages)."""

    name: Name = omitted(min_length=1, max_length=32)
    rank: StrictInt = omitted()
    level1_bp: Bp = omitted()
    level2_bp: Bp = omitted()
    level3_bp: Bp = omitted()
    upgrade_team_sales_fen: FenIn = omitted()
    upgrade_direct_count: StrictInt = omitted()


class AdminDistributorQuery(PageQuery):
    status: Literal[DISTRIBUTOR_STATUSES] | None = None  # type: ignore[valid-type]
    q: QueryText | None = Field(None, max_length=50, description="昵称、推广码或编号")


class AdminDistributor(BaseModel):
    id: int
    user_id: int
    nickname: str
    code: str
    status: str = Field(description="pending / active / disabled / rejected")
    parent_id: int | None
    grade_id: int | None
    created_at: datetime
    approved_at: datetime | None
    level1_count: int = Field(description="直属下级人数")
    team_size: int = Field(description="团队总人数（所有下级）")
    pending_fen: int
    available_fen: int
    withdrawn_fen: int


class AdminDistributorPage(BaseModel):
    items: list[AdminDistributor]
    meta: PageMeta


class AdminDistributorPatch(Body):
    parent_id: Id | None = omitted(description="新上级的分销员编号；null 表示无上级")
    grade_id: Id | None = omitted(description="等级编号；null 表示无等级")


class AdminReasonBody(Body):
    reason: StrictStr = Field("", max_length=200, pattern=r"^[^\x00]*$")


class AdminRejectBody(Body):
    reason: Name = Field(min_length=1, max_length=200, description="拒绝原因，对方可见")


class AdminLedgerQuery(PageQuery):
    distributor_id: QueryId | None = None
    kind: Literal[LEDGER_KINDS] | None = None  # type: ignore[valid-type]
    state: Literal["pending", "settled", "withdrawn", "reversed"] | None = None
    order_id: QueryId | None = None
    created_from: date | None = Field(None, description="日期起（北京时间，含当天）")
    created_to: date | None = Field(None, description="日期止（北京时间，含当天）")


class AdminLedgerEntry(BaseModel):
    id: int
    distributor_id: int
    kind: str
    amount_fen: int = Field(description="正数为收入，负数为冲回或提现")
    state: str
    order_id: int | None
    order_line_id: int | None
    refund_id: int | None
    reverses_id: int | None
    withdrawal_id: int | None
    rule_source: str = Field(description="命中的规则，如 商品规则、等级 金牌、店铺默认")
    note: str
    settle_after: datetime | None
    created_at: datetime
    settled_at: datetime | None


class AdminLedgerPage(BaseModel):
    items: list[AdminLedgerEntry]
    meta: PageMeta
    total_fen: int = Field(description="符合条件的明细金额合计")


class AdminWithdrawalQuery(PageQuery):
    status: Literal[tuple(wd.WITHDRAWAL_TRANSITIONS)] | None = None  # type: ignore[valid-type]
    distributor_id: QueryId | None = None


class AdminWithdrawal(BaseModel):
    id: int
    distributor_id: int
    amount_fen: int = Field(description="提现金额（含手续费）")
    fee_fen: int
    net_fen: int = Field(description="实际到账")
    status: str = Field(
        description="requested / approved / awaiting_confirm / paid / rejected / failed"
    )
    status_label: str
    channel: str
    out_bill_no: str
    transfer_bill_no: str | None
    review_note: str
    created_at: datetime
    reviewed_at: datetime | None
    paid_at: datetime | None


class AdminWithdrawalPage(BaseModel):
    items: list[AdminWithdrawal]
    meta: PageMeta


class SimulateRule(Body):
    mode: Literal["percent", "fixed", "none"]
    values: list[StrictInt] = Field(
        default_factory=lambda: [0, 0, 0],
        min_length=3,
        max_length=3,
        description="一、二、三级：percent 为万分比，fixed 为每件分",
    )
    scope: Literal["product", "sku"] = "product"


class SimulateBody(Body):
    sku_id: Id
    quantity: StrictInt = Field(1, ge=1, le=10_000)
    buyer_id: Id | None = Field(None, description="买家用户编号（与 chain 二选一）")
    chain: list[Id] | None = Field(
        None, min_length=1, max_length=3, description="分销员编号链条，一级在前"
    )
    paid_fen: FenIn | None = Field(None, description="该行实付金额，默认 单价×数量")
    levels: StrictInt | None = Field(None, description="预览：分销层级")
    self_purchase: StrictBool | None = Field(None, description="预览：自购返佣")
    default_bp: list[StrictInt] | None = Field(
        None, min_length=3, max_length=3, description="预览：默认比例（万分比）"
    )
    rule: SimulateRule | None = Field(None, description="预览：商品或 SKU 规则")
    district_code: str | None = Field(
        None,
        min_length=6,
        max_length=6,
        pattern=r"^\d{6}$",
        description="收货区县代码（GB/T 2260）：给出时计算该地址省、市、区代理的区域分红",
    )

    @model_validator(mode="after")
    def _one_of(self) -> SimulateBody:
        if (self.buyer_id is None) == (self.chain is None):
            raise ValueError("buyer_id 与 chain 需二选一")
        return self


class SimulatedLevelOut(BaseModel):
    level: int
    distributor_id: int | None
    distributor: str
    amount_fen: int
    rule_source: str
    explanation: str


class SimulatedDifferenceOut(BaseModel):
    merchant_id: int = Field(description="订货商编号")
    distributor_id: int = Field(description="订货商的分销员编号（级差记入其账本）")
    level: int = Field(description="订货商等级 1-5")
    level_name: str = Field(description="等级名称，如 市代")
    amount_fen: int = Field(description="按当前计算方式实际发放的级差（不发放时为 0）")
    explanation: str = Field(description="算式，或为何不计")


class PriceDifferencesOut(BaseModel):
    """级差 of a line whose level 1 is an active ordering merchant (app/cloud)."""

    precedence: Literal["price_difference", "commission", "both"] = Field(
        description=(
            "级差与分销佣金的计算方式：price_difference 级差优先，"
            "commission 佣金优先，both 同时发放"
        )
    )
    commissions: bool = Field(description="该订单是否计分销佣金")
    price_differences: bool = Field(description="该订单是否发放级差")
    merchant_id: int = Field(description="订单经过的订货商（链条最下一级）")
    rows: list[SimulatedDifferenceOut] = Field(description="订货商链条，由下往上")
    total_fen: int = Field(description="合计级差")
    headquarters_unit_fen: int = Field(description="总部单价：链条最上一级的进货价")
    note: str


class RegionDividendOut(BaseModel):
    agent_id: int
    level: str = Field(description="province / city / district")
    region_code: str
    rate_bp: int
    amount_fen: int
    source: str = Field(description="商品分红比例 / 店铺默认")
    note: str


class RegionDividendsOut(BaseModel):
    district_code: str
    region_text: str
    total_fen: int
    shares: list[RegionDividendOut]
    note: str = Field(description="没有分红时的原因，否则为空")


class SimulationOut(BaseModel):
    sku_id: int
    product_id: int
    title: str
    quantity: int
    paid_fen: int
    levels: int
    chain_source: str
    levels_detail: list[SimulatedLevelOut]
    total_fen: int = Field(description="合计分销佣金")
    price_difference_fen: int = Field(description="合计级差（按当前计算方式）")
    region_dividend_fen: int = Field(description="合计区域分红（给出 district_code 时）")
    merchant_keeps_fen: int = Field(description="商家保留：实付 − 佣金 − 级差 − 区域分红")
    notes: list[str]
    price_differences: PriceDifferencesOut | None = Field(
        None, description="一级为启用中的订货商时的级差明细，否则为 null"
    )
    region_dividends: RegionDividendsOut | None = Field(
        None, description="给出 district_code 时该地址代理的区域分红，否则为 null"
    )
    payout_cap_bp: int = Field(0, description="分佣上限（万分比）")
    cap_trimmed_fen: int = Field(
        0,
        description="因超出分佣上限扣减的金额（按区、市、省、三级、二级、一级依次扣减，与实际入账一致）",
    )


# --- helpers --------------------------------------------------------------------------------


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo:
        return moment
    return moment.replace(tzinfo=UTC)


def _actor() -> str:
    return f"api:{g.api_token.id}"


@contextmanager
def distribution_errors() -> Iterator[None]:
    """Refusals of the services as JSON errors; the session is rolled back first."""
    try:
        yield
    except svc.SettingsError as exc:
        db.session.rollback()
        detail = {"field": exc.field, "code": exc.code, "message": exc.message}
        raise ApiError(exc.status, exc.code, exc.message, [detail]) from None
    except RateRefused as exc:  # payout_cap_exceeded (422), rate_above_default (403)
        db.session.rollback()
        detail = {"field": exc.field, "code": exc.code, "message": exc.message}
        raise ApiError(exc.status, exc.code, exc.message, [detail]) from None
    except DistributionError as exc:
        db.session.rollback()
        raise ApiError(exc.status, exc.code, exc.message) from None
    except InvalidTransition as exc:
        db.session.rollback()
        raise ApiError(
            409,
            "invalid_transition",
            f"当前状态为 {exc.current}，不能改为 {exc.wanted}",
            [{"field": "status", "code": exc.current, "message": f"{exc.current} → {exc.wanted}"}],
        ) from None
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409, "conflict", "数据已被其他请求修改（如名称重复），请重试") from None


def _get(model, row_id: int, what: str):
    found = db.session.get(model, row_id) if row_id <= MAX_ID else None
    if found is None:
        raise ApiError(404, "not_found", f"{what}不存在")
    return found


def _settings_out(result: svc.SettingsResult) -> DistributionSettingsOut:
    return DistributionSettingsOut(**svc.settings_values(result.settings), warnings=result.warnings)


def _grade_out(grade: Grade, counts: dict[int, int]) -> AdminGrade:
    return AdminGrade(
        id=grade.id,
        name=grade.name,
        rank=grade.rank,
        level1_bp=grade.level1_bp,
        level2_bp=grade.level2_bp,
        level3_bp=grade.level3_bp,
        upgrade_team_sales_fen=grade.upgrade_team_sales_fen,
        upgrade_direct_count=grade.upgrade_direct_count,
        distributors=counts.get(grade.id, 0),
    )


def _distributor_out(d: Distributor) -> AdminDistributor:
    level1, _level2, size = team_counts(d.id)
    money = balances(d.id)
    return AdminDistributor(
        id=d.id,
        user_id=d.user_id,
        nickname=d.user.nickname if d.user else "",
        code=d.code,
        status=d.status,
        parent_id=d.parent_id,
        grade_id=d.grade_id,
        created_at=_aware(d.created_at),
        approved_at=_aware(d.approved_at),
        level1_count=level1,
        team_size=size,
        pending_fen=money.pending_fen,
        available_fen=money.available_fen,
        withdrawn_fen=money.withdrawn_fen,
    )


def _entry_out(e: LedgerEntry) -> AdminLedgerEntry:
    return AdminLedgerEntry(
        id=e.id,
        distributor_id=e.distributor_id,
        kind=e.kind,
        amount_fen=e.amount_fen,
        state=e.state,
        order_id=e.order_id,
        order_line_id=e.order_line_id,
        refund_id=e.refund_id,
        reverses_id=e.reverses_id,
        withdrawal_id=e.withdrawal_id,
        rule_source=e.rule_source,
        note=e.note,
        settle_after=_aware(e.settle_after),
        created_at=_aware(e.created_at),
        settled_at=_aware(e.settled_at),
    )


def _withdrawal_out(w: Withdrawal) -> AdminWithdrawal:
    return AdminWithdrawal(
        id=w.id,
        distributor_id=w.distributor_id,
        amount_fen=w.amount_fen,
        fee_fen=w.fee_fen,
        net_fen=w.net_fen,
        status=w.status,
        status_label=wd.WITHDRAWAL_STATUS_LABELS.get(w.status, w.status),
        channel=w.channel,
        out_bill_no=w.out_bill_no,
        transfer_bill_no=w.transfer_bill_no,
        review_note=w.review_note,
        created_at=_aware(w.created_at),
        reviewed_at=_aware(w.reviewed_at),
        paid_at=_aware(w.paid_at),
    )


# --- settings and grades --------------------------------------------------------------------


@admin_bp.get("/distribution/settings")
@spec.validate(
    resp=Response(HTTP_200=DistributionSettingsOut, HTTP_401=ErrorResponse),
    tags=TAGS,
    security=SECURITY,
)
def get_settings():
    """The shop's distribution settings, with warnings for risky choices."""
    from app.distribution.distributors import get_distribution_settings

    settings = get_distribution_settings()
    db.session.commit()  # the row may have been created just now
    return _settings_out(svc.SettingsResult(settings, svc.settings_warnings(settings)))


@admin_bp.put("/distribution/settings")
@requires_scope("owner")  # an owner-only page in the admin
@audited("distribution_settings.update", rows(DistributionSettings, "distribution_settings"))
@spec.validate(
    resp=Response(
        HTTP_200=DistributionSettingsOut,
        HTTP_403=ErrorResponse,  # rate_above_default / owner_required
        HTTP_422=ErrorResponse,
        **BODY_ERRORS,
    ),
    tags=TAGS,
    security=SECURITY,
)
def put_settings(json: DistributionSettingsPut):
    """Change the settings given; 4+ levels are refused (``too_many_levels``)."""
    with distribution_errors():
        result = svc.update_settings(
            json.model_dump(exclude_unset=True), owner=token_has_owner_rights()
        )
    db.session.commit()
    return _settings_out(result)


def _grade_counts() -> dict[int, int]:
    from sqlalchemy import func, select

    return {
        grade_id: int(n)
        for grade_id, n in db.session.execute(
            select(Distributor.grade_id, func.count()).group_by(Distributor.grade_id)
        )
        if grade_id is not None
    }


@admin_bp.get("/distribution/grades")
@spec.validate(
    resp=Response(HTTP_200=AdminGradeList, HTTP_401=ErrorResponse), tags=TAGS, security=SECURITY
)
def list_grades():
    """Every grade, lowest rank first."""
    counts = _grade_counts()
    return AdminGradeList(items=[_grade_out(g, counts) for g in svc.list_grades()])


@admin_bp.post("/distribution/grades")
@audited("grade.create", rows(Grade, "grade"))
@spec.validate(
    resp=Response(
        HTTP_201=AdminGrade,
        HTTP_403=ErrorResponse,  # rate_above_default
        HTTP_409=ErrorResponse,
        HTTP_422=ErrorResponse,
        **BODY_ERRORS,
    ),
    tags=TAGS,
    security=SECURITY,
)
def create_grade(json: AdminGradeCreate):
    """Add a grade (name unique: 409 ``name_taken``)."""
    with distribution_errors():
        grade = svc.save_grade(json.model_dump(), owner=token_has_owner_rights())
        db.session.commit()
    return _grade_out(grade, {}), 201


def _grade_of(grade_id: int) -> Grade:
    return _get(Grade, grade_id, "等级")


@admin_bp.patch(f"/distribution/grades/{GRADE_ID}")
@audited("grade.update", rows(Grade, "grade"))
@spec.validate(
    resp=Response(
        HTTP_200=AdminGrade, HTTP_409=ErrorResponse, HTTP_422=ErrorResponse, **BODY_ERRORS
    ),
    tags=TAGS,
    security=SECURITY,
)
def patch_grade(grade_id: int, json: AdminGradePatch):
    """Change a grade's name, rates or upgrade conditions (only the fields given)."""
    grade = _grade_of(grade_id)
    with distribution_errors():
        svc.save_grade(json.model_dump(exclude_unset=True), grade, owner=token_has_owner_rights())
        db.session.commit()
    return _grade_out(grade, _grade_counts())


@admin_bp.delete(f"/distribution/grades/{GRADE_ID}")
@audited("grade.delete", rows(Grade, "grade"))
@spec.validate(
    resp=Response("HTTP_204", HTTP_409=ErrorResponse, **ERRORS), tags=TAGS, security=SECURITY
)
def delete_grade(grade_id: int):
    """Delete a grade nobody holds (409 ``grade_in_use`` while distributors hold it). 204."""
    grade = _grade_of(grade_id)
    with distribution_errors():
        svc.delete_grade(grade)
        db.session.commit()
    return "", 204


# --- distributors ---------------------------------------------------------------------------


@admin_bp.get("/distributors")
@spec.validate(
    resp=Response(HTTP_200=AdminDistributorPage, HTTP_401=ErrorResponse, HTTP_422=ErrorResponse),
    tags=TAGS,
    security=SECURITY,
)
def list_distributors(query: AdminDistributorQuery):
    """Distributors, newest first, with team counts and balances; filter by status, search."""
    pagination = db.paginate(
        svc.distributor_query(query.status, query.q),
        page=query.page,
        per_page=query.per_page,
        error_out=False,
    )
    return AdminDistributorPage(
        items=[_distributor_out(d) for d in pagination.items],
        meta=page_meta(query.page, query.per_page, pagination.total or 0),
    )


def _status_change(distributor_id: int, change) -> AdminDistributor:
    d = _get(Distributor, distributor_id, "分销员")
    with distribution_errors():
        change(d)
    db.session.commit()
    return _distributor_out(d)


STATUS_RESP = Response(
    HTTP_200=AdminDistributor, HTTP_409=ErrorResponse, HTTP_422=ErrorResponse, **BODY_ERRORS
)


@admin_bp.post(f"/distributors/{DISTRIBUTOR_ID}/approve")
@audited("distributor.approve", row(Distributor, "distributor_id"))
@spec.validate(resp=STATUS_RESP, tags=TAGS, security=SECURITY)
def approve_distributor(distributor_id: int):
    """Approve an application (pending or rejected → active)."""
    return _status_change(distributor_id, lambda d: svc.approve_distributor(d, _actor()))


@admin_bp.post(f"/distributors/{DISTRIBUTOR_ID}/reject")
@audited("distributor.reject", row(Distributor, "distributor_id"))
@spec.validate(resp=STATUS_RESP, tags=TAGS, security=SECURITY)
def reject_distributor(distributor_id: int, json: AdminRejectBody):
    """Refuse an application with a reason (pending → rejected)."""
    return _status_change(
        distributor_id, lambda d: svc.reject_distributor(d, _actor(), json.reason)
    )


@admin_bp.post(f"/distributors/{DISTRIBUTOR_ID}/disable")
@audited("distributor.disable", row(Distributor, "distributor_id"))
@spec.validate(resp=STATUS_RESP, tags=TAGS, security=SECURITY)
def disable_distributor(distributor_id: int, json: AdminReasonBody):
    """Stop a distributor earning (active → disabled)."""
    return _status_change(
        distributor_id, lambda d: svc.disable_distributor(d, _actor(), json.reason)
    )


@admin_bp.post(f"/distributors/{DISTRIBUTOR_ID}/enable")
@audited("distributor.enable", row(Distributor, "distributor_id"))
@spec.validate(resp=STATUS_RESP, tags=TAGS, security=SECURITY)
def enable_distributor(distributor_id: int):
    """Let a disabled distributor earn again (disabled → active)."""
    return _status_change(distributor_id, lambda d: svc.enable_distributor(d, _actor()))


@admin_bp.patch(f"/distributors/{DISTRIBUTOR_ID}")
@audited("distributor.update", row(Distributor, "distributor_id"))
@spec.validate(resp=STATUS_RESP, tags=TAGS, security=SECURITY)
def patch_distributor(distributor_id: int, json: AdminDistributorPatch):
    """Change the parent (the whole team moves; a cycle is 409 ``cycle``) or the grade."""
    d = _get(Distributor, distributor_id, "分销员")
    given = json.model_fields_set
    with distribution_errors():
        if "parent_id" in given:
            parent = _get(Distributor, json.parent_id, "上级分销员") if json.parent_id else None
            svc.change_parent(d, parent, _actor())
        if "grade_id" in given:
            grade = _get(Grade, json.grade_id, "等级") if json.grade_id else None
            svc.set_grade(d, grade)
    db.session.commit()
    return _distributor_out(d)


# --- ledger ---------------------------------------------------------------------------------


@admin_bp.get("/ledger")
@spec.validate(
    resp=Response(HTTP_200=AdminLedgerPage, HTTP_401=ErrorResponse, HTTP_422=ErrorResponse),
    tags=TAGS,
    security=SECURITY,
)
def list_ledger(query: AdminLedgerQuery):
    """Every ledger entry, newest first; filter by distributor, kind, state, order, dates."""
    if query.created_from and query.created_to and query.created_from > query.created_to:
        raise ApiError(422, "validation_error", "created_from 不能晚于 created_to")
    flt = svc.LedgerFilter(
        distributor_id=query.distributor_id,
        kind=query.kind,
        state=query.state,
        created_from=query.created_from,
        created_to=query.created_to,
        order_id=query.order_id,
    )
    pagination = db.paginate(
        svc.ledger_query(flt), page=query.page, per_page=query.per_page, error_out=False
    )
    return AdminLedgerPage(
        items=[_entry_out(e) for e in pagination.items],
        meta=page_meta(query.page, query.per_page, pagination.total or 0),
        total_fen=svc.ledger_totals(flt),
    )


# --- withdrawals ----------------------------------------------------------------------------


@admin_bp.get("/withdrawals")
@spec.validate(
    resp=Response(HTTP_200=AdminWithdrawalPage, HTTP_401=ErrorResponse, HTTP_422=ErrorResponse),
    tags=TAGS,
    security=SECURITY,
)
def list_withdrawals(query: AdminWithdrawalQuery):
    """Withdrawals, those awaiting review first; filter by status and distributor."""
    pagination = db.paginate(
        svc.withdrawal_query(query.status, query.distributor_id),
        page=query.page,
        per_page=query.per_page,
        error_out=False,
    )
    return AdminWithdrawalPage(
        items=[_withdrawal_out(w) for w in pagination.items],
        meta=page_meta(query.page, query.per_page, pagination.total or 0),
    )


WITHDRAWAL_RESP = Response(
    HTTP_200=AdminWithdrawal,
    HTTP_409=ErrorResponse,
    HTTP_422=ErrorResponse,
    HTTP_502=ErrorResponse,
    **BODY_ERRORS,
)


@admin_bp.post(f"/withdrawals/{WITHDRAWAL_ID}/approve")
@audited("withdrawal.approve", row(Withdrawal, "withdrawal_id"))
@spec.validate(resp=WITHDRAWAL_RESP, tags=TAGS, security=SECURITY)
def approve_withdrawal(withdrawal_id: int):
    """Approve: channel wechat starts the WeChat transfer at once (usually
    ``awaiting_confirm`` until the distributor confirms); channel manual → ``approved``,
    then ``/mark-paid`` once paid by hand. Calling it again on an approved WeChat
    withdrawal retries the transfer with the same bill number."""
    w = _get(Withdrawal, withdrawal_id, "提现")
    try:
        with distribution_errors():
            wd.approve_withdrawal(w, _actor())
    except PaymentError as exc:
        db.session.commit()  # keep the approval and WeChat's message (review_note)
        raise ApiError(502, "payment_error", f"微信转账发起失败：{exc.message}") from None
    db.session.commit()
    return _withdrawal_out(w)


@admin_bp.post(f"/withdrawals/{WITHDRAWAL_ID}/reject")
@audited("withdrawal.reject", row(Withdrawal, "withdrawal_id"))
@spec.validate(resp=WITHDRAWAL_RESP, tags=TAGS, security=SECURITY)
def reject_withdrawal(withdrawal_id: int, json: AdminRejectBody):
    """Refuse a requested withdrawal with a reason; the money returns to the balance."""
    w = _get(Withdrawal, withdrawal_id, "提现")
    try:
        with distribution_errors():
            wd.reject_withdrawal(w, _actor(), json.reason)
    except PaymentError as exc:
        db.session.rollback()
        raise ApiError(502, "payment_error", f"无法向微信确认转账状态：{exc.message}") from None
    db.session.commit()
    return _withdrawal_out(w)


@admin_bp.post(f"/withdrawals/{WITHDRAWAL_ID}/mark-paid")
@audited("withdrawal.mark_paid", row(Withdrawal, "withdrawal_id"))
@spec.validate(resp=WITHDRAWAL_RESP, tags=TAGS, security=SECURITY)
def mark_withdrawal_paid(withdrawal_id: int, json: AdminReasonBody):
    """An approved manual-channel withdrawal was paid outside the system (``reason``: a note)."""
    w = _get(Withdrawal, withdrawal_id, "提现")
    with distribution_errors():
        wd.mark_paid_manually(w, _actor(), json.reason)
    db.session.commit()
    return _withdrawal_out(w)


# --- simulator ------------------------------------------------------------------------------


@admin_bp.post("/distribution/simulate")
@spec.validate(
    resp=Response(HTTP_200=SimulationOut, HTTP_422=ErrorResponse, **BODY_ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def simulate_commission(json: SimulateBody):
    """Who would earn what for ``quantity`` × SKU, and which rule matched; writes nothing.

    When level 1 is an active ordering merchant, ``price_differences`` gives each merchant
    of its chain its 级差 under the shop's precedence (the admin simulator's table), and
    ``levels_detail`` shows commissions as that precedence pays them.
    Give ``buyer_id`` (their binding decides level 1, as for a real order) or ``chain``.
    ``levels``, ``self_purchase``, ``default_bp`` and ``rule`` preview unsaved rules.
    """
    preview = Preview(
        levels=json.levels,
        self_purchase=json.self_purchase,
        default_bp=tuple(json.default_bp) if json.default_bp else None,
        rule_mode=json.rule.mode if json.rule else None,
        rule_values=tuple(json.rule.values) if json.rule else (0, 0, 0),
        rule_for_sku=bool(json.rule and json.rule.scope == "sku"),
    )
    try:
        with distribution_errors():
            result = simulate(
                json.sku_id,
                json.quantity,
                buyer_id=json.buyer_id,
                chain=json.chain,
                paid_fen=json.paid_fen,
                preview=preview,
                district_code=json.district_code,
            )
    finally:
        db.session.rollback()  # a simulation never leaves anything behind
    return SimulationOut(
        sku_id=result.sku_id,
        product_id=result.product_id,
        title=result.title,
        quantity=result.quantity,
        paid_fen=result.paid_fen,
        levels=result.levels,
        chain_source=result.chain_source,
        levels_detail=[SimulatedLevelOut(**vars(row)) for row in result.rows],
        total_fen=result.total_fen,
        price_difference_fen=result.price_difference_fen,
        region_dividend_fen=result.region_dividend_fen,
        merchant_keeps_fen=result.merchant_keeps_fen,
        notes=result.notes,
        price_differences=_differences_out(result.price_differences),
        region_dividends=_dividends_out(result.region_dividends),
        payout_cap_bp=result.payout_cap_bp,
        cap_trimmed_fen=result.cap_trimmed_fen,
    )


def _dividends_out(preview: RegionPreview | None) -> RegionDividendsOut | None:
    """The simulator's region dividends as the API returns them (None: no district)."""
    if preview is None:
        return None
    return RegionDividendsOut(
        district_code=preview.district_code,
        region_text=preview.region_text,
        total_fen=preview.total_fen,
        note=preview.note,
        shares=[
            RegionDividendOut(
                agent_id=share.agent.id,
                level=share.agent.level,
                region_code=share.agent.region_code,
                rate_bp=share.rate_bp,
                amount_fen=share.amount_fen,
                source=share.source,
                note=share.note,
            )
            for share in preview.shares
        ],
    )


def _differences_out(preview: DifferencePreview | None) -> PriceDifferencesOut | None:
    """The simulator's 级差 preview as the API returns it (None: not through a merchant)."""
    if preview is None:
        return None
    plan = preview.plan
    if plan.commissions and plan.price_differences:
        precedence = "both"
    elif plan.price_differences:
        precedence = "price_difference"
    else:
        precedence = "commission"
    return PriceDifferencesOut(
        precedence=precedence,
        commissions=plan.commissions,
        price_differences=plan.price_differences,
        merchant_id=plan.merchant.id,
        rows=[SimulatedDifferenceOut(**vars(row)) for row in preview.rows],
        total_fen=preview.total_fen,
        headquarters_unit_fen=preview.headquarters_unit_fen,
        note=preview.note,
    )
