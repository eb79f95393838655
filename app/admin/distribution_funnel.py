"""推广效果 in the admin: the promotion funnel of one distributor (picked by name, code or
id) or of the whole shop (every distributor together), over 7 or 30 days, with CSV.

The figures and their definitions are app/distribution/funnel_days.py's; this module
only picks whose funnel to show.
"""

from __future__ import annotations

import csv
import io

from flask import Response, abort, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.admin import bp
from app.admin.decorators import staff_required
from app.admin.order_csv import BOM, safe_cell
from app.core.charts import DESKTOP
from app.distribution import admin_distributors
from app.distribution.funnel_days import (
    PERIODS,
    Figures,
    distributor_ranking,
    funnel_report,
    parse_period,
)
from app.distribution.funnel_present import COLUMNS, csv_rows, funnel_charts, rate
from app.distribution.models import Distributor
from app.extensions import db

MATCHES = 10  # distributors listed for a search; a narrower search finds the rest
RANKED = 20  # distributors listed under the whole shop's funnel


def _ranking(days: int) -> list[tuple[Distributor, Figures]]:
    """The whole shop's top distributors of the period, as (distributor, figures)."""
    ranked = distributor_ranking(days, limit=RANKED)
    found = {
        d.id: d
        for d in db.session.scalars(
            select(Distributor)
            .where(Distributor.id.in_([did for did, _f in ranked]))
            .options(joinedload(Distributor.user))
        )
    }
    return [(found[did], f) for did, f in ranked if did in found]


def _days() -> int:
    days = parse_period(request.args.get("days"))
    if days is None:
        abort(400, description="统计天数只能是 7 天或 30 天")
    return days


def _distributor() -> Distributor | None:
    """``?d=<id>``: that distributor; absent: the whole shop."""
    raw = (request.args.get("d") or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > 9:
        abort(400, description="分销员编号不正确")
    found = db.session.get(Distributor, int(raw))
    if found is None:
        abort(404, description="分销员不存在")
    return found


def _who(d: Distributor | None) -> str:
    return admin_distributors.distributor_label(d) if d is not None else "全店"


@bp.get("/distribution/funnel")
@staff_required
def distribution_funnel():
    """The funnel page: whole shop by default, one distributor with ``?d=``; ``?q=`` lists
    distributors whose nickname, code or id matches, to pick one."""
    days = _days()
    chosen = _distributor()
    q = (request.args.get("q") or "").strip()[:50]
    matches = (
        list(db.session.scalars(admin_distributors.distributor_query(None, q).limit(MATCHES)))
        if q
        else []
    )
    report = funnel_report(chosen, days)
    return render_template(
        "admin/distribution/funnel.html",
        ranking=_ranking(days) if chosen is None else [],
        days=days,
        periods=PERIODS,
        chosen=chosen,
        who=_who(chosen),
        q=q,
        matches=matches,
        label=admin_distributors.distributor_label,
        report=report,
        charts=funnel_charts(report, DESKTOP),
        columns=COLUMNS,
        rate=rate,
    )


@bp.get("/distribution/funnel/export")
@staff_required
def distribution_funnel_export():
    """The same funnel as CSV (Excel-ready: BOM, yuan, formula-safe cells)."""
    days = _days()
    chosen = _distributor()
    report = funnel_report(chosen, days)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    ranking = _ranking(days) if chosen is None else []
    labelled = [(admin_distributors.distributor_label(d), f) for d, f in ranking]
    for row in csv_rows(report, _who(chosen), labelled):
        writer.writerow([safe_cell(cell) for cell in row])
    who = f"d{chosen.id}" if chosen is not None else "shop"
    name = f"funnel-{who}-{report.first:%Y%m%d}-{report.last:%Y%m%d}.csv"
    return Response(
        BOM + buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )
