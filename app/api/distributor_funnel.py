"""``GET /api/v1/distributor/funnel``: my promotion funnel (推广效果) as JSON.

The same figures as the centre's 推广效果 page (app/distribution/funnel_days.py has the
definitions): per day and per product, the visits my links and QR codes brought, the
customers newly bound to me, the orders they paid, the sales and my level-1 commission.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field, field_validator
from spectree import Response

from app.accounts.guards import customer_required
from app.api.blueprints import bp
from app.api.distributor import ERRORS, SECURITY, TAGS, _mine
from app.api.schemas import ErrorResponse, Query
from app.api.spec import spec
from app.distribution.funnel_days import PERIODS, Figures, funnel_report


class FunnelQuery(Query):
    days: int = Field(
        7, description="统计天数：7 或 30（含今天）", json_schema_extra={"enum": list(PERIODS)}
    )

    @field_validator("days")
    @classmethod
    def _a_period(cls, value: int) -> int:
        # An int from the query string (as page numbers are), then one of the periods.
        if value not in PERIODS:
            raise ValueError("统计天数只能是 7 或 30")
        return value


class FunnelFigures(BaseModel):
    visits: int = Field(description="访问人数：带推广码的页面访问与二维码扫码，每人每天计一次")
    bindings: int = Field(description="新绑定客户数（商品行为 0：只按天统计）")
    orders: int = Field(description="这些客户当天支付的订单数（一级为本人，非自购）")
    sales_fen: int = Field(description="这些订单的商品实付（不含运费，退款不扣减），单位分")
    commission_fen: int = Field(description="这些订单给本人的一级佣金（付款时），单位分")


class FunnelDayOut(FunnelFigures):
    day: date = Field(description="北京时间日期")


class FunnelProductOut(FunnelFigures):
    product_id: int
    title: str


class FunnelOut(BaseModel):
    days: int
    first_day: date
    last_day: date = Field(description="今天（北京时间），实时")
    totals: FunnelFigures
    daily: list[FunnelDayOut] = Field(description="按日期从早到晚，每天一行（无数据为 0）")
    products: list[FunnelProductOut] = Field(description="期间有访问或订单的商品，销售额高的在前")


def _figures(f: Figures) -> dict[str, int]:
    return f.as_dict()


@bp.get("/distributor/funnel")
@customer_required
@spec.validate(
    resp=Response(HTTP_200=FunnelOut, HTTP_422=ErrorResponse, **ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def distributor_funnel(query: FunnelQuery):
    """My funnel over the last 7 or 30 days: visits → new customers → paid orders, with
    sales and commission, per day and per product; 404 ``not_distributor``."""
    report = funnel_report(_mine(), query.days)
    return FunnelOut(
        days=query.days,
        first_day=report.first,
        last_day=report.last,
        totals=FunnelFigures(**_figures(report.totals)),
        daily=[FunnelDayOut(day=d.day, **_figures(d)) for d in report.days],
        products=[
            FunnelProductOut(product_id=p.product_id, title=p.title, **_figures(p))
            for p in report.products
        ],
    )
