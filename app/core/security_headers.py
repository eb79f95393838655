"""Security headers on every response, and the per-request CSP nonce for templates.

Every response says ``X-Content-Type-Options: nosniff`` (a JSON error or an upload is never
sniffed into HTML) and ``Referrer-Policy: strict-origin-when-cross-origin`` (share links
carry ``?ref=`` codes and order pages carry ids: other sites see only our origin).

Three kinds of responses get three Content-Security-Policies:

- admin pages (``/admin/...``): only the site's own scripts, styles and images, never in a
  frame (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` for older browsers);
- shop (H5) pages, everything else that is a page: the same, plus WeChat's JS-SDK
  (jweixin from res.wx.qq.com, res2.wx.qq.com as WeChat's documented backup) and WeChat's
  image hosts (avatars on thirdwx.qlogo.cn / wx.qlogo.cn, article images on mmbiz.qpic.cn,
  and jweixin's own report beacon on open.weixin.qq.com, which it sends as an image);
- the JSON API (``/api/...``): no content at all (``default-src 'none'``).

No template needs ``'unsafe-inline'``: scripts and styles live in static/. An inline
``<script>`` or ``<style>`` that really must stay carries ``nonce="{{ csp_nonce() }}"``;
the nonce is fresh for every request and named in the policy only when a template asked
for it. Catalog fragments are cached across requests (app/shop/cache.py), so a cached
fragment must never carry a nonce: it would be stale on the next request.

Style attributes (``style="..."``) are refused too: a width or colour that depends on the
data is drawn with SVG presentation attributes or set from static JS through the CSSOM,
which CSP allows.

When ``PUBLIC_BASE_URL`` is https: HSTS (a year; subdomains are not ours to pin), and the
page policies add ``upgrade-insecure-requests``, so an avatar WeChat still hands out as
``http://thirdwx.qlogo.cn/...`` is fetched over https and matches the https image hosts.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

WECHAT_SCRIPT_SOURCES = ("https://res.wx.qq.com", "https://res2.wx.qq.com")
WECHAT_IMAGE_SOURCES = (
    "https://thirdwx.qlogo.cn",
    "https://wx.qlogo.cn",
    "https://mmbiz.qpic.cn",
    "https://open.weixin.qq.com",
)
HSTS = "max-age=31536000"
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def csp_nonce() -> str:
    """The nonce of this request's CSP, for ``<script nonce="{{ csp_nonce() }}">``."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(18)
    return nonce


def register_security_headers(app: Flask) -> None:
    """Expose ``csp_nonce()`` to templates and add the headers to every response."""
    app.add_template_global(csp_nonce)
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    """``after_request``: the headers of the module docstring, by the kind of path."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    https = (current_app.config.get("PUBLIC_BASE_URL") or "").startswith("https://")
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)
    path = request.path
    if path.startswith("/api/"):
        headers.setdefault("Content-Security-Policy", API_POLICY)
    elif path == "/admin" or path.startswith("/admin/"):
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Content-Security-Policy", admin_policy(g.get("csp_nonce"), https))
    else:
        headers.setdefault("Content-Security-Policy", shop_policy(g.get("csp_nonce"), https))
    return response


def admin_policy(nonce: str | None, https: bool = False) -> str:
    """The admin pages' CSP: the site's own resources only, never framed."""
    own = _with_nonce("'self'", nonce)
    return _join(
        (
            "default-src 'self'",
            f"script-src {own}",
            f"style-src {own}",
            "img-src 'self' data: blob:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ),
        https,
    )


def shop_policy(nonce: str | None, https: bool = False) -> str:
    """The H5 pages' CSP: the site's own resources, WeChat's JS-SDK and image hosts.

    In development and tests the stand-in plays WeChat, so its origin (where its avatars
    live) is allowed for images too; in production those settings name WeChat's hosts.
    """
    own = _with_nonce("'self'", nonce)
    images = ["'self'", "data:", "blob:", *WECHAT_IMAGE_SOURCES, *_wechat_origins()]
    return _join(
        (
            "default-src 'self'",
            f"script-src {own} {' '.join(WECHAT_SCRIPT_SOURCES)}",
            f"style-src {own}",
            f"img-src {' '.join(dict.fromkeys(images))}",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'self'",
        ),
        https,
    )


def _join(directives: tuple[str, ...], https: bool) -> str:
    if https:
        directives = (*directives, "upgrade-insecure-requests")
    return "; ".join(directives)


def _with_nonce(source: str, nonce: str | None) -> str:
    return f"{source} 'nonce-{nonce}'" if nonce else source


def _wechat_origins() -> list[str]:
    """Origins of the configured WeChat hosts (the stand-in's in development)."""
    origins = []
    for key in ("WECHAT_API_BASE", "WECHAT_OPEN_BASE", "WECHAT_MP_BASE"):
        parts = urlsplit(current_app.config.get(key) or "")
        if parts.scheme in ("http", "https") and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins
