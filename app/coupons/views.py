"""Customer H5 pages of coupons: the coupon centre (领券中心), my coupons, a coupon's own
page (what a distributor shares: ``/coupons/<id>?d=CODE``), the distributor centre's
专属优惠券 page (``/distributor/coupons``: each running exclusive coupon with the
distributor's own link and its QR code), and the checkout's coupon row.

Thin views: claiming goes through the JSON API (``POST /api/v1/coupons/<id>/claim``) from
static/js/coupons.js. The checkout page (app/orders/views.py) stays unaware of coupons: it
calls the template global ``checkout_coupon`` this blueprint provides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup

from app.accounts.guards import page_customer_id
from app.accounts.oauth import qr_svg
from app.catalog.models import Product
from app.core.params import MAX_ID, bounded_int
from app.coupons.customer import (
    centre_templates,
    exclusive_templates,
    held_coupons,
    product_templates,
)
from app.coupons.models import CouponTemplate
from app.coupons.services import Applied, options_for, rule_text
from app.distribution.distributors import active_distributor_by_code, distributor_for_user
from app.extensions import db

bp = Blueprint("coupons", __name__)


@dataclass
class CheckoutCoupon:
    """The checkout's coupon row: the options (best first), the chosen one, its discount."""

    options: list[Applied] = field(default_factory=list)
    chosen: Applied | None = None
    refused: bool = False  # the coupon asked for in the URL does not apply

    @property
    def discount_fen(self) -> int:
        return self.chosen.discount_fen if self.chosen else 0


def checkout_coupon(buyable: list[dict], raw_choice: str | None) -> CheckoutCoupon:
    """The coupon row of the checkout for the signed-in customer.

    ``raw_choice`` is ``?coupon=``: absent = the best coupon, ``0`` = none, an id = that one.
    """
    person = current_user
    if not getattr(person, "is_authenticated", False) or person.is_staff or not buyable:
        return CheckoutCoupon()
    lines = [
        (i, line["amount_fen"], line["sku"].product_id, line["sku"].product.category_id)
        for i, line in enumerate(buyable)
    ]
    options = options_for(person.id, lines)
    if raw_choice is None or raw_choice == "":
        return CheckoutCoupon(options, options[0] if options else None)
    if raw_choice.strip() == "0":
        return CheckoutCoupon(options, None)
    wanted = bounded_int(raw_choice, MAX_ID)
    chosen = next((a for a in options if a.coupon.id == wanted), None)
    return CheckoutCoupon(options, chosen, refused=chosen is None)


@bp.app_context_processor
def coupon_globals() -> dict:
    """Names the shop's templates may use: the checkout row, a product's coupons."""
    return {"checkout_coupon": checkout_coupon, "product_coupons": product_coupons}


@bp.app_template_filter("coupon_rule")
def coupon_rule(t: CouponTemplate) -> str:
    """满 ¥100.00 减 ¥20.00 (``rule_text``), as a filter so imported macros reach it."""
    return rule_text(t)


def product_coupons(product: Product) -> list[CouponTemplate]:
    """The coupons anyone can claim that apply to ``product`` (its page's 领券 row)."""
    return product_templates(product.id, product.category_id)


@bp.get("/coupons")
def centre():
    """领券中心: every coupon anyone can claim now (``?product_id=`` for one product's)."""
    product_id = bounded_int(request.args.get("product_id"), MAX_ID)
    product = db.session.get(Product, product_id) if product_id else None
    templates = product_coupons(product) if product else centre_templates()
    return render_template("coupons/centre.html", templates=templates, product=product)


@bp.get("/coupons/mine")
@login_required
def mine():
    """我的优惠券: unused first (soonest to expire), then used and expired."""
    return render_template("coupons/mine.html", held=held_coupons(page_customer_id()))


@bp.get("/coupons/<int:coupon_id>")
def share(coupon_id: int):
    """One coupon's page, what a distributor shares (``?d=CODE``): claiming it binds the
    claimer to that distributor under the shop's binding rules."""
    t = db.session.get(CouponTemplate, coupon_id) if coupon_id <= MAX_ID else None
    if t is None:
        abort(404, description="优惠券不存在")
    code = (request.args.get("d") or "").strip().upper()[:16]
    distributor = active_distributor_by_code(code) if code.isalnum() else None
    return render_template(
        "coupons/share.html",
        t=t,
        distributor=distributor,
        code=code if distributor else "",
    )


def coupon_share_url(base_url: str, coupon_id: int, code: str) -> str:
    """A distributor's link to one coupon: ``{base}/coupons/ID?d=CODE``."""
    return f"{base_url.rstrip('/')}/coupons/{coupon_id}?d={quote(code)}"


@bp.get("/distributor/coupons")
@login_required
def distributor_coupons():
    """专属优惠券 in the distributor centre: the running distributor-exclusive coupons, each
    with the signed-in active distributor's link, a copy button and a QR code (SVG drawn
    here). Staff get 403 and everyone else goes to the centre, like the other centre pages."""
    if current_user.is_staff:
        abort(403, description="请使用微信登录顾客账号后再进入分销中心")
    me = distributor_for_user(current_user.id)
    if me is None or me.status != "active":
        return redirect(url_for("distribution.index"))
    base = current_app.config["PUBLIC_BASE_URL"]
    shares = []
    for t in exclusive_templates():
        link = coupon_share_url(base, t.id, me.code)
        # qr_svg draws path data only, never the link as text: safe to embed.
        shares.append((t, link, Markup(qr_svg(link))))  # noqa: S704 - our own SVG
    return render_template("coupons/distributor.html", me=me, shares=shares)
