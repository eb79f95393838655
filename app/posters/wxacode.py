"""Distributors' mini-program codes (小程序码), cached like the QR posters.

A code is ``getwxacodeunlimit`` with ``scene`` = the distributor's public referral code
(what ``?ref=`` carries on H5) and ``page`` = ``WECHAT_MINIAPP_PAGE``; the mini-program
reads the scene and sends it as ``ref`` to ``POST /api/v1/auth/wxa-login``, which binds like
a link. Such codes never expire and are unlimited in number, so the PNG is kept in the
posters' Redis cache (``app.posters.cache``: size-bounded, least recently used first)
under the hash of (appid, scene, page, width): asked again, it is served without calling
WeChat; a new page setting gives a new key.
"""

from __future__ import annotations

import io
import logging

from flask import current_app
from PIL import Image

from app.distribution.models import Distributor
from app.posters import cache
from app.wechat.miniapp import MiniappError, miniapp_configured, wxacode_unlimit

log = logging.getLogger(__name__)

WIDTH = 430  # WeChat's default; posters scale it down


def wxacode_key(distributor: Distributor, width: int = WIDTH) -> str:
    """The cache key (and ETag) of a distributor's mini-program code."""
    config = current_app.config
    return cache.poster_key(
        {
            "kind": "wxacode",
            "appid": config.get("WECHAT_MINIAPP_APPID"),
            "scene": distributor.code,
            "page": config.get("WECHAT_MINIAPP_PAGE"),
            "width": width,
        }
    )


def wxacode_for(distributor: Distributor, width: int = WIDTH) -> tuple[str, bytes]:
    """(ETag, PNG) of ``distributor``'s mini-program code: cached, or fetched and cached.

    Raises ``MiniappError`` (503 when the mini-program is not configured)."""
    key = wxacode_key(distributor, width)
    data = cache.get(key)
    if data is None:
        data = wxacode_unlimit(
            distributor.code, current_app.config.get("WECHAT_MINIAPP_PAGE"), width
        )
        cache.put(key, data)
    return key, data


def poster_wxacode(distributor: Distributor) -> tuple[str, Image.Image | None]:
    """(key, image) for a poster: the code when the mini-program is configured and WeChat
    gives one; ("", None) otherwise (the poster then carries only its QR code)."""
    if not miniapp_configured():
        return "", None
    try:
        key, data = wxacode_for(distributor)
        image = Image.open(io.BytesIO(data))
        image.load()
    except (MiniappError, OSError) as err:
        log.warning("mini-program code unavailable for distributor %s: %s", distributor.id, err)
        return "", None
    return key, image.convert("RGB")
