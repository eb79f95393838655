"""``GET /api/v1/distributor/posters``: where the signed-in distributor's poster is.

For a mini-program (``wx.downloadFile`` then ``wx.saveImageToPhotosAlbum``) and for the
product page's 生成海报 button. The answer is the image URL, never the bytes: the image
route serves it with a strong ETag. Own posters only: nothing in the request names a
distributor.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from spectree import Response

from app.accounts.guards import customer_id, customer_required
from app.api.blueprints import bp
from app.api.distributor import ERRORS, SECURITY, TAGS
from app.api.schemas import ErrorResponse, Query, QueryId
from app.api.spec import spec
from app.core.errors import ApiError
from app.distribution.distributors import distributor_for_user
from app.extensions import db
from app.posters import cache, services


class PosterQuery(Query):
    kind: Literal["shop", "product"] = Field(description="shop：店铺海报；product：商品海报")
    product_id: QueryId | None = Field(None, description="商品海报必填")


class PosterOut(BaseModel):
    kind: str
    product_id: int | None
    url: str = Field(description="海报图片（JPEG，750×1334）的完整地址，带版本号，可长期缓存")
    path: str = Field(description="同一图片的站内路径（H5 页面用）")
    ready: bool = Field(description="是否已生成（未生成时首次请求图片会当场生成，约 0.1 秒）")
    etag: str = Field(description="海报版本：头像、价格、二维码或模板变化时改变")
    qr_fallback: bool = Field(description="公众号二维码暂不可用，海报二维码为推广链接")


@bp.get("/distributor/posters")
@customer_required
@spec.validate(
    resp=Response(HTTP_200=PosterOut, HTTP_422=ErrorResponse, **ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def distributor_posters(query: PosterQuery):
    """My shop poster, or my poster of one product: its image URL and version."""
    from flask import current_app, url_for

    distributor = distributor_for_user(customer_id())
    if distributor is None or distributor.status in ("pending", "rejected"):
        raise ApiError(404, "not_distributor", "你还不是分销员")
    try:
        plan = services.plan_poster(distributor, query.kind, query.product_id)
    except services.PosterError as err:
        db.session.rollback()
        raise ApiError(err.status, err.code, err.message) from None
    db.session.commit()  # a QR ticket fetched on the way
    args = {"kind": query.kind, "v": plan.key}
    if plan.product_id is not None:
        args["product_id"] = plan.product_id
    path = url_for("posters.image", **args)
    return PosterOut(
        kind=query.kind,
        product_id=plan.product_id,
        url=current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path,
        path=path,
        ready=cache.exists(plan.key),
        etag=plan.key,
        qr_fallback=plan.qr_fallback,
    )
