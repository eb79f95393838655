"""Regional agents in the JSON API.

Customer side (``/api/v1/agent/...``, session cookie): my agent rows and money, apply for a
region, orders shipped into my regions (buyer masked) and my dividends. Every endpoint reads
the signed-in customer's own rows, never an id from the request.

Merchant Open API (``/api/v1/admin/agents``, ``/api/v1/admin/cloud/settings``, bearer token):
list agents, assign, approve, reject, revoke, transfer, settings and product overrides,
calling the same services as the admin pages (app.cloud.agents). Refusals answer the
service's code: 409 ``region_taken`` / ``invalid_transition``, 422 ``invalid_region`` ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Literal

from flask import g
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr
from spectree import Response
from sqlalchemy import select

from app.accounts.guards import customer_id, customer_required
from app.accounts.models import User
from app.api.blueprints import admin_bp, bp, requires_scope, token_has_owner_rights
from app.api.present import page_meta
from app.api.schemas import (
    MAX_ID,
    Body,
    ErrorResponse,
    Id,
    Name,
    PageInfo,
    PageMeta,
    PageQuery,
    omitted,
)
from app.api.spec import BEARER, COOKIE, spec
from app.catalog.models import Product
from app.cloud import agents as svc
from app.cloud import dividends as div
from app.cloud.models import (
    AGENT_LEVELS,
    AGENT_STATUSES,
    PRECEDENCE,
    AgentProductRate,
    CloudSettings,
    RegionAgent,
)
from app.core.audit import audited, row, rows
from app.core.errors import ApiError
from app.core.status import InvalidTransition
from app.distribution.payout_cap import RateRefused
from app.extensions import db
from app.ledger.balances import balances
from app.ledger.kinds import CENTRE_STATE_LABELS, entry_label
from app.orders.states import ORDER_STATUS_LABELS

AGENT_ID = "<int:agent_id>"
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_403": ErrorResponse, "HTTP_404": ErrorResponse}
BODY_ERRORS = {
    **ERRORS,
    "HTTP_400": ErrorResponse,
    "HTTP_409": ErrorResponse,
    "HTTP_415": ErrorResponse,
    "HTTP_422": ErrorResponse,
}
Level = Literal[AGENT_LEVELS]  # type: ignore[valid-type]
RegionCode = Annotated[
    StrictStr, Field(min_length=6, max_length=6, pattern=r"^\d{6}$", description="GB/T 2260 代码")
]


# --- models -----------------------------------------------------------------------------------


class AgentRegionOut(BaseModel):
    id: int
    level: str = Field(description="province / city / district")
    level_label: str
    region_code: str
    region_name: str = Field(description="如 广东省 深圳市 南山区")
    status: str = Field(description="pending / active / rejected / revoked")
    status_label: str
    rate_bp: int = Field(description="该级别当前的店铺分红比例（万分比）")
    reason: str = Field(description="驳回或撤销原因")
    created_at: datetime
    approved_at: datetime | None


class AgentMe(BaseModel):
    agents_enabled: bool
    regions: list[AgentRegionOut]
    region_orders: int = Field(description="生效区域内的已付款订单数")
    region_sales_fen: int = Field(description="生效区域内的商品实付（扣除退款）")
    dividends_earned_fen: int = Field(description="累计分红（扣除退款）")
    dividends_pending_fen: int
    available_fen: int = Field(description="可提现（与分销佣金同一账户）")


class AgentRegionList(BaseModel):
    items: list[AgentRegionOut]


class AgentApply(Body):
    level: Level
    region_code: RegionCode


class AgentOrderOut(BaseModel):
    number: str
    buyer_name: str = Field(description="买家昵称（部分隐藏）")
    region: str
    district_code: str
    status: str
    status_label: str
    amount_fen: int = Field(description="商品金额减退款（不含运费）：分红按此计算")
    items_fen: int = Field(description="商品金额（不含运费）")
    paid_fen: int = Field(description="实付：商品加运费，顾客实际支付")
    refunded_fen: int = Field(description="已退款")
    dividend_fen: int = Field(description="我在该订单上的分红（扣除退款）")
    carrier: str | None
    tracking_number: str | None
    paid_at: datetime


class AgentOrderPage(BaseModel):
    items: list[AgentOrderOut]
    meta: PageInfo


class DividendOut(BaseModel):
    id: int
    kind: str = Field(description="region_dividend 或 reversal（退款扣回）")
    kind_label: str
    amount_fen: int
    state: str
    state_label: str
    order_number: str | None
    buyer_name: str
    note: str
    reason_not_available: str = Field(description="尚不可提现的原因；可提现时为空")
    created_at: datetime


class DividendPage(BaseModel):
    items: list[DividendOut]
    meta: PageInfo


class AdminAgentQuery(PageQuery):
    status: Literal[AGENT_STATUSES] | None = None  # type: ignore[valid-type]
    level: Level | None = None
    region_code: str | None = Field(None, pattern=r"^\d{6}$")


class AdminAgent(BaseModel):
    id: int
    user_id: int
    nickname: str
    distributor_id: int
    level: str
    region_code: str
    region_name: str
    status: str
    created_at: datetime
    approved_at: datetime | None
    ended_at: datetime | None


class AdminAgentPage(BaseModel):
    items: list[AdminAgent]
    meta: PageMeta


class AdminAgentAssign(Body):
    user_id: Id
    level: Level
    region_code: RegionCode


class AdminAgentReason(Body):
    reason: Name = Field(min_length=1, max_length=200)


class AdminAgentTransfer(Body):
    to_user_id: Id
    reason: str = Field("", max_length=200, pattern=r"^[^\x00]*$")


class CloudSettingsOut(BaseModel):
    agents_enabled: bool
    province_bp: int = Field(description="省级代理分红，万分比")
    city_bp: int
    district_bp: int
    precedence: str = Field(description="price_difference / commission / both")


class CloudSettingsPut(Body):
    agents_enabled: StrictBool = omitted()
    province_bp: StrictInt = omitted(description="0-10000")
    city_bp: StrictInt = omitted()
    district_bp: StrictInt = omitted()
    precedence: Literal[PRECEDENCE] = omitted()  # type: ignore[valid-type]


class ProductRateOut(BaseModel):
    product_id: int
    level: str
    rate_bp: int


class ProductRateList(BaseModel):
    items: list[ProductRateOut]


class ProductRatePut(Body):
    product_id: Id
    level: Level
    rate_bp: StrictInt | None = Field(description="万分比 0-10000；null 删除该商品的单独设置")


# --- helpers ----------------------------------------------------------------------------------


@contextmanager
def agent_errors() -> Iterator[None]:
    """A refused change rolls back and answers with the service's code and message."""
    try:
        yield
    except svc.AgentError as err:
        db.session.rollback()
        raise ApiError(err.status, err.code, err.message) from None
    except RateRefused as err:  # payout_cap_exceeded (422), rate_above_default (403)
        db.session.rollback()
        detail = {"field": err.field, "code": err.code, "message": err.message}
        raise ApiError(err.status, err.code, err.message, [detail]) from None
    except InvalidTransition as err:
        db.session.rollback()
        label = svc.STATUS_LABELS.get(err.current, err.current)
        raise ApiError(
            409, "invalid_transition", f"该代理当前状态为“{label}”，不能进行此操作"
        ) from None


