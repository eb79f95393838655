"""WeChat helpers for the H5 pages: the JS-SDK config of a page and who is sharing it.

Catalog pages are cached whole for every visitor (app/shop/cache.py), so nothing that
depends on the page URL or on the visitor can be in their HTML: static/js/share.js asks
these two endpoints instead. Both answer ``Cache-Control: no-store``.
"""

from __future__ import annotations

from flask import current_app, jsonify
from flask_login import current_user
from pydantic import BaseModel, Field
from spectree import Response

from app.api.blueprints import bp
from app.api.schemas import ErrorResponse, Query
from app.api.spec import COOKIE, spec
from app.core.errors import ApiError
from app.distribution.distributors import distributor_for_user
from app.wechat.clients import get_jsapi_ticket
from app.wechat.jssdk import MAX_URL_LENGTH, JssdkError, build_config, page_url

TAGS = ["wechat"]


class JssdkConfigQuery(Query):
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH * 2,  # the fragment is cut first; page_url checks again
        description="要签名的页面地址（location.href，#及其后部分会被去掉），须为本站地址",
    )


class WxConfig(BaseModel):
    """Pass as is to ``wx.config`` (WeChat's own field names)."""

    appId: str
    timestamp: int
    nonceStr: str
    signature: str
    jsApiList: list[str]


class JssdkConfigOut(BaseModel):
    url: str = Field(description="实际签名的地址（去掉 # 之后的部分）")
    config: WxConfig


class ShareContextOut(BaseModel):
    signed_in: bool
    ref: str | None = Field(
        description="当前登录分销员的推广码（分享链接带上 ?ref=）；不是分销员时为 null"
    )
    base_url: str = Field(description="本站公开地址（分享链接与图片用它拼成绝对地址）")


def _no_store(payload: BaseModel):
    response = jsonify(payload.model_dump())
    response.headers["Cache-Control"] = "no-store"
    return response


def _jsapi_ticket() -> str:
    """The account's jsapi_ticket from the shared, locked refresher (clients.py)."""
    from wechatpy.exceptions import WeChatClientException

    try:
        return get_jsapi_ticket()
    except (WeChatClientException, OSError) as err:
        current_app.logger.warning("jsapi_ticket unavailable: %s", err)
        raise ApiError(503, "wechat_unavailable", "微信接口暂时不可用，请稍后再试") from None


@bp.get("/wechat/jssdk-config")
@spec.validate(
    resp=Response(
        HTTP_200=JssdkConfigOut,
        HTTP_400=ErrorResponse,
        HTTP_422=ErrorResponse,
        HTTP_503=ErrorResponse,
    ),
    tags=TAGS,
)
def jssdk_config(query: JssdkConfigQuery):
    """Sign a page of this site for ``wx.config`` (400 ``foreign_url`` for other sites)."""
    try:
        url = page_url(query.url, current_app.config["PUBLIC_BASE_URL"])
    except JssdkError as err:
        raise ApiError(400, err.code, err.message) from None
    config = build_config(current_app.config["WECHAT_APPID"], _jsapi_ticket(), url)
    return _no_store(JssdkConfigOut(url=url, config=WxConfig(**config.as_wx_config())))


@bp.get("/wechat/share-context")
@spec.validate(resp=Response(HTTP_200=ShareContextOut), tags=TAGS, security={COOKIE: []})
def share_context():
    """Who shares: the signed-in active distributor's code goes into share links."""
    person = current_user
    customer = person.is_authenticated and not getattr(person, "is_staff", False)
    ref = None
    if customer:
        distributor = distributor_for_user(person.id)
        if distributor is not None and distributor.status == "active":
            ref = distributor.code
    return _no_store(
        ShareContextOut(
            signed_in=bool(customer), ref=ref, base_url=current_app.config["PUBLIC_BASE_URL"]
        )
    )
