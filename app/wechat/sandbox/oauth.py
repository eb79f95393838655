"""Web OAuth (网页授权): the authorize page and the ``/sns/*`` APIs.

The authorize page stands in for what WeChat shows inside its browser. Real WeChat signs
in the fan holding the phone; here the developer picks (or types) a test fan. With
``scope=snsapi_userinfo`` it asks for consent (允许 / 拒绝) the way WeChat does.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from app.wechat.sandbox.common import check_credentials, get_state, wx_error

bp = Blueprint("sandbox_oauth", __name__)

SCOPES = ("snsapi_base", "snsapi_userinfo")
STATE_RE = re.compile(r"^[A-Za-z0-9]{0,128}$")
MAX_NICKNAME = 32


def _authorize_params(source) -> dict[str, str]:
    return {
        "appid": (source.get("appid") or "").strip(),
        "redirect_uri": (source.get("redirect_uri") or "").strip(),
        "response_type": (source.get("response_type") or "code").strip(),
        "scope": (source.get("scope") or "").strip(),
        "state": (source.get("state") or "").strip(),
    }


def _authorize_problem(params: dict[str, str]) -> tuple[int, str] | None:
    """WeChat's error page code and text for a bad authorize request, else None."""
    if params["appid"] != get_state().appid:
        return 10016, "appid 参数错误"
    uri = urlsplit(params["redirect_uri"])
    if uri.scheme not in ("http", "https") or not uri.hostname:
        return 10003, "redirect_uri 参数错误"
    domains = current_app.config.get("SANDBOX_OAUTH_DOMAINS")
    if domains and uri.hostname not in domains:
        return 10003, "redirect_uri 域名与后台配置不一致"
    if params["response_type"] != "code":
        return 10004, "response_type 参数错误"
    if params["scope"] not in SCOPES:
        return 10005, "此公众号并没有这些 scope 的权限"
    if not STATE_RE.match(params["state"]):
        return 10009, "state 参数错误（仅限字母和数字，最长 128 字节）"
    return None


def _back_to(redirect_uri: str, **params: str) -> str:
    """``redirect_uri`` with ``params`` added to its query string."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _render_authorize(params: dict[str, str], error: str | None = None, status: int = 200):
    return (
        render_template(
            "sandbox/authorize.html",
            params=params,
            fans=get_state().list_fans(),
            userinfo=params["scope"] == "snsapi_userinfo",
            error=error,
            avatar_url=_avatar_url,
        ),
        status,
    )


@bp.get("/connect/oauth2/authorize")
def authorize():
    """The page WeChat shows before sending the fan back to redirect_uri with a code."""
    params = _authorize_params(request.args)
    problem = _authorize_problem(params)
    if problem:
        code, message = problem
        return render_template("sandbox/error.html", code=code, message=message), 400
    return _render_authorize(params)


@bp.post("/connect/oauth2/authorize")
def authorize_choose():
    """The developer picked a fan (or typed a nickname) and allowed, or refused."""
    params = _authorize_params(request.form)
    problem = _authorize_problem(params)
    if problem:
        code, message = problem
        return render_template("sandbox/error.html", code=code, message=message), 400
    if request.form.get("action") == "deny":
        # WeChat: a refusal comes back with only ``state``.
        return redirect(_back_to(params["redirect_uri"], state=params["state"]))
    state = get_state()
    nickname = (request.form.get("nickname") or "").strip()
    if nickname:
        if len(nickname) > MAX_NICKNAME:
            return _render_authorize(params, f"昵称最多 {MAX_NICKNAME} 个字", 400)
        fan = state.fan_for_nickname(nickname)
    else:
        fan = state.fans.get(request.form.get("fan") or "")
        if fan is None:
            return _render_authorize(params, "请选择一个测试粉丝，或输入新昵称", 400)
    code = state.issue_code(fan.openid, params["scope"])
    return redirect(_back_to(params["redirect_uri"], code=code.code, state=params["state"]))


@bp.get("/sns/oauth2/access_token")
def access_token():
    """Exchange a code for the fan's openid and a web access token."""
    args = request.args
    error = check_credentials(args.get("appid"), args.get("secret"))
    if error:
        return error
    if args.get("grant_type") != "authorization_code":
        return wx_error(40002)
    if not args.get("code"):
        return wx_error(41008)
    state = get_state()
    errcode, code = state.redeem_code(args["code"])
    if errcode or code is None:
        return wx_error(errcode)
    access, refresh = state.issue_web_token(code.openid, code.scope)
    return jsonify(_token_body(access, refresh))


@bp.get("/sns/oauth2/refresh_token")
def refresh_token():
    """Renew a web access token with its refresh token."""
    args = request.args
    state = get_state()
    if args.get("appid") != state.appid:
        return wx_error(40013)
    if args.get("grant_type") != "refresh_token":
        return wx_error(40002)
    errcode, refresh = state.refresh_web_token(args.get("refresh_token"))
    if errcode or refresh is None:
        return wx_error(errcode)
    access, _ = state.issue_web_token(refresh.extra["openid"], refresh.extra["scope"])
    return jsonify(_token_body(access, refresh))


def _token_body(access, refresh) -> dict:
    state = get_state()
    openid, scope = access.extra["openid"], access.extra["scope"]
    body = {
        "access_token": access.value,
        "expires_in": round(access.expires_at - state.now()),
        "refresh_token": refresh.value,
        "openid": openid,
        "scope": scope,
    }
    # WeChat gives unionid here only for snsapi_userinfo on accounts bound to an open platform.
    if scope == "snsapi_userinfo" and current_app.config.get("SANDBOX_UNIONID", True):
        body["unionid"] = state.fans[openid].unionid
    return body


@bp.get("/sns/userinfo")
def userinfo():
    """The fan's public profile; needs a web token from scope snsapi_userinfo."""
    state = get_state()
    errcode, token = state.web_token(request.args.get("access_token"))
    if errcode or token is None:
        return wx_error(errcode)
    if request.args.get("openid") != token.extra["openid"]:
        return wx_error(40003)
    if token.extra["scope"] != "snsapi_userinfo":
        return wx_error(48001)
    fan = state.fans[token.extra["openid"]]
    body = {
        "openid": fan.openid,
        "nickname": fan.nickname,
        "sex": 0,  # WeChat stopped returning sex and region in 2021
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": _avatar_url(fan.openid),
        "privilege": [],
    }
    if current_app.config.get("SANDBOX_UNIONID", True):
        body["unionid"] = fan.unionid
    return current_app.response_class(
        # WeChat sends the nickname as raw UTF-8, not \\u escapes
        current_app.json.dumps(body, ensure_ascii=False),
        mimetype="application/json",
    )


@bp.get("/sns/auth")
def auth():
    """Whether a web access token is still valid for ``openid``."""
    errcode, token = get_state().web_token(request.args.get("access_token"))
    if errcode or token is None:
        return wx_error(errcode)
    if request.args.get("openid") != token.extra["openid"]:
        return wx_error(40003)
    return jsonify(errcode=0, errmsg="ok")


def _avatar_url(openid: str) -> str:
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url
    return base.rstrip("/") + url_for("sandbox_tools.avatar", openid=openid)
