"""The agent centre (代理中心): H5 pages under /agent for the signed-in customer.

Thin views over app.cloud.agents and app.cloud.dividends. Every page reads the agent rows
of the signed-in user only (no URL takes an agent or distributor id), so an agent never
sees another agent's orders or dividends. Withdrawals are the distributor centre's page:
an agent is a distributor and dividends are in the same ledger.
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.cloud import agents as svc
from app.cloud import dividends as div
from app.core.branding import shop_name
from app.core.params import page_arg
from app.distribution.distributors import distributor_for_user
from app.distribution.rules import format_bp
from app.extensions import db
from app.ledger.balances import balances
from app.ledger.kinds import CENTRE_STATE_LABELS, entry_label
from app.orders.states import ORDER_STATUS_LABELS

bp = Blueprint("agent", __name__, url_prefix="/agent")

PER_PAGE = 20
DONE_MESSAGES = {"applied": "申请已提交，请等待商家审核"}


@bp.context_processor
def agent_globals() -> dict:
    """Names every agent template may use."""
    return {
        "shop_name": shop_name(),
        "level_labels": svc.LEVEL_LABELS,
        "agent_status_labels": svc.STATUS_LABELS,
        "order_status_labels": ORDER_STATUS_LABELS,
        "state_labels": CENTRE_STATE_LABELS,
        "entry_label": entry_label,
        "format_bp": format_bp,
    }


def _user_id() -> int:
    if current_user.is_staff:  # a merchant previewing the shop has no agent centre
        abort(403, description="请使用微信登录顾客账号后再进入代理中心")
    return current_user.id


def _active(rows):
    return [a for a in rows if a.status == svc.ACTIVE]


@bp.get("")
@login_required
def index():
    """My regions, money and region sales; the apply page when I hold no region yet."""
    rows = svc.agents_of_user(_user_id())
    if not rows:
        return redirect(url_for("agent.apply"))
    active = _active(rows)
    distributor_id = rows[0].distributor_id
    orders, sales = div.region_sales(active)
    reasons = {a.id: svc.last_reason(a) for a in rows if a.status in ("rejected", "revoked")}
    return render_template(
        "cloud/agent_centre.html",
        agents=rows,
        reasons=reasons,
        settings=svc.get_cloud_settings(),
        money=balances(distributor_id),
        totals=div.dividend_totals(distributor_id),
        region_orders=orders,
        region_sales=sales,
        done=DONE_MESSAGES.get(request.args.get("done", ""), ""),
    )


def _apply_page(error: str = "", form: dict | None = None, status: int = 200):
    settings = svc.get_cloud_settings()
    page = render_template(
        "cloud/agent_apply.html",
        settings=settings,
        mine=svc.agents_of_user(_user_id()),
        form=form or {},
        error=error,
        rates={level: svc.level_rate_bp(settings, level) for level in svc.LEVEL_LABELS},
    )
    return page, status


@bp.get("/apply")
@login_required
def apply():
    """Choose a level and a region (province / city / district picker) and apply."""
    return _apply_page()


@bp.post("/apply")
@login_required
def apply_submit():
    """Apply for the chosen region; a taken or bad region comes back with the reason."""
    level = (request.form.get("level") or "").strip()[:10]
    code = (request.form.get("region_code") or "").strip()[:6]
    try:
        svc.apply_for_region(_user_id(), level, code)
    except svc.AgentError as err:
        db.session.rollback()
        return _apply_page(err.message, {"level": level, "region_code": code}, err.status)
    db.session.commit()
    return redirect(url_for("agent.index", done="applied"), code=303)


def _me():
    rows = svc.agents_of_user(_user_id())
    if not rows:
        abort(redirect(url_for("agent.apply")))
    return rows


@bp.get("/orders")
@login_required
def orders():
    """Paid orders shipped into my active regions (buyer masked) with my dividend."""
    rows = _me()
    page = page_arg()
    found = div.region_orders(_active(rows), rows[0].distributor_id, page, PER_PAGE + 1)
    return render_template(
        "cloud/agent_orders.html",
        rows=found[:PER_PAGE],
        page=page,
        has_next=len(found) > PER_PAGE,
    )


def by_order(rows: list) -> list[list]:
    """The page's ledger rows in cards, one per order (in the order first seen, so newest
    first), as 佣金明细 shows them; an entry without an order is a card of its own. A 2-line
    order's two dividends, and a refund's reversal on the same page, share one card, in the
    order they were written (the order's lines, then reversals)."""
    cards: dict[object, list] = {}
    for row in rows:
        key = row.entry.order_id or f"entry-{row.entry.id}"
        cards.setdefault(key, []).append(row)
    return [sorted(card, key=lambda row: row.entry.id) for card in cards.values()]


@bp.get("/dividends")
@login_required
def dividends():
    """My region dividends and their refund reversals, with why not withdrawable yet."""
    rows = _me()
    page = page_arg()
    distributor = distributor_for_user(rows[0].user_id)
    entries = div.dividend_entries(distributor.id, page, PER_PAGE + 1)
    shown = entries[:PER_PAGE]
    return render_template(
        "cloud/agent_dividends.html",
        cards=by_order(shown),
        line_titles=div.line_titles(shown),
        money=balances(distributor.id),
        totals=div.dividend_totals(distributor.id),
        page=page,
        has_next=len(entries) > PER_PAGE,
    )
