"""推广商品库 (/distributor/products): every product on sale with the signed-in
distributor's 预计佣金, sortable and searchable, each with 分享 and 生成海报.

Routes attach to the centre's blueprint (``app.distribution.views.bp``) when this module
is imported (``app.register_blueprints``). Thin: the list and the figures come from
``app/earnings/share_earnings.py``, which runs the commission job's own calculator.
Never cached: the figures belong to one distributor.
"""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.core.params import page_arg
from app.distribution.centre import product_share_url
from app.distribution.distributors import distributor_for_user, get_distribution_settings
from app.distribution.views import bp
from app.earnings import share_earnings
from app.earnings.share_earnings import DEFAULT_SORT, SELF_PURCHASE_NOTE, SORTS


@bp.get("/products")
@login_required
def products():
    """The 推广商品库 of the signed-in active distributor (others go to the centre)."""
    if current_user.is_staff:
        abort(403, description="请使用微信登录顾客账号后再进入分销中心")
    distributor = distributor_for_user(current_user.id)
    if distributor is None or distributor.status != "active":
        return redirect(url_for("distribution.index"))
    sort = request.args.get("sort", DEFAULT_SORT)
    if sort not in SORTS:
        sort = DEFAULT_SORT
    q = share_earnings.clean_query(request.args.get("q"))
    page = page_arg()
    sharer = share_earnings.sharer_for_user(current_user.id)
    result = share_earnings.library(distributor.id, sort=sort, q=q, page=page)
    base = current_app.config["PUBLIC_BASE_URL"]
    return render_template(
        "distribution/products.html",
        me=distributor,
        sharer=sharer,
        paused=not get_distribution_settings().enabled,
        result=result,
        links={
            item.product.id: product_share_url(base, distributor.code, item.product.id)
            for item in result.items
        },
        sort=sort,
        sorts=SORTS,
        q=q,
        note=SELF_PURCHASE_NOTE if sharer is not None and sharer.self_purchase else "",
    )
