"""The distributor's money in the customer API: the centre's figures and a masked order
(interfaces.md: ``/api/v1/distributor/summary``, ``/api/v1/distributor/orders/<number>``).

The same services as the H5 centre (``distribution.summary``, ``distribution.order_detail``)
and, like every distributor endpoint, only the signed-in customer's own distributor.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import url_for
from pydantic import BaseModel, Field
from spectree import Response

from app.accounts.guards import customer_required
from app.api.blueprints import bp
from app.api.distributor import ERRORS, SECURITY, TAGS, _mine
from app.api.spec import spec
from app.core.errors import ApiError
from app.distribution.order_detail import masked_order
from app.distribution.summary import CentreSummary, centre_summary, part_sentence, pending_text
from app.extensions import db

# --- models -------------------------------------------------------------------------------


class PendingPartOut(BaseModel):
    settle_on: date | None = Field(
        description="最早可提现日（店铺时间）；null：订单尚未确认收货，收货后才有日期"
    )
    amount_fen: int = Field(description="这部分待结算金额")
    count: int = Field(description="笔数（佣金明细条数）")
    due: bool = Field(description="日期已到，下次结算即变为可提现")
    text: str = Field(description="如 12月14日 起可提现 / 确认收货后 7 天可提现")
    sentence: str = Field(description="如 ¥25.78 将于 12月14日 起可提现，共 4 笔")


class SummaryLinks(BaseModel):
    commissions: str = Field(description="佣金明细（H5）")
    pending: str = Field(description="待结算明细（H5）")
    withdraw: str = Field(description="提现（H5）")
    customers: str
    team: str


class SummaryOut(BaseModel):
    today_fen: int = Field(description="今日收益（店铺时间当天入账的收益）")
    month_fen: int = Field(description="本月收益")
    total_fen: int = Field(description="累计收益（佣金、分红、级差、奖励，扣除退款；不含失效）")
    pending_fen: int = Field(description="待结算")
    available_fen: int = Field(description="可提现")
    withdrawn_fen: int = Field(description="已提现")
    orders_count: int = Field(description="推广订单数：我作为一级成交、仍计入销售的订单")
    customers_count: int = Field(description="当前绑定的客户数")
    team_count: int = Field(description="团队人数（所有下级）")
    level1_count: int
    level2_count: int
    settlement_hold_days: int = Field(description="确认收货后多少天可提现")
    next_settlement: PendingPartOut | None = Field(description="下一笔将变为可提现的待结算")
    pending_parts: list[PendingPartOut] = Field(description="待结算按可提现日期分组，未收货在最后")
    links: SummaryLinks


class OrderLineOut(BaseModel):
    title: str
    sku_text: str = Field(description="规格，如 青瓷")
    quantity: int
    unit_price_fen: int
    amount_fen: int = Field(description="该行实付（优惠后）")
    refunded_quantity: int
    refunded_fen: int


class OrderEarningOut(BaseModel):
    kind: str = Field(
        description="level_1 / level_2 / level_3 / region_dividend / price_difference"
    )
    label: str
    level: int | None = Field(description="佣金层级 1-3；其他收益为 null")
    earner: str = Field(description="我，或部分隐藏的昵称")
    mine: bool
    amount_fen: int
    taken_back_fen: int = Field(description="退款扣回（负数或 0）")
    state: str
    state_label: str
    reason_not_available: str = Field(description="我的收益尚不可提现的原因；他人的为空")


class MaskedOrderOut(BaseModel):
    number: str
    status: str
    status_label: str
    buyer_name: str = Field(description="买家昵称（部分隐藏）；不含手机号和地址")
    created_at: datetime
    paid_at: datetime | None
    completed_at: datetime | None
    items_fen: int
    shipping_fen: int
    paid_fen: int = Field(description="实付金额")
    refunded_fen: int
    my_total_fen: int = Field(description="这笔订单我的收益（扣除退款，不含失效）")
    lines: list[OrderLineOut]
    earnings: list[OrderEarningOut]


# --- helpers ------------------------------------------------------------------------------


def parts_out(summary: CentreSummary) -> list[PendingPartOut]:
    """The pending parts with their texts."""
    return [
        PendingPartOut(
            settle_on=part.settle_on,
            amount_fen=part.amount_fen,
            count=part.count,
            due=part.due(summary.today),
            text=pending_text(part, summary.today, summary.hold_days),
            sentence=part_sentence(part, summary.today, summary.hold_days),
        )
        for part in summary.pending_parts
    ]


# --- endpoints ----------------------------------------------------------------------------


@bp.get("/distributor/summary")
@customer_required
@spec.validate(resp=Response(HTTP_200=SummaryOut, **ERRORS), tags=TAGS, security=SECURITY)
def distributor_summary():
    """The centre home's figures: 收益 today / this month / in all, the balances, when
    pending money becomes withdrawable, promoted orders, customers and team."""
    summary = centre_summary(_mine().id)
    db.session.commit()  # the settled history it may have kept (ledger/history.py)
    money = summary.money
    parts = parts_out(summary)
    return SummaryOut(
        today_fen=money.today_fen,
        month_fen=money.month_fen,
        total_fen=money.total_fen,
        pending_fen=money.pending_fen,
        available_fen=money.available_fen,
        withdrawn_fen=money.withdrawn_fen,
        orders_count=summary.orders_count,
        customers_count=summary.customers_count,
        team_count=summary.team_count,
        level1_count=summary.level1_count,
        level2_count=summary.level2_count,
        settlement_hold_days=summary.hold_days,
        next_settlement=parts[0] if parts else None,
        pending_parts=parts,
        links=SummaryLinks(
            commissions=url_for("distribution.commissions"),
            pending=url_for("distribution.commissions", status="pending"),
            withdraw=url_for("distribution.withdraw"),
            customers=url_for("distribution.customers"),
            team=url_for("distribution.team"),
        ),
    )


@bp.get("/distributor/orders/<number>")
@customer_required
@spec.validate(resp=Response(HTTP_200=MaskedOrderOut, **ERRORS), tags=TAGS, security=SECURITY)
def distributor_order(number: str):
    """An order I earned on or am attributed on, masked (never the buyer's phone or
    address); 404 ``order_not_found`` for any other number."""
    order = masked_order(_mine().id, number)
    if order is None:
        raise ApiError(404, "order_not_found", "没有找到这笔推广订单")
    return MaskedOrderOut(
        number=order.number,
        status=order.status,
        status_label=order.status_label,
        buyer_name=order.buyer_name,
        created_at=order.created_at,
        paid_at=order.paid_at,
        completed_at=order.completed_at,
        items_fen=order.items_fen,
        shipping_fen=order.shipping_fen,
        paid_fen=order.paid_fen,
        refunded_fen=order.refunded_fen,
        my_total_fen=order.my_total_fen,
        lines=[OrderLineOut(**vars(line)) for line in order.lines],
        earnings=[OrderEarningOut(**vars(e)) for e in order.earnings],
    )
