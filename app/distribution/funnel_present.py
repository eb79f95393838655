"""What the funnel pages show and export: charts, column labels, CSV rows (推广效果).

Shared by the distributor centre (phone canvas), the admin page (desktop canvas, CSV) and
kept apart from the figures themselves (funnel_days.py), which know nothing of display.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.core.charts import DESKTOP, Canvas, Chart, Series, chart
from app.core.money import format_yuan
from app.distribution.funnel_days import Figures, FunnelReport

# (key, label, money?) in the funnel's order.
COLUMNS = (
    ("visits", "访问人数", False),
    ("bindings", "新绑定客户", False),
    ("orders", "支付订单", False),
    ("sales_fen", "销售额", True),
    ("commission_fen", "一级佣金", True),
)
LABELS = {key: label for key, label, _money in COLUMNS}


def rate(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage with one decimal ("—" when whole is 0)."""
    if whole <= 0:
        return "—"
    return f"{part * 1000 // whole / 10:g}%"


def funnel_charts(report: FunnelReport, canvas: Canvas = DESKTOP) -> list[Chart]:
    """A chart of the counts (visits, bindings, orders) and one of sales and commission."""
    labels = [d.day.isoformat() for d in report.days]
    counts = [
        Series(LABELS[k], [getattr(d, k) for d in report.days])
        for k in ("visits", "bindings", "orders")
    ]
    money = [
        Series(LABELS[k], [getattr(d, k) for d in report.days])
        for k in ("sales_fen", "commission_fen")
    ]
    return [
        chart(labels, counts, "bar", money=False, canvas=canvas),
        chart(labels, money, "bar", money=True, canvas=canvas),
    ]


def _cell(value: int, money: bool) -> str:
    return format_yuan(value, symbol=False) if money else str(value)


def csv_rows(
    report: FunnelReport, who: str, ranking: Sequence[tuple[str, Figures]] = ()
) -> list[list[str]]:
    """The report as CSV rows: one per day, a total, then one per product, then one per
    distributor of ``ranking`` (the whole shop's, as (label, figures)) when given."""
    head = [f"{label}{'（元）' if money else ''}" for _key, label, money in COLUMNS]
    rows = [["推广效果", who, f"{report.first.isoformat()} 至 {report.last.isoformat()}"]]
    rows.append(["日期", *head])
    for d in report.days:
        rows.append([d.day.isoformat(), *(_cell(getattr(d, k), m) for k, _l, m in COLUMNS)])
    rows.append(["合计", *(_cell(getattr(report.totals, k), m) for k, _l, m in COLUMNS)])
    if report.products:
        rows.append([])
        rows.append(["商品编号", "商品", *head])
        for p in report.products:
            cells = [_cell(getattr(p, k), m) if k != "bindings" else "" for k, _l, m in COLUMNS]
            rows.append([str(p.product_id), p.title, *cells])
    if ranking:
        rows.append([])
        rows.append(["分销员", *head])
        for label, f in ranking:
            rows.append([label, *(_cell(getattr(f, k), m) for k, _l, m in COLUMNS)])
    return rows
