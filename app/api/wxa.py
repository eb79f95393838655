"""The mini-program door: sign in with ``wx.login``'s code, refresh, sign out; the
distributor's mini-program code.

``POST /api/v1/auth/wxa-login {code, ref?}``: the server asks WeChat's ``jscode2session``
who the code belongs to, finds or creates the customer (by unionid, else by the
mini-program openid: app/accounts/wxa.py) and answers a bearer token pair
(app/accounts/customer_tokens.py). ``ref`` (the scene of a distributor's mini-program
code) binds like ``?ref=`` on H5. The access token then signs every customer call:
``Authorization: Bearer ca_...`` (no CSRF token needed, no cookie set).
"""

from __future__ import annotations

import logging

from flask import current_app, make_response, request
from pydantic import BaseModel, Field
from spectree import Response
from sqlalchemy.exc import SQLAlchemyError

from app.accounts.customer_tokens import (
    CustomerTokenError,
    IssuedTokens,
    issue,
    refresh,
    revoke,
)
from app.accounts.guards import customer_id, customer_required
from app.accounts.services import SignInError
from app.accounts.wxa import sign_in_miniapp_user
from app.api.blueprints import bp, public_write
from app.api.schemas import ErrorResponse
from app.api.spec import BEARER, spec
from app.core.errors import ApiError
from app.distribution.binding import current_binding
from app.distribution.distributors import distributor_for_user
from app.distribution.referral import apply_ref
from app.extensions import db
from app.posters.wxacode import wxacode_for
from app.wechat.miniapp import MiniappError, code_to_session

log = logging.getLogger(__name__)

TAGS = ["auth"]
REF_PATTERN = r"^[A-Za-z0-9]{1,16}$"


class WxaLoginIn(BaseModel):
    code: str = Field(..., min_length=1, max_length=128, description="wx.login() 返回的 code")
    ref: str | None = Field(
        None, pattern=REF_PATTERN, description="分销员推广码（小程序码的 scene），绑定同链接"
    )


class RefreshIn(BaseModel):
    refresh_token: str = Field(..., min_length=1, max_length=128)


class TokenOut(BaseModel):
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    access_token: str
    expires_in: int = Field(..., description="访问令牌有效秒数（2 小时）")
    refresh_token: str
    refresh_expires_in: int = Field(..., description="刷新令牌有效秒数（30 天），刷新后旧令牌失效")
    user_id: int
    bound_distributor: bool = Field(False, description="是否已绑定分销员")


class RevokeOut(BaseModel):
    revoked: bool


def _token_out(issued: IssuedTokens, bound: bool = False) -> TokenOut:
    return TokenOut(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        refresh_expires_in=issued.refresh_expires_in,
        user_id=issued.row.user_id,
        bound_distributor=bound,
    )


def _no_store(model: BaseModel):
    response = make_response(model.model_dump())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/auth/wxa-login")
@public_write
@spec.validate(
    json=WxaLoginIn,
    resp=Response(
        HTTP_200=TokenOut, HTTP_400=ErrorResponse, HTTP_502=ErrorResponse, HTTP_503=ErrorResponse
    ),
    tags=TAGS,
)
def wxa_login(json: WxaLoginIn):
    """Sign in from the mini-program: ``wx.login`` code in, bearer tokens out."""
    try:
        session = code_to_session(json.code)
        user = sign_in_miniapp_user(session["openid"], _text(session.get("unionid")))
    except MiniappError as exc:
        db.session.rollback()
        raise ApiError(exc.status, exc.code, exc.message) from None
    except SignInError as exc:
        db.session.rollback()
        raise ApiError(400, "wechat_bad_answer", str(exc)) from None
    if json.ref:
        try:
            with db.session.begin_nested():
                apply_ref(user.id, json.ref.upper())
        except SQLAlchemyError:
            # Signing in matters more than the referral: log it and go on.
            log.exception("applying ref %s at mini-program sign-in failed", json.ref)
    issued = issue(user, "wxa")
    db.session.commit()
    return _no_store(_token_out(issued, _bound(user.id)))


@bp.post("/auth/refresh")
@public_write
@spec.validate(json=RefreshIn, resp=Response(HTTP_200=TokenOut, HTTP_401=ErrorResponse), tags=TAGS)
def wxa_refresh(json: RefreshIn):
    """A new token pair for a live refresh token; the old pair stops working (rotation)."""
    try:
        issued = refresh(json.refresh_token)
    except CustomerTokenError as exc:
        db.session.rollback()
        raise ApiError(401, exc.code, exc.message) from None
    db.session.commit()
    return _no_store(_token_out(issued, _bound(issued.row.user_id)))


@bp.post("/auth/revoke")
@public_write
@spec.validate(json=RefreshIn, resp=Response(HTTP_200=RevokeOut), tags=TAGS)
def wxa_revoke(json: RefreshIn):
    """Sign out: the pair of this refresh token stops working at once."""
    revoked = revoke(json.refresh_token)
    db.session.commit()
    return RevokeOut(revoked=revoked)


@bp.get("/distributor/wxacode")
@customer_required
@spec.validate(
    resp=Response(
        "HTTP_200", HTTP_401=ErrorResponse, HTTP_403=ErrorResponse, HTTP_503=ErrorResponse
    ),
    tags=["distributor"],
    security={BEARER: []},
)
def distributor_wxacode():
    """The signed-in distributor's mini-program code (PNG; scene = their referral code)."""
    distributor = distributor_for_user(customer_id())
    if distributor is None or distributor.status != "active":
        raise ApiError(403, "not_distributor", "你还不是分销员")
    try:
        etag, data = wxacode_for(distributor)
    except MiniappError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    if request.if_none_match.contains(etag):
        response = current_app.response_class(status=304)
    else:
        response = current_app.response_class(data, mimetype="image/png")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


def _bound(user_id: int) -> bool:
    return current_binding(user_id) is not None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
