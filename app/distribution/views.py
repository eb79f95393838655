"""The distributor centre (分销中心): H5 pages under /distributor for the signed-in customer.

Thin views over app.distribution (centre, ledger, team, withdrawals). Every page reads the
distributor of the signed-in user only: no URL takes a distributor id, so nobody can see
another distributor's customers, team or money. Pages are never cached (they belong to
one visitor) and carry the CSRF token for their forms.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import groupby

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.core.branding import shop_name
from app.core.money import parse_yuan
from app.core.params import page_arg
from app.core.time import shop_day_bounds, shop_today, utcnow
from app.distribution import centre
from app.distribution import customers as customer_list
from app.distribution.distributors import (
    DistributionError,
    distributor_for_user,
    get_distribution_settings,
)
from app.distribution.members import members_page
from app.distribution.models import Distributor
from app.distribution.order_detail import masked_order
from app.distribution.rules import format_bp
from app.distribution.summary import centre_summary, part_sentence, pending_parts, pending_text
from app.distribution.team import team_stats
from app.distribution.withdrawals import (
    AWAITING_CONFIRM,
    WITHDRAWAL_STATUS_LABELS,
    request_withdrawal,
)
from app.extensions import db
from app.ledger.balances import LEDGER_FILTERS, entries_for
from app.ledger.history import ledger_figures
from app.ledger.kinds import CENTRE_KIND_LABELS, CENTRE_STATE_LABELS, entry_label
from app.ledger.settlement import settlement_hold_days
from app.payments.transfers import confirm_params, sandbox_confirm_url
from app.shop.queries import list_products

bp = Blueprint("distribution", __name__, url_prefix="/distributor")

PER_PAGE = 20
DONE_MESSAGES = {
    "joined": "恭喜，你已成为分销员",
    "applied": "申请已提交，请等待商家审核",
    "requested": "提现申请已提交，请等待审核",
    "transfer_ok": "已确认收款，到账结果稍后更新",
    "transfer_cancel": "已取消收款",
}


@bp.context_processor
def centre_globals() -> dict:
    """Names every distribution template may use."""
    return {
        "shop_name": shop_name(),
        "kind_labels": CENTRE_KIND_LABELS,
        "entry_label": entry_label,
        "state_labels": CENTRE_STATE_LABELS,
        "status_labels": centre.STATUS_LABELS,
        "format_bp": format_bp,
    }


@bp.app_context_processor
def my_distributor_global() -> dict:
    """``my_distributor_status()`` for the shop's "my" page (queried only when called)."""
    return {"my_distributor_status": my_distributor_status}


def my_distributor_status() -> str | None:
    """The signed-in customer's distributor status, or None (not one, or not a customer)."""
    person = current_user
    if not person.is_authenticated or person.is_staff:
        return None
    distributor = distributor_for_user(person.id)
    return distributor.status if distributor is not None else None


def _user_id() -> int:
    if current_user.is_staff:  # a merchant previewing the shop: there is no centre to show
        abort(403, description="请使用微信登录顾客账号后再进入分销中心")
    return current_user.id


def _me(allow: tuple[str, ...] = ("active", "disabled")) -> Distributor:
    """The signed-in user's distributor, or off to the join page."""
    distributor = distributor_for_user(_user_id())
    if distributor is None or distributor.status not in allow:
        abort(redirect(url_for("distribution.index")))
    return distributor


def _done_message() -> str:
    return DONE_MESSAGES.get(request.args.get("done", ""), "")


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _base_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"]


# --- join and the centre's home -----------------------------------------------------------


@bp.get("")
@login_required
def index():
    """The centre for a distributor; the join / apply page for everyone else."""
    distributor = distributor_for_user(_user_id())
    if distributor is None or distributor.status in ("pending", "rejected"):
        return _join_page()
    return _centre_page(distributor)


def _join_page(error: str = "", status: int = 200):
    state = centre.join_state(_user_id())
    inviter = centre.inviter_for(_user_id()) if state.distributor is None else None
    page = render_template(
        "distribution/join.html",
        state=state,
        settings=state.settings,
        inviter=inviter,
        mode_labels=centre.JOIN_MODE_LABELS,
        error=error,
        done=_done_message(),
    )
    return page, status


def _centre_page(distributor: Distributor):
    summary = centre_summary(distributor.id)
    db.session.commit()  # the settled history it may have kept (ledger/history.py)
    products = list_products(1).items[:6]
    return render_template(
        "distribution/centre.html",
        me=distributor,
        settings=get_distribution_settings(),
        money=summary.money,
        summary=summary,
        part_sentence=part_sentence,
        share=centre.share_url(_base_url(), distributor.code),
        product_shares=[
            (p, centre.product_share_url(_base_url(), distributor.code, p.id)) for p in products
        ],
        product_format=centre.share_url(_base_url(), distributor.code, "/product/商品编号"),
        customers=summary.customers_count,
        level1=summary.level1_count,
        level2=summary.level2_count,
        done=_done_message(),
    )


@bp.post("/join")
@login_required
def join():
    """Join (open mode, or threshold reached) or apply (apply mode). Never a fee."""
    try:
        distributor = centre.apply_to_join(_user_id())
    except DistributionError as err:
        db.session.rollback()
        return _join_page(err.message, err.status)
    db.session.commit()
    done = "joined" if distributor.status == "active" else "applied"
    return redirect(url_for("distribution.index", done=done), code=303)


