"""经营报表: sales, commission, distribution share, customers, top products and
distributors over a date range, each a chart with its table, each exportable as CSV."""

from __future__ import annotations

import csv
import io

from flask import Response, abort, flash, redirect, render_template, request, url_for

from app.admin import bp
from app.admin.decorators import staff_required
from app.admin.order_csv import BOM, safe_cell
from app.core.charts import Chart, Series, chart
from app.core.money import format_yuan
from app.core.replica import reads_replica
from app.distribution.funnel_days import funnel_report
from app.distribution.funnel_present import rate
from app.reports import queries
from app.reports.periods import GRAINS, Range, parse_range

FUNNEL_DAYS = 30  # the promotion funnel's strip above the charts (a funnel period)


def _series(report: queries.Report, keys: list[str]) -> list[Series]:
    labels = {c.key: c.label for c in report.columns}
    return [Series(labels[k], [r[k] for r in report.rows]) for k in keys]


def charts_of(report: queries.Report) -> list[Chart]:
    """The charts drawn above a report's table."""
    periods = (
        [r["period"] for r in report.rows] if report.key not in ("products", "distributors") else []
    )
    if report.key == "sales":
        return [
            chart(periods, _series(report, ["sales_fen", "refunds_fen"])),
            chart(periods, _series(report, ["orders"]), "line", money=False),
        ]
    if report.key == "commission":
        keys = [
            "commission_settled_fen",
            "commission_pending_fen",
            "dividend_settled_fen",
            "dividend_pending_fen",
        ]
        return [chart(periods, _series(report, keys))]
    if report.key == "share":
        return [chart(periods, _series(report, ["dist_fen", "natural_fen"]))]
    if report.key == "customers":
        return [chart(periods, _series(report, ["link", "qr", "staff", "natural"]), money=False)]
    names = [(r.get("title") or r.get("name") or "")[:8] for r in report.rows]
    key = "amount_fen" if report.key == "products" else "sales_fen"
    return [chart(names, _series(report, [key]))]


def _cell(value: object, kind: str) -> str:
    if kind == "money":
        return format_yuan(int(value or 0), symbol=False)
    if kind == "pct":
        return f"{value}%"
    return str(value)


def report_csv(report: queries.Report) -> str:
    """The report as CSV text for Excel (BOM, money in yuan, formula-safe cells)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c.label for c in report.columns])
    for row in report.rows:
        writer.writerow([safe_cell(_cell(row.get(c.key, ""), c.kind)) for c in report.columns])
    if report.totals:
        writer.writerow(
            [
                "合计"
                if i == 0
                else safe_cell(_cell(report.totals[c.key], c.kind))
                if c.key in report.totals
                else ""
                for i, c in enumerate(report.columns)
            ]
        )
    return BOM + buffer.getvalue()


def _args(rng: Range) -> dict[str, str]:
    return {"from": rng.start.isoformat(), "to": rng.end.isoformat(), "grain": rng.grain}


@bp.get("/reports")
@staff_required
@reads_replica
def reports():
    """Every report over the chosen range (default: the last 30 days, by day)."""
    rng, error = parse_range(request.args)
    built = queries.all_reports(rng)
    return render_template(
        "admin/reports.html",
        reports=[(r, charts_of(r)) for r in built],
        summary={r.key: r.totals for r in built},
        args=_args(rng),
        grains=GRAINS,
        funnel=funnel_report(None, FUNNEL_DAYS),
        funnel_days=FUNNEL_DAYS,
        rate=rate,
        error=error,
    ), (422 if error else 200)


@bp.get("/reports/export")
@staff_required
@reads_replica
def report_export():
    """One report (``?report=sales``..., sales when not given) of the range as CSV."""
    key = request.args.get("report") or "sales"
    build = queries.REPORTS.get(key)
    if build is None:
        abort(404)
    rng, error = parse_range(request.args)
    if error:
        flash(error, "error")
        return redirect(url_for("admin.reports"))
    report = build(rng)
    name = f"report-{key}-{rng.start:%Y%m%d}-{rng.end:%Y%m%d}-{rng.grain}.csv"
    return Response(
        report_csv(report),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )
