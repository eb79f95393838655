"""The mini-program's (小程序) side of WeChat: ``jscode2session`` and ``getwxacodeunlimit``.

Same client and origins as every other WeChat call (``WECHAT_API_BASE``): a
``WeChatClient`` of the mini-program's appid (``WECHAT_MINIAPP_APPID`` /
``WECHAT_MINIAPP_SECRET``), so its access token is shared through Redis and refreshed by
one process at a time, like the official account's (clients.py). Without the two
settings the mini-program is "not configured" and callers answer 503.
"""

from __future__ import annotations

import requests
from flask import current_app
from wechatpy.exceptions import WeChatClientException

from app.wechat.clients import HTTP_TIMEOUT, WeChatClient, client_for_context

MAX_SCENE = 32  # WeChat: scene is at most 32 visible characters
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class MiniappError(Exception):
    """The mini-program door cannot answer: ``code`` for the client, Chinese message."""

    def __init__(self, code: str, message: str, status: int = 502):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def miniapp_configured() -> bool:
    """Whether the mini-program's appid and secret are set."""
    config = current_app.config
    return bool(config.get("WECHAT_MINIAPP_APPID") and config.get("WECHAT_MINIAPP_SECRET"))


def get_miniapp_client() -> WeChatClient:
    """The mini-program's API client (one per app context)."""
    if not miniapp_configured():
        raise MiniappError("miniapp_not_configured", "小程序未配置", 503)
    return client_for_context("_miniapp_client", "WECHAT_MINIAPP_APPID", "WECHAT_MINIAPP_SECRET")


def code_to_session(code: str) -> dict:
    """``GET /sns/jscode2session``: the ``openid`` (and ``unionid`` when WeChat gives one)
    of the ``wx.login`` code. The session_key is not kept: nothing here decrypts data."""
    client = get_miniapp_client()
    try:
        res = requests.get(
            f"{client.api_base}/sns/jscode2session",
            params={
                "appid": client.appid,
                "secret": client.secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
            timeout=HTTP_TIMEOUT,
        )
        res.raise_for_status()
        body = res.json()
    except (requests.RequestException, ValueError):
        # Only the class name: the URL carries our secret.
        raise MiniappError("wechat_unreachable", "暂时连不上微信，请稍后再试") from None
    if not isinstance(body, dict):
        raise MiniappError("wechat_bad_answer", "微信返回的数据无效，请稍后再试")
    errcode = body.get("errcode") or 0
    if errcode:
        if errcode in (40029, 40163, 40226):  # invalid code, code used, risky user
            raise MiniappError("invalid_code", "登录凭证无效或已使用，请重新登录", 400)
        raise MiniappError("wechat_refused", "微信登录失败，请稍后再试")
    if not isinstance(body.get("openid"), str) or not body["openid"]:
        raise MiniappError("wechat_bad_answer", "微信返回的数据无效，请稍后再试")
    return body


def wxacode_unlimit(scene: str, page: str | None = None, width: int = 430) -> bytes:
    """``POST /wxa/getwxacodeunlimit``: the PNG of a mini-program code carrying ``scene``."""
    if not scene or len(scene) > MAX_SCENE:
        raise ValueError("scene must be 1-32 characters")
    client = get_miniapp_client()
    data = {"scene": scene, "width": width, "check_path": False}
    if page:
        data["page"] = page
    try:
        res = client.post(f"{client.api_base}/wxa/getwxacodeunlimit", data=data)
    except WeChatClientException as exc:
        raise MiniappError("wechat_refused", f"微信未能生成小程序码（{exc.errcode}）") from None
    except requests.RequestException:
        raise MiniappError("wechat_unreachable", "暂时连不上微信，请稍后再试") from None
    content = getattr(res, "content", None)
    if not isinstance(content, bytes) or not content.startswith(PNG_MAGIC):
        raise MiniappError("wechat_bad_answer", "微信返回的小程序码无效，请稍后再试")
    return content
