"""The ordering-merchant centre (订货商中心): H5 pages under /merchant for the signed-in user.

Thin views over app.cloud.merchants and pricing. Every page reads the merchant row of the
signed-in user only (no URL takes a merchant, distributor or order id), so a merchant
never sees another merchant's orders, team or earnings. Placing an order goes through
the JSON API (``POST /api/v1/merchant/orders``) from static/js/merchant.js and then the
shop's own pay page; withdrawals are the distributor centre's (same ledger).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.cloud import merchants as svc
from app.cloud.models import OrderingMerchant
from app.cloud.price_list import price_page
from app.cloud.pricing import MerchantError, level_label, level_names
from app.core.branding import shop_name
from app.core.params import page_arg
from app.core.status import InvalidTransition
from app.distribution.centre import share_url
from app.extensions import db
from app.ledger.balances import balances, entries_for
from app.ledger.kinds import CENTRE_STATE_LABELS, entry_label
from app.orders.services import MAX_QUANTITY
from app.orders.states import ORDER_STATUS_LABELS
from app.regions import address_text, region_text

bp = Blueprint("merchant", __name__, url_prefix="/merchant")

PER_PAGE = 20


@bp.context_processor
def merchant_globals() -> dict:
    """Names every merchant template may use."""
    return {
        "shop_name": shop_name(),
        "order_status_labels": ORDER_STATUS_LABELS,
        "merchant_status_labels": svc.MERCHANT_STATUS_LABELS,
        "state_labels": CENTRE_STATE_LABELS,
        "entry_label": entry_label,
        "level_label": level_label,
        "address_text": address_text,  # one way to write an address: 省 市 区 详细
        "region_text": region_text,
    }


def _me() -> OrderingMerchant | None:
    if current_user.is_staff:  # a merchant's staff previewing the shop: no centre here
        abort(403, description="请使用微信登录顾客账号后再进入订货商中心")
    return svc.merchant_for_user(current_user.id)


def _active_me() -> OrderingMerchant:
    me = _me()
    if me is None:
        abort(404, description="你还不是订货商")
    return me


@bp.get("")
@login_required
def index():
    """My level, parent, money and the menu; a short note for everyone else."""
    me = _me()
    if me is None:
        return render_template("cloud/merchant_none.html")
    if me.status == "rejected":
        return redirect(url_for("merchant.apply"))
    names = level_names()
    return render_template(
        "cloud/merchant_centre.html",
        me=me,
        names=names,
        parent=me.parent,
        money=balances(me.distributor_id),
        children=len(svc.children_of(me.id)),
        share=share_url(current_app.config["PUBLIC_BASE_URL"], me.distributor.code),
        active=svc.is_active(me),
        done="申请已提交，请等待商家审核" if request.args.get("done") == "applied" else "",
    )


def _apply_page(error: str = "", form: dict | None = None, status: int = 200):
    me = _me()
    bound = svc.bound_merchant(current_user.id)
    form = form if form is not None else {"parent_code": bound.distributor.code if bound else ""}
    page = render_template(
        "cloud/merchant_apply.html",
        names=level_names(),
        form=form,
        error=error,
        bound=bound,
        rejected=svc.rejection_reason(me) if me is not None else "",
        max_name=svc.MAX_APPLY_NAME,
        max_reason=svc.MAX_APPLY_REASON,
    )
    return page, status


@bp.get("/apply")
@login_required
def apply():
    """The application form: level, inviter code (the bound merchant's by default), name,
    phone and reason; after a refusal, the reason and the form again."""
    me = _me()
    if me is not None and me.status != "rejected":
        return redirect(url_for("merchant.index"))
    return _apply_page()


@bp.post("/apply")
@login_required
def apply_submit():
    """Apply; a refused application comes back on the form with the reason."""
    form = {
        key: (request.form.get(key) or "")[:limit]
        for key, limit in (("level", 2), ("parent_code", 16), ("name", 40), ("phone", 20))
    }
    form["reason"] = (request.form.get("reason") or "")[:400]
    _me()  # staff have no merchant centre
    try:
        svc.apply_as_merchant(
            current_user.id,
            form["level"],
            name=form["name"],
            phone=form["phone"],
            reason=form["reason"],
            parent_code=form["parent_code"],
        )
    except MerchantError as err:
        db.session.rollback()
        return _apply_page(err.message, form, err.status)
    except InvalidTransition:
        db.session.rollback()
        return _apply_page("申请状态已变化，请刷新后重试", form, 409)
    db.session.commit()
    return redirect(url_for("merchant.index", done="applied"), code=303)


@bp.get("/prices")
@login_required
def prices():
    """My price list: one row per product on sale (its SKUs folded), my price beside
    retail, my margin and headquarters' stock; searched and paged (app/cloud/price_list.py)."""
    me = _active_me()
    found = price_page(me.level, request.args.get("q"), page_arg())
    return render_template("cloud/merchant_prices.html", me=me, found=found, names=level_names())


@bp.get("/team")
@login_required
def team():
    """My direct children (their level and status)."""
    me = _active_me()
    return render_template(
        "cloud/merchant_team.html", me=me, children=svc.children_of(me.id), names=level_names()
    )


@bp.get("/earnings")
@login_required
def earnings():
    """My ledger (级差 and anything else), each with its reason."""
    me = _active_me()
    page = page_arg()
    rows = entries_for(me.distributor_id, page, PER_PAGE)
    return render_template(
        "cloud/merchant_earnings.html",
        me=me,
        rows=rows,
        money=balances(me.distributor_id),
        page=page,
        has_next=len(rows) == PER_PAGE,
    )


@bp.get("/orders")
@login_required
def orders():
    """Orders I placed and my customers' orders, with shipping status and tracking."""
    me = _active_me()
    page = page_arg()
    rows, total = svc.orders_of(me, page, PER_PAGE)
    return render_template(
        "cloud/merchant_orders.html",
        me=me,
        rows=rows,
        page=page,
        has_next=page * PER_PAGE < total,
    )


@bp.get("/orders/new")
@login_required
def new_order():
    """Order for a customer at my level price, in three steps on one page: pick products
    like a cart (search and pages reload; the picks stay in the browser's sessionStorage,
    static/js/merchant.js), then the customer's address, then confirm and pay. Sold-out
    SKUs are shown marked and cannot be picked; stock is headquarters' own."""
    me = _active_me()
    if not svc.is_active(me):
        abort(403, description="订货商资格未生效或已停用，暂不能下单")
    found = price_page(me.level, request.args.get("q"), page_arg())
    return render_template(
        "cloud/merchant_order_new.html",
        me=me,
        found=found,
        names=level_names(),
        max_quantity=MAX_QUANTITY,
    )
