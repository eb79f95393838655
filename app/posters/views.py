"""The distributor's posters on the H5 site: the 推广海报 page, its status poll and the image.

- ``GET /distributor/posters?kind=shop|product&product_id=``: pick a poster; a cached one
  shows at once, otherwise the page queues the RQ render job and shows a spinner that
  polls ``/distributor/posters/status`` (falling back to the image URL, which renders on
  the spot, if no worker answers within a few seconds).
- ``GET /distributor/posters/<kind>.jpg?product_id=&v=``: the JPEG, own posters only
  (nothing in the URL names a distributor). The cache key is a strong ETag; with
  ``If-None-Match`` the answer is 304 without touching the bytes. With ``v`` equal to the
  current key the URL is immutable and cached for a day; without it the browser
  revalidates every time, so a price change shows at once.

Pages and images belong to one visitor: ``private`` caching only, never the shop's page
cache.
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from app.core.params import bounded_int
from app.distribution.distributors import distributor_for_user
from app.distribution.models import Distributor
from app.extensions import db
from app.posters import cache, services
from app.posters.models import POSTER_KINDS
from app.shop.queries import list_products
from app.wechat.miniapp import miniapp_configured
from jobs.posters import enqueue_poster

log = logging.getLogger(__name__)
bp = Blueprint("posters", __name__, url_prefix="/distributor/posters")

IMMUTABLE = "private, max-age=86400, immutable"
REVALIDATE = "private, no-cache"


def _product_id() -> int | None:
    raw = request.args.get("product_id", "")
    if bounded_int(raw):
        return bounded_int(raw)
    if raw:
        abort(404, description="商品不存在或已下架")
    return None


def _kind(value: str | None) -> str:
    if value not in POSTER_KINDS:
        abort(404, description="海报类型不存在")
    return value


def _me() -> Distributor:
    """The signed-in customer's active distributor; others go to the join page."""
    if current_user.is_staff:
        abort(403, description="请使用微信登录顾客账号后再生成推广海报")
    distributor = distributor_for_user(current_user.id)
    if distributor is None or distributor.status in ("pending", "rejected"):
        abort(redirect(url_for("distribution.index")))
    if distributor.status != "active":
        abort(403, description="你的分销员资格已停用，暂不能生成推广海报")
    return distributor


def image_url(kind: str, product_id: int | None, key: str | None = None) -> str:
    """The poster image's URL (with ``v``, it is immutable)."""
    args = {"kind": kind}
    if product_id is not None:
        args["product_id"] = product_id
    if key:
        args["v"] = key
    return url_for("posters.image", **args)


def _plan(distributor: Distributor, kind: str, product_id: int | None):
    try:
        plan = services.plan_poster(distributor, kind, product_id)
    except services.PosterError as err:
        db.session.rollback()
        abort(err.status if err.status != 422 else 404, description=err.message)
    db.session.commit()  # a QR ticket fetched on the way
    return plan


@bp.get("")
@login_required
def page():
    """推广海报: shop or one product's poster, with how to save it."""
    me = _me()
    kind = request.args.get("kind", "shop")
    kind = kind if kind in POSTER_KINDS else "shop"
    products = list_products(1).items
    product_id = _product_id() if kind == "product" else None
    if kind == "product" and product_id is None and products:
        product_id = products[0].id
    plan = None
    if kind == "shop" or product_id is not None:
        plan = _plan(me, kind, product_id)
    ready = plan is not None and cache.exists(plan.key)
    if plan is not None and not ready:
        _enqueue(plan, me)
    return render_template(
        "distribution/posters.html",
        me=me,
        kind=kind,
        products=products,
        product_id=product_id,
        plan=plan,
        ready=ready,
        image=image_url(kind, product_id, plan.key) if plan else None,
        status=url_for("posters.status", kind=kind, product_id=product_id) if plan else None,
        in_wechat="MicroMessenger" in request.headers.get("User-Agent", ""),
        kind_labels=services.KIND_LABELS,
        # The distributor's mini-program code, when there is a mini-program (docs/miniapp.md).
        wxacode=url_for("api.distributor_wxacode") if miniapp_configured() else None,
    )


def _enqueue(plan, me: Distributor) -> None:
    """Queue the render job; without a queue the image URL still renders on request."""
    import redis

    try:
        enqueue_poster(plan.key, me.id, plan.kind, plan.product_id)
    except redis.RedisError as err:
        log.warning("poster job not queued (%s); the image URL renders it instead", err)


@bp.get("/status")
@login_required
def status():
    """``{"ready", "url"}`` for the spinner: whether the poster is in the cache yet."""
    me = _me()
    kind = _kind(request.args.get("kind"))
    plan = _plan(me, kind, _product_id())
    ready = cache.exists(plan.key)
    if not ready:
        _enqueue(plan, me)
    response = jsonify(ready=ready, url=image_url(kind, plan.product_id, plan.key))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<kind>.jpg")
@login_required
def image(kind: str):
    """The poster JPEG: from the cache, or rendered now (first request)."""
    me = _me()
    kind = _kind(kind)
    plan = _plan(me, kind, _product_id())
    cache_control = IMMUTABLE if request.args.get("v") == plan.key else REVALIDATE
    if request.if_none_match.contains(plan.key):
        response = current_app.response_class(b"", status=304)
    else:
        response = current_app.response_class(services.poster_bytes(plan), status=200)
        response.mimetype = "image/jpeg"
    response.set_etag(plan.key)
    response.headers["Cache-Control"] = cache_control
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
