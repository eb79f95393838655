"""Incentive pages of the distributor centre: 任务奖励 (tasks with live progress) and
排行榜 (leaderboards with tabs). Thin views over app.incentives; like every centre page
they read the signed-in user's own distributor only and are never cached.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.distribution.distributors import distributor_for_user
from app.distribution.models import Distributor
from app.extensions import db
from app.incentives import leaderboards, tasks
from app.incentives.invites import get_incentive_settings

bp = Blueprint("incentives", __name__, url_prefix="/distributor")


def _me() -> Distributor:
    """The signed-in customer's distributor (active or disabled), else the join page."""
    if current_user.is_staff:
        abort(403, description="请使用微信登录顾客账号后再进入分销中心")
    distributor = distributor_for_user(current_user.id)
    if distributor is None or distributor.status not in ("active", "disabled"):
        abort(redirect(url_for("distribution.index")))
    return distributor


@bp.after_request
def _never_cache(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/tasks")
@login_required
def task_list():
    """Running tasks with my progress bar, time left and reward state."""
    me = _me()
    return render_template(
        "incentives/tasks.html",
        me=me,
        rows=tasks.progress_for(me),
        labels=tasks.TARGET_LABELS,
        invite=get_incentive_settings(),
    )


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.args.get(name, default)
    return value if value in allowed else default


@bp.get("/leaderboards")
@login_required
def leaderboard():
    """排行榜: tabs for board and period; top 50 and my own rank."""
    me = _me()
    board = _choice("board", leaderboards.BOARDS, "sales")
    period = _choice("period", leaderboards.PERIODS, "day")
    settings = get_incentive_settings()
    data = leaderboards.read(board, period, me.id) if settings.leaderboards_enabled else None
    db.session.commit()  # the settings row, if it was just created
    return render_template(
        "incentives/leaderboards.html",
        me=me,
        data=data,
        board=board,
        period=period,
        boards=leaderboards.BOARD_LABELS,
        periods=leaderboards.PERIOD_LABELS,
        opted_in=leaderboards.is_opted_in(me.id),
    )


@bp.post("/leaderboards/name")
@login_required
def leaderboard_name():
    """Show or hide my name on leaderboards (masked by default)."""
    me = _me()
    leaderboards.set_opt_in(me.id, request.form.get("show") == "1")
    db.session.commit()
    leaderboards.sync_members({me.id})
    board = _choice("board", leaderboards.BOARDS, "sales")
    period = _choice("period", leaderboards.PERIODS, "day")
    return redirect(url_for("incentives.leaderboard", board=board, period=period), code=303)
