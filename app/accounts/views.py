"""Customer sign-in with WeChat web OAuth: /login, its callback, /logout.

``GET /login?next=PATH`` sends the browser to WeChat's authorize page and
``/login/callback`` brings it back to PATH signed in. The scope: snsapi_userinfo (nickname
and avatar, with the user's consent) on a browser's first sign-in (no ``wx_seen`` cookie)
or with ``&scope=userinfo``; otherwise snsapi_base (silent). After a silent sign-in whose
profile is older than WECHAT_PROFILE_REFRESH_DAYS (or was never fetched), the callback
goes round once more with snsapi_userinfo to refresh it. Outside WeChat the user is asked to
open the page in WeChat, except where ALLOW_SIGNIN_OUTSIDE_WECHAT is on (development and
tests: the local stand-in lets the developer pick a test fan).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import requests
from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from markupsafe import Markup
from wechatpy.exceptions import WeChatException

from app.accounts.oauth import is_wechat_browser, new_state, qr_svg, safe_next
from app.accounts.services import SignInError, sign_in_wechat_user
from app.accounts.traces import record_sign_in
from app.core.time import utcnow
from app.extensions import db
from app.wechat.clients import get_oauth

bp = Blueprint("accounts", __name__)

SESSION_STATE = "oauth_state"
SESSION_NEXT = "oauth_next"
SESSION_SCOPE = "oauth_scope"
# Set after a sign-in: this browser has signed in before, so the next sign-in is silent.
SEEN_COOKIE = "wx_seen"
SEEN_MAX_AGE = 2 * 365 * 86400


def _callback_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for("accounts.callback")


@bp.get("/login")
def login():
    """Start WeChat OAuth and come back to ``next`` signed in."""
    next_path = safe_next(request.args.get("next"))
    asked = request.args.get("scope") == "userinfo"
    signed_in = getattr(current_user, "is_authenticated", False) and not current_user.is_staff
    if signed_in and not asked:
        return redirect(next_path)
    first_time = not request.cookies.get(SEEN_COOKIE)
    scope = "snsapi_userinfo" if asked or first_time else "snsapi_base"

    if not is_wechat_browser(request.headers.get("User-Agent")) and not current_app.config.get(
        "ALLOW_SIGNIN_OUTSIDE_WECHAT"
    ):
        target = current_app.config["PUBLIC_BASE_URL"].rstrip("/") + next_path
        return render_template(
            "accounts/open_in_wechat.html",
            target=target,
            qr=Markup(qr_svg(target)),  # noqa: S704 - our own generated SVG
        )

    state = new_state()
    session[SESSION_STATE] = state
    session[SESSION_NEXT] = next_path
    session[SESSION_SCOPE] = scope
    return redirect(get_oauth(_callback_url(), scope=scope, state=state).authorize_url)


@bp.get("/login/callback")
def callback():
    """WeChat sends the user back here with ``code`` and ``state`` (or only ``state``)."""
    expected = session.pop(SESSION_STATE, None)
    next_path = safe_next(session.pop(SESSION_NEXT, None))
    scope = session.pop(SESSION_SCOPE, "snsapi_base")
    state = request.args.get("state", "")
    retry_url = url_for("accounts.login", next=next_path)

    if not expected or not secrets.compare_digest(state.encode(), expected.encode()):
        return _login_error("登录请求已失效或来源不明，请重新进入页面。", retry_url, 400)
    code = request.args.get("code", "")
    if not code:
        # The user pressed 拒绝 on WeChat's consent page: only state comes back.
        return render_template("accounts/denied.html", retry_url=retry_url, next_path=next_path)
    if len(code) > 512:
        return _login_error("登录参数有误，请重新进入页面。", retry_url, 400)

    oauth = get_oauth(_callback_url(), scope=scope)
    try:
        token = oauth.fetch_access_token(code)
        profile: dict = {}
        if "snsapi_userinfo" in str(token.get("scope", "")):
            profile = oauth.get_user_info(token["openid"], token["access_token"])
        user = sign_in_wechat_user(
            openid=str(token.get("openid") or ""),
            unionid=_text(token.get("unionid")) or _text(profile.get("unionid")),
            nickname=_text(profile.get("nickname")),
            avatar_url=_text(profile.get("headimgurl")),
            profile_fetched=bool(profile),
        )
    except WeChatException as exc:
        db.session.rollback()
        current_app.logger.warning("WeChat OAuth refused: %s %s", exc.errcode, exc.errmsg)
        if exc.errcode is None:
            return _login_error("暂时连不上微信，请稍后再试。", retry_url, 502)
        return _login_error("微信登录失败（授权码无效或已使用），请重新进入页面。", retry_url, 400)
    except requests.RequestException as exc:
        db.session.rollback()
        # Only the class name: the request URL carries our secret in its query string.
        current_app.logger.warning("WeChat OAuth unreachable: %s", type(exc).__name__)
        return _login_error("暂时连不上微信，请稍后再试。", retry_url, 502)
    except (ValueError, KeyError) as exc:
        # SignInError is a ValueError too: WeChat answered something we cannot use.
        db.session.rollback()
        current_app.logger.warning("WeChat OAuth answer unusable: %s", type(exc).__name__)
        status = 400 if isinstance(exc, SignInError) else 502
        return _login_error("暂时无法完成微信登录，请稍后再试。", retry_url, status)

    login_user(user)
    # Where and with what browser (hashed): the risk checks compare buyers and distributors.
    record_sign_in(user.id, request.remote_addr, request.headers.get("User-Agent"))
    db.session.commit()
    if not profile and _profile_stale(user.profile_refreshed_at):
        # Signed in silently but the nickname and avatar are missing or old: ask once.
        response = redirect(url_for("accounts.login", next=next_path, scope="userinfo"))
    else:
        response = redirect(next_path)
    response.set_cookie(
        SEEN_COOKIE,
        "1",
        max_age=SEEN_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
    )
    return response


def _profile_stale(refreshed_at) -> bool:
    """Whether nickname and avatar should be asked again (WECHAT_PROFILE_REFRESH_DAYS)."""
    if refreshed_at is None:
        return True
    days = current_app.config.get("WECHAT_PROFILE_REFRESH_DAYS", 30)
    return utcnow() - refreshed_at > timedelta(days=days)


@bp.get("/logout")
def logout_page():
    """A page with the sign-out button (signing out changes state, so it is a POST)."""
    return render_template("accounts/logout.html")


@bp.post("/logout")
def logout():
    """Sign out (CSRF-checked by Flask-WTF) and go to the shop's home page."""
    logout_user()
    for key in (SESSION_STATE, SESSION_NEXT, SESSION_SCOPE):
        session.pop(key, None)
    return redirect(url_for("shop.home"))


def _login_error(message: str, retry_url: str, status: int):
    page = render_template("accounts/login_error.html", message=message, retry_url=retry_url)
    return page, status


def _text(value: object) -> str | None:
    """A string WeChat sent, or None for anything else (missing, null, a number)."""
    return value if isinstance(value, str) and value else None
