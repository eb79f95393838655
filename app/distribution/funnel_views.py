"""The distributor centre's 推广效果 page: my funnel over 7 or 30 days.

Its routes attach to the centre's blueprint (``distribution``), so the page shares the
centre's sign-in, templates' globals and URL prefix; app/__init__.py imports this module.
"""

from __future__ import annotations

from flask import abort, render_template, request
from flask_login import login_required

from app.core.charts import MOBILE
from app.distribution.funnel_days import PERIODS, funnel_report, parse_period
from app.distribution.funnel_present import COLUMNS, funnel_charts, rate
from app.distribution.views import _me, bp


def period_arg() -> int:
    """``?days=7`` (default) or ``30``; anything else is a 400 with a Chinese message."""
    days = parse_period(request.args.get("days"))
    if days is None:
        abort(400, description="统计天数只能是 7 天或 30 天")
    return days


@bp.get("/funnel")
@login_required
def funnel():
    """My visits → new customers → paid orders, sales and commission, per day and product."""
    days = period_arg()
    me = _me()
    report = funnel_report(me, days)
    return render_template(
        "distribution/funnel.html",
        me=me,
        days=days,
        periods=PERIODS,
        report=report,
        charts=funnel_charts(report, MOBILE),
        columns=COLUMNS,
        rate=rate,
    )