@bp.get("/rules")
@login_required
def rules():
    """The shop's distribution rules in plain words (levels, rates, binding, settlement)."""
    _user_id()
    return render_template(
        "distribution/rules.html",
        settings=get_distribution_settings(),
        mode_labels=centre.JOIN_MODE_LABELS,
    )


# --- money ----------------------------------------------------------------------------------


@bp.get("/commissions")
@login_required
def commissions():
    """The ledger, grouped by order: buyer (masked), product and SKU, level, amount, state
    and why not yet withdrawable; ``?status=`` one of ``LEDGER_FILTERS`` (全部 without)."""
    me = _me()
    page = page_arg()
    status = request.args.get("status", "")
    if status and status not in LEDGER_FILTERS:
        abort(400, description="没有这个筛选条件")
    rows = entries_for(me.id, page, PER_PAGE + 1, status=status or None)
    has_next = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    # Entries of one order are written together, so they sit next to each other.
    groups = [
        (key, list(items))
        for key, items in groupby(
            rows, key=lambda r: r.entry.order_id if r.entry.order_id else f"e{r.entry.id}"
        )
    ]
    money = ledger_figures(me.id)
    db.session.commit()  # the settled history it may have kept (ledger/history.py)
    return render_template(
        "distribution/commissions.html",
        me=me,
        money=money,
        groups=groups,
        page=page,
        has_next=has_next,
        status=status,
        filters=LEDGER_FILTERS,
    )


@bp.get("/orders/<number>")
@login_required
def order_detail(number: str):
    """One order I earned on, masked: lines, what was paid, its status and what each level
    earned; never the buyer's phone or address. Not mine (or no such order): 404."""
    me = _me()
    order = masked_order(me.id, number)
    if order is None:
        abort(404, description="没有找到这笔推广订单")
    return render_template("distribution/order.html", me=me, order=order)


@bp.get("/customers")
@login_required
def customers():
    """Customers bound to me (or lapsed): name, binding state in words, orders and spend
    through me, last order; sorted by binding, last order or spend."""
    me = _me()
    page = page_arg()
    sort = request.args.get("sort", "bound")
    sort = sort if sort in customer_list.SORTS else "bound"
    status = "lapsed" if request.args.get("status") == "lapsed" else "active"
    rows = customer_list.customers_page(
        me.id, sort=sort, status=status, page=page, per_page=PER_PAGE + 1
    )
    return render_template(
        "distribution/customers.html",
        me=me,
        rows=rows[:PER_PAGE],
        counts=customer_list.customer_counts(me.id),
        sort=sort,
        sort_labels=customer_list.SORT_LABELS,
        status=status,
        page=page,
        has_next=len(rows) > PER_PAGE,
    )


@bp.get("/team")
@login_required
def team():
    """Level 1 and level 2 members: their own sales this month and in total, what they
    brought me, when they joined; and the invite link for the share sheet."""
    me = _me()
    level = 2 if request.args.get("level") == "2" else 1
    page = page_arg()
    rows = members_page(me.id, level, page=page, per_page=PER_PAGE + 1)
    return render_template(
        "distribution/team.html",
        me=me,
        stats=team_stats(me.id),
        level=level,
        rows=rows[:PER_PAGE],
        page=page,
        has_next=len(rows) > PER_PAGE,
        invite=centre.share_url(_base_url(), me.code, url_for("distribution.index")),
    )


def _withdraw_page(me: Distributor, error: str = "", amount: str = "", status: int = 200):
    money = ledger_figures(me.id)
    db.session.commit()  # the settled history it may have kept (ledger/history.py)
    settings = get_distribution_settings()
    history = centre.withdrawals_of(me.id, 1, 50)
    start, end = shop_day_bounds(utcnow())
    today = sum(1 for w in history if start <= aware(w.created_at) < end)
    return_url = _base_url().rstrip("/") + url_for("distribution.withdraw")
    confirms = {
        w.id: {
            "params": confirm_params(w.package_info),
            "sandbox_url": sandbox_confirm_url(w.package_info, return_url),
        }
        for w in history
        if w.status == AWAITING_CONFIRM and w.package_info
    }
    page = render_template(
        "distribution/withdraw.html",
        me=me,
        money=money,
        pending=pending_parts(me.id),
        pending_text=pending_text,
        shop_today=shop_today(),
        hold_days=settlement_hold_days(),
        settings=settings,
        history=history,
        today=today,
        labels=WITHDRAWAL_STATUS_LABELS,
        confirms=confirms,
        error=error,
        amount=amount,
        done=_done_message(),
    )
    return page, status


@bp.get("/withdraw")
@login_required
def withdraw():
    """Withdraw: the amount with its fee shown before submitting, the rules, the history,
    and 确认收款 for WeChat transfers waiting for me."""
    me = _me()
    result = request.args.get("transfer_result")
    if result in ("ok", "cancel"):
        # Back from the confirm sheet: show the outcome once, without the parameter.
        return redirect(url_for("distribution.withdraw", done=f"transfer_{result}"), code=303)
    return _withdraw_page(me)


@bp.post("/withdraw")
@login_required
def withdraw_submit():
    """Request a withdrawal of the amount typed in yuan (the form works without JS)."""
    me = _me()
    raw = (request.form.get("amount") or "").strip()[:20]
    try:
        amount_fen = parse_yuan(raw)
    except ValueError as err:
        return _withdraw_page(me, str(err), raw, 400)
    try:
        request_withdrawal(me, amount_fen)
    except DistributionError as err:
        db.session.rollback()
        return _withdraw_page(me, err.message, raw, err.status)
    db.session.commit()
    return redirect(url_for("distribution.withdraw", done="requested"), code=303)