def region_out(agent: RegionAgent, settings) -> AgentRegionOut:
    return AgentRegionOut(
        id=agent.id,
        level=agent.level,
        level_label=svc.LEVEL_LABELS[agent.level],
        region_code=agent.region_code,
        region_name=agent.region_name,
        status=agent.status,
        status_label=svc.STATUS_LABELS.get(agent.status, agent.status),
        rate_bp=svc.level_rate_bp(settings, agent.level),
        reason=svc.last_reason(agent) if agent.status in ("rejected", "revoked") else "",
        created_at=agent.created_at,
        approved_at=agent.approved_at,
    )


def _mine() -> list[RegionAgent]:
    rows = svc.agents_of_user(customer_id())
    if not rows:
        raise ApiError(404, "not_agent", "你还不是区域代理")
    return rows


def _active(rows: list[RegionAgent]) -> list[RegionAgent]:
    return [a for a in rows if a.status == svc.ACTIVE]


def _admin_actor() -> str:
    return f"api:{g.api_token.id}"


def admin_agent_out(agent: RegionAgent) -> AdminAgent:
    user = db.session.get(User, agent.user_id)
    return AdminAgent(
        id=agent.id,
        user_id=agent.user_id,
        nickname=(user.nickname if user else "") or "",
        distributor_id=agent.distributor_id,
        level=agent.level,
        region_code=agent.region_code,
        region_name=agent.region_name,
        status=agent.status,
        created_at=agent.created_at,
        approved_at=agent.approved_at,
        ended_at=agent.ended_at,
    )


def settings_out() -> CloudSettingsOut:
    s = svc.get_cloud_settings()
    return CloudSettingsOut(
        agents_enabled=s.agents_enabled,
        province_bp=s.province_bp,
        city_bp=s.city_bp,
        district_bp=s.district_bp,
        precedence=s.precedence,
    )


# --- customer side ----------------------------------------------------------------------------

TAGS = ["agent"]
SECURITY = {COOKIE: []}


@bp.get("/agent/me")
@customer_required
@spec.validate(resp=Response(HTTP_200=AgentMe, **ERRORS), tags=TAGS, security=SECURITY)
def agent_me():
    """My regions (any status), region sales, dividends and available balance; 404
    ``not_agent`` when I never applied."""
    rows = _mine()
    settings = svc.get_cloud_settings()
    orders, sales = div.region_sales(_active(rows))
    totals = div.dividend_totals(rows[0].distributor_id)
    return AgentMe(
        agents_enabled=settings.agents_enabled,
        regions=[region_out(a, settings) for a in rows],
        region_orders=orders,
        region_sales_fen=sales,
        dividends_earned_fen=totals["earned_fen"],
        dividends_pending_fen=totals["pending_fen"],
        available_fen=balances(rows[0].distributor_id).available_fen,
    )


@bp.get("/agent/regions")
@customer_required
@spec.validate(resp=Response(HTTP_200=AgentRegionList, **ERRORS), tags=TAGS, security=SECURITY)
def agent_regions():
    """My agent rows: active first, then applications, then ended ones ([] when none)."""
    settings = svc.get_cloud_settings()
    rows = svc.agents_of_user(customer_id())
    return AgentRegionList(items=[region_out(a, settings) for a in rows])


