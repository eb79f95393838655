"""我的客户 and 我的团队 in the customer JSON API: ``GET /api/v1/distributor/customers``
and ``GET /api/v1/distributor/team``, the same rows as the H5 pages
(``app.distribution.customers`` and ``members`` say what each figure means).

Like every distributor endpoint, they read the signed-in customer's own distributor,
never an id from the request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import current_app, url_for
from pydantic import BaseModel, Field
from spectree import Response

from app.accounts.guards import customer_required
from app.api.blueprints import bp
from app.api.distributor import ERRORS, SECURITY, TAGS, _mine
from app.api.schemas import ErrorResponse, PageInfo, PageQuery
from app.api.spec import spec
from app.distribution.centre import share_url
from app.distribution.customers import customer_counts, customers_page
from app.distribution.members import members_page
from app.distribution.team import team_stats

QUERY_ERRORS = {**ERRORS, "HTTP_422": ErrorResponse}


class CustomerQuery(PageQuery):
    sort: Literal["bound", "recent", "spend"] = Field(
        "bound", description="bound：最近绑定；recent：最近下单；spend：消费最多"
    )
    status: Literal["active", "lapsed"] = Field(
        "active", description="active：绑定中；lapsed：已失效（尚未被他人绑定）"
    )


class BindingStateOut(BaseModel):
    code: Literal["protected", "expiring", "permanent", "lapsed"] = Field(
        description="protected：保护期内；expiring：有效期内（保护期已过）；"
        "permanent：永久绑定；lapsed：已失效"
    )
    label: str = Field(description="如 绑定有效，保护期剩 12 天 / 永久绑定 / 已失效")
    days_left: int | None = Field(
        description="protected：保护期剩余天数；expiring：有效期剩余天数；其余为 null"
    )


class CustomerOut(BaseModel):
    customer_id: int = Field(description="客户的用户 id（不是 openid）")
    name: str = Field(description="昵称；没有昵称时为 微信用户 + 用户 id 后 4 位")
    avatar_url: str = Field(description="微信头像；没有时为空字符串")
    source: str = Field(description="link / qr / staff")
    bound_at: datetime
    expires_at: datetime | None = Field(description="绑定到期时间；null 表示永久")
    protected_until: datetime | None = Field(description="保护期截止时间")
    binding_state: BindingStateOut
    orders_count: int = Field(description="经你成交的已付款订单数（已付款、已发货、已完成）")
    spend_fen: int = Field(description="这些订单的商品实付，扣除退款，不含运费")
    last_order_at: datetime | None = Field(description="其中最近一笔的付款时间")


class CustomerPage(BaseModel):
    total: int = Field(description="绑定中的客户数")
    lapsed_total: int = Field(description="已失效的客户数")
    sort: str
    status: str
    items: list[CustomerOut]
    meta: PageInfo


class TeamQuery(PageQuery):
    level: int = Field(1, ge=1, le=2, description="1：直接邀请的成员；2：二级成员")


class TeamMemberOut(BaseModel):
    distributor_id: int
    level: int
    name: str = Field(description="昵称；没有昵称时为 微信用户 + 用户 id 后 4 位")
    avatar_url: str
    status: str = Field(description="active / pending / rejected / disabled")
    joined_at: datetime
    sales_fen: int = Field(description="该成员作为一级成交的商品实付（扣除退款，不含运费），累计")
    month_sales_fen: int = Field(description="同上，本月（按付款时间，店铺时区）")
    brought_fen: int = Field(
        description="这些订单给我的佣金（一级成员：二级佣金；二级成员：三级佣金），"
        "扣除退款，不含已失效的"
    )


class TeamOut(BaseModel):
    level1_count: int
    level2_count: int
    team_size: int
    team_sales_fen: int
    level: int
    invite_url: str = Field(description="邀请链接：好友打开后加入成为我的一级成员")
    items: list[TeamMemberOut]
    meta: PageInfo


# --- endpoints ----------------------------------------------------------------------------


@bp.get("/distributor/customers")
@customer_required
@spec.validate(resp=Response(HTTP_200=CustomerPage, **QUERY_ERRORS), tags=TAGS, security=SECURITY)
def distributor_customers(query: CustomerQuery):
    """My customers, one page: name people can tell apart, avatar, binding state in words,
    paid orders and spend through me, last order; sorted by binding, last order or spend."""
    d = _mine()
    rows = customers_page(
        d.id, sort=query.sort, status=query.status, page=query.page, per_page=query.per_page + 1
    )
    counts = customer_counts(d.id)
    return CustomerPage(
        total=counts["active"],
        lapsed_total=counts["lapsed"],
        sort=query.sort,
        status=query.status,
        items=[
            CustomerOut(
                customer_id=c.user_id,
                name=c.name,
                avatar_url=c.avatar_url,
                source=c.source,
                bound_at=c.bound_at,
                expires_at=c.expires_at,
                protected_until=c.protected_until,
                binding_state=BindingStateOut(
                    code=c.state.code, label=c.state.label, days_left=c.state.days_left
                ),
                orders_count=c.orders_count,
                spend_fen=c.spend_fen,
                last_order_at=c.last_order_at,
            )
            for c in rows[: query.per_page]
        ],
        meta=PageInfo.of(query, len(rows)),
    )


@bp.get("/distributor/team")
@customer_required
@spec.validate(resp=Response(HTTP_200=TeamOut, **QUERY_ERRORS), tags=TAGS, security=SECURITY)
def distributor_team(query: TeamQuery):
    """My team: level 1 and 2 counts, team size and sales, the invite link, and one
    level's members with their sales this month and in total and what they brought me."""
    d = _mine()
    stats = team_stats(d.id)
    rows = members_page(d.id, query.level, page=query.page, per_page=query.per_page + 1)
    invite = share_url(current_app.config["PUBLIC_BASE_URL"], d.code, url_for("distribution.index"))
    return TeamOut(
        level1_count=stats.level1_count,
        level2_count=stats.level2_count,
        team_size=stats.team_size,
        team_sales_fen=stats.team_sales_fen,
        level=query.level,
        invite_url=invite,
        items=[
            TeamMemberOut(
                distributor_id=m.distributor_id,
                level=m.level,
                name=m.name,
                avatar_url=m.avatar_url,
                status=m.status,
                joined_at=m.joined_at,
                sales_fen=m.sales_fen,
                month_sales_fen=m.month_sales_fen,
                brought_fen=m.brought_fen,
            )
            for m in rows[: query.per_page]
        ],
        meta=PageInfo.of(query, len(rows)),
    )
