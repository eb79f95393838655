"""JS-SDK (网页 JS 接口) configuration for share cards: the signature over a page URL.

WeChat's rule (wechat-protocol.md §3)::

    signature = sha1("jsapi_ticket=<ticket>&noncestr=<nonce>&timestamp=<ts>&url=<url>")

with the raw values (no URL-encoding) and the page URL without its ``#fragment``; the
``nonceStr`` and ``timestamp`` given to ``wx.config`` must be the signed ones. Only pages of
our own site (``PUBLIC_BASE_URL``'s origin, the JS 安全域名) are signed: a signature for a
foreign URL is of no use to anyone but someone borrowing our account's JS-SDK.

The page decides which URL to sign (static/js/share.js): the current one, or on iOS the
URL the visitor entered with, because iOS WeChat checks the signature against that.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

# What share.js and the withdraw page call. wx.config with an API the account may not
# use is not an error: WeChat just reports it unavailable in checkJsApi.
JS_API_LIST = ("updateAppMessageShareData", "updateTimelineShareData", "requestMerchantTransfer")
MAX_URL_LENGTH = 1024


class JssdkError(ValueError):
    """A URL we will not sign: ``code`` (snake_case) and a Chinese ``message``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def signature(ticket: str, noncestr: str, timestamp: int | str, url: str) -> str:
    """WeChat's JS-SDK signature (lower-case hex SHA-1) over the four raw values."""
    raw = f"jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()  # noqa: S324 - WeChat's algorithm


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port  # raises ValueError for a port that is not a number
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or default


def page_url(url: str | None, base_url: str) -> str:
    """The URL to sign: ``url`` without its fragment, if it is a page of ``base_url``'s site.

    Raises ``JssdkError`` for an empty or over-long URL, control characters or spaces, a
    URL with a user name, and any other origin (scheme, host or port differ).
    """
    text = (url or "").strip()
    if not text:
        raise JssdkError("invalid_url", "缺少页面地址")
    text = text.split("#", 1)[0]
    if len(text) > MAX_URL_LENGTH:
        raise JssdkError("invalid_url", "页面地址过长")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in text):
        raise JssdkError("invalid_url", "页面地址含有不允许的字符")
    try:
        parts = urlsplit(text)
        origin = _origin(text)
        expected = _origin(base_url)
    except ValueError:
        raise JssdkError("invalid_url", "页面地址格式不正确") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JssdkError("invalid_url", "页面地址格式不正确")
    if parts.username is not None or parts.password is not None:
        raise JssdkError("invalid_url", "页面地址格式不正确")
    if origin != expected:
        raise JssdkError("foreign_url", "只能为本站页面生成分享配置")
    return text


@dataclass(frozen=True)
class JssdkConfig:
    """What ``wx.config`` takes (without ``debug``), and the URL that was signed."""

    app_id: str
    timestamp: int
    nonce_str: str
    signature: str
    url: str
    js_api_list: tuple[str, ...] = JS_API_LIST

    def as_wx_config(self) -> dict:
        """The object to pass to ``wx.config`` (WeChat's camelCase names)."""
        return {
            "appId": self.app_id,
            "timestamp": self.timestamp,
            "nonceStr": self.nonce_str,
            "signature": self.signature,
            "jsApiList": list(self.js_api_list),
        }


def build_config(
    app_id: str,
    ticket: str,
    url: str,
    *,
    timestamp: int | None = None,
    nonce_str: str | None = None,
) -> JssdkConfig:
    """Sign ``url`` (already checked by ``page_url``) with ``ticket`` for ``wx.config``."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    nonce = nonce_str or secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
    return JssdkConfig(
        app_id=app_id,
        timestamp=ts,
        nonce_str=nonce,
        signature=signature(ticket, nonce, ts, url),
        url=url,
    )
