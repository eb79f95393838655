"""Small pieces of the WeChat sign-in that know nothing about views: where a user may be
sent back to, whether a browser is WeChat's, the anti-CSRF state, and the QR code."""

from __future__ import annotations

import re
import secrets
import string
from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg

STATE_ALPHABET = string.ascii_letters + string.digits
STATE_LENGTH = 32  # WeChat allows [a-zA-Z0-9] up to 128 bytes
MAX_NEXT_LENGTH = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(value: str | None, default: str = "/") -> str:
    """Return ``value`` if it is a path on this site, else ``default`` (open-redirect guard).

    Refused: absolute URLs (``http://…``), scheme-relative ones (``//evil.com``),
    backslashes (browsers read ``/\\evil.com`` as ``//evil.com``), control characters
    (browsers drop tabs and newlines, turning ``/\\t/evil.com`` into ``//evil.com``), and
    the sign-in pages themselves (a loop).
    """
    value = (value or "").strip()
    if not value or len(value) > MAX_NEXT_LENGTH:
        return default
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if _CONTROL.search(value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    if parts.path == "/login" or parts.path.startswith(("/login/", "/logout")):
        return default
    return value


def is_wechat_browser(user_agent: str | None) -> bool:
    """Whether the request comes from WeChat's built-in browser (its UA says MicroMessenger)."""
    return "MicroMessenger" in (user_agent or "")


def new_state() -> str:
    """A fresh OAuth ``state``: random letters and digits, as WeChat requires."""
    return "".join(secrets.choice(STATE_ALPHABET) for _ in range(STATE_LENGTH))


def qr_svg(data: str) -> str:
    """An inline SVG QR code of ``data`` (generated locally; no network, no image file).

    The SVG is sized by CSS (width/height attributes removed); it holds only path data,
    never ``data`` as text, so it is safe to embed unescaped.
    """
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    svg = image.to_string(encoding="unicode")
    svg = re.sub(r'\s(width|height)="[^"]*"', "", svg, count=2)
    return svg.replace("<svg ", '<svg class="qr" role="img" aria-label="二维码" ', 1)