@bp.post("/agent/apply")
@customer_required
@spec.validate(resp=Response(HTTP_201=AgentRegionOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def agent_apply(json: AgentApply):
    """Apply for a region: a province code for province level, a city code for city
    level, a district code for district level. 409 ``region_taken`` when it is held or
    under review (who holds it is not said)."""
    with agent_errors():
        agent = svc.apply_for_region(customer_id(), json.level, json.region_code)
        db.session.commit()
    return region_out(agent, svc.get_cloud_settings()), 201


@bp.get("/agent/orders")
@customer_required
@spec.validate(resp=Response(HTTP_200=AgentOrderPage, **ERRORS), tags=TAGS, security=SECURITY)
def agent_orders(query: PageQuery):
    """Paid orders shipped into my active regions since I hold them, newest first."""
    rows = _mine()
    found = div.region_orders(_active(rows), rows[0].distributor_id, query.page, query.per_page + 1)
    return AgentOrderPage(
        items=[
            AgentOrderOut(
                number=r.number,
                buyer_name=r.buyer_name,
                region=r.region_text,
                district_code=r.district_code,
                status=r.status,
                status_label=ORDER_STATUS_LABELS.get(r.status, r.status),
                amount_fen=r.amount_fen,
                items_fen=r.items_fen,
                paid_fen=r.paid_fen,
                refunded_fen=r.refunded_fen,
                dividend_fen=r.dividend_fen,
                carrier=r.carrier,
                tracking_number=r.tracking_number,
                paid_at=r.paid_at,
            )
            for r in found[: query.per_page]
        ],
        meta=PageInfo.of(query, len(found)),
    )


@bp.get("/agent/dividends")
@customer_required
@spec.validate(resp=Response(HTTP_200=DividendPage, **ERRORS), tags=TAGS, security=SECURITY)
def agent_dividends(query: PageQuery):
    """My region dividends and their refund reversals, with why not withdrawable yet."""
    rows = _mine()
    entries = div.dividend_entries(rows[0].distributor_id, query.page, query.per_page + 1)
    return DividendPage(
        items=[
            DividendOut(
                id=r.entry.id,
                kind=r.entry.kind,
                kind_label=entry_label(r.entry),
                amount_fen=r.entry.amount_fen,
                state=r.entry.state,
                state_label=CENTRE_STATE_LABELS.get(r.entry.state, r.entry.state),
                order_number=r.order_number,
                buyer_name=r.buyer_name,
                note=r.entry.note,
                reason_not_available=r.reason_not_available,
                created_at=r.entry.created_at,
            )
            for r in entries[: query.per_page]
        ],
        meta=PageInfo.of(query, len(entries)),
    )


# --- merchant Open API ------------------------------------------------------------------------

ADMIN_TAGS = ["admin-agents"]
ADMIN_SECURITY = {BEARER: []}
ADMIN_ERRORS = {"HTTP_401": ErrorResponse, "HTTP_404": ErrorResponse}
ADMIN_BODY_ERRORS = {
    **ADMIN_ERRORS,
    "HTTP_400": ErrorResponse,
    "HTTP_409": ErrorResponse,
    "HTTP_415": ErrorResponse,
    "HTTP_422": ErrorResponse,
}
AGENT_RESP = Response(HTTP_200=AdminAgent, **ADMIN_BODY_ERRORS)


@admin_bp.get("/agents")
@spec.validate(
    resp=Response(HTTP_200=AdminAgentPage, **ADMIN_ERRORS),
    tags=ADMIN_TAGS,
    security=ADMIN_SECURITY,
)
def admin_agents(query: AdminAgentQuery):
    """Agents, newest first, filterable by status, level and region code."""
    stmt = select(RegionAgent).order_by(RegionAgent.id.desc())
    if query.status:
        stmt = stmt.where(RegionAgent.status == query.status)
    if query.level:
        stmt = stmt.where(RegionAgent.level == query.level)
    if query.region_code:
        stmt = stmt.where(RegionAgent.region_code == query.region_code)
    pagination = db.paginate(stmt, page=query.page, per_page=query.per_page, error_out=False)
    return AdminAgentPage(
        items=[admin_agent_out(a) for a in pagination.items],
        meta=page_meta(query.page, query.per_page, pagination.total or 0),
    )


@admin_bp.post("/agents")
@audited("agent.assign", rows(RegionAgent, "region_agent"))
@spec.validate(
    resp=Response(HTTP_201=AdminAgent, **ADMIN_BODY_ERRORS),
    tags=ADMIN_TAGS,
    security=ADMIN_SECURITY,
)
def admin_assign_agent(json: AdminAgentAssign):
    """Make a customer the active agent of a region (409 ``region_taken`` when held)."""
    with agent_errors():
        agent = svc.assign_region(json.user_id, json.level, json.region_code, _admin_actor())
        db.session.commit()
    return admin_agent_out(agent), 201


def _decide(agent_id: int, action):
    # ``<int:...>`` takes any length: a number past any row is not found, not a
    # database error (SQLite cannot bind it; PostgreSQL's integer refuses it).
    agent = db.session.get(RegionAgent, agent_id) if agent_id <= MAX_ID else None
    if agent is None:
        raise ApiError(404, "not_found", "代理不存在")
    with agent_errors():
        result = action(agent)
        db.session.commit()
    return admin_agent_out(result if isinstance(result, RegionAgent) else agent)


@admin_bp.post(f"/agents/{AGENT_ID}/approve")
@audited("agent.approve", row(RegionAgent, "agent_id"))
@spec.validate(resp=AGENT_RESP, tags=ADMIN_TAGS, security=ADMIN_SECURITY)
def admin_approve_agent(agent_id: int):
    """Approve an application (pending → active). No body."""
    return _decide(agent_id, lambda a: svc.approve(a, _admin_actor()))


@admin_bp.post(f"/agents/{AGENT_ID}/reject")
@audited("agent.reject", row(RegionAgent, "agent_id"))
@spec.validate(resp=AGENT_RESP, tags=ADMIN_TAGS, security=ADMIN_SECURITY)
def admin_reject_agent(agent_id: int, json: AdminAgentReason):
    """Refuse an application with a reason (pending → rejected); the region is free."""
    return _decide(agent_id, lambda a: svc.reject(a, _admin_actor(), json.reason))


@admin_bp.post(f"/agents/{AGENT_ID}/revoke")
@audited("agent.revoke", row(RegionAgent, "agent_id"))
@spec.validate(resp=AGENT_RESP, tags=ADMIN_TAGS, security=ADMIN_SECURITY)
def admin_revoke_agent(agent_id: int, json: AdminAgentReason):
    """Revoke an active agent (active → revoked); earned dividends stay."""
    return _decide(agent_id, lambda a: svc.revoke(a, _admin_actor(), json.reason))


@admin_bp.post(f"/agents/{AGENT_ID}/transfer")
@audited("agent.transfer", row(RegionAgent, "agent_id"))
@spec.validate(resp=AGENT_RESP, tags=ADMIN_TAGS, security=ADMIN_SECURITY)
def admin_transfer_agent(agent_id: int, json: AdminAgentTransfer):
    """Hand an active agent's region to another customer; answers the new agent row."""
    return _decide(
        agent_id, lambda a: svc.transfer(a, json.to_user_id, _admin_actor(), json.reason)
    )


@admin_bp.get("/cloud/settings")
@spec.validate(
    resp=Response(HTTP_200=CloudSettingsOut, **ADMIN_ERRORS),
    tags=ADMIN_TAGS,
    security=ADMIN_SECURITY,
)
def admin_cloud_settings():
    """Cloud settings: agents on/off, dividend rates per level, commission precedence."""
    out = settings_out()
    db.session.commit()  # the row may have been created
    return out


@admin_bp.put("/cloud/settings")
@requires_scope("owner")  # an owner-only page in the admin
@audited("cloud_settings.update", rows(CloudSettings, "cloud_settings"))
@spec.validate(
    resp=Response(HTTP_200=CloudSettingsOut, HTTP_403=ErrorResponse, **ADMIN_BODY_ERRORS),
    tags=ADMIN_TAGS,
    security=ADMIN_SECURITY,
)
def admin_cloud_settings_put(json: CloudSettingsPut):
    """Change the given settings only; rates 0-10000 (422 ``invalid_rate``)."""
    with agent_errors():
        svc.update_cloud_settings(
            json.model_dump(exclude_unset=True), owner=token_has_owner_rights()
        )
        db.session.commit()
    return settings_out()


@admin_bp.get("/agents/product-rates")
@spec.validate(
    resp=Response(HTTP_200=ProductRateList, **ADMIN_ERRORS),
    tags=ADMIN_TAGS,
    security=ADMIN_SECURITY,
)
def admin_agent_product_rates():
    """Per-product dividend rates overriding the level rates."""
    return _rates_out()


def _rates_out() -> ProductRateList:
    return ProductRateList(
        items=[
            ProductRateOut(product_id=r.product_id, level=r.level, rate_bp=r.rate_bp)
            for r in svc.product_rates()
        ]
    )


@admin_bp.put("/agents/product-rates")
@requires_scope("owner")  # an owner-only page in the admin
@audited("agent_rate.save", rows(AgentProductRate, "agent_product_rate"))
@spec.validate(
    resp=Response(HTTP_200=ProductRateList, HTTP_403=ErrorResponse, **ADMIN_BODY_ERRORS),
    tags=ADMIN_TAGS,
    security=ADMIN_SECURITY,
)
def admin_agent_product_rate_put(json: ProductRatePut):
    """Set one product's rate for one level (``rate_bp`` null removes it)."""
    if db.session.get(Product, json.product_id) is None:
        raise ApiError(404, "not_found", "商品不存在")
    with agent_errors():
        svc.set_product_rate(
            json.product_id, json.level, json.rate_bp, owner=token_has_owner_rights()
        )
        db.session.commit()
    return _rates_out()
