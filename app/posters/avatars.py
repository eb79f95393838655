"""Fetching a distributor's avatar for a poster, never failing the poster.

``User.avatar_url`` is usually WeChat's (thirdwx.qlogo.cn): remote, sometimes slow, and
sometimes gone. The fetch has a short timeout and a size cap, and the answer must decode
as a real image (Pillow verifies it); anything else, be it a 404, a timeout, HTML or a
truncated file, gives None and the poster draws a placeholder instead.

Decoded avatars are kept in Redis for a day (a 200 px PNG, a few KB) so a price change
or a new template does not fetch them again; a failure is remembered for a minute so a
broken URL is not hammered by every render.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings

import redis
import requests
from PIL import Image, UnidentifiedImageError

from app.core.redis import get_redis
from app.posters.drawing import cover

log = logging.getLogger(__name__)

TIMEOUT = (2.0, 3.0)  # connect, read: a poster waits at most this long for an avatar
MAX_BYTES = 2 * 1024 * 1024  # WeChat avatars are ~20 KB at 132 px, ~100 KB at 640 px
MAX_PIXELS = 4_000_000
SIDE = 200  # the largest avatar a layout draws is 160 px
CACHE_SECONDS = 86400
FAILURE_SECONDS = 60
_MISS = b"-"


def _key(url: str) -> str:
    return "poster:avatar:" + hashlib.sha256(url.encode()).hexdigest()[:32]


def fetch_avatar(url: str) -> Image.Image | None:
    """The avatar at ``url`` as an RGB square of SIDE px, or None (placeholder)."""
    url = (url or "").strip()
    if not url.startswith(("http://", "https://")):
        return None
    cache = _redis()
    if cache is not None:
        try:
            cached = cache.get(_key(url))
        except redis.RedisError:
            cached = None
        if cached == _MISS:
            return None
        if cached:
            return Image.open(io.BytesIO(cached)).convert("RGB")
    picture = _download(url)
    if cache is not None:
        try:
            if picture is None:
                cache.set(_key(url), _MISS, ex=FAILURE_SECONDS)
            else:
                out = io.BytesIO()
                picture.save(out, "PNG")
                cache.set(_key(url), out.getvalue(), ex=CACHE_SECONDS)
        except redis.RedisError:
            pass
    return picture


def _redis():
    try:
        return get_redis()
    except RuntimeError:  # no app context (bench scripts rendering by hand)
        return None


def _download(url: str) -> Image.Image | None:
    try:
        with requests.get(url, timeout=TIMEOUT, stream=True, allow_redirects=True) as response:
            if response.status_code != 200:
                log.info("avatar %s: HTTP %s, placeholder used", url, response.status_code)
                return None
            data = bytearray()
            for chunk in response.iter_content(64 * 1024):
                data.extend(chunk)
                if len(data) > MAX_BYTES:
                    log.info("avatar %s: larger than %s bytes, placeholder used", url, MAX_BYTES)
                    return None
    except requests.RequestException as err:
        log.info("avatar %s: %s, placeholder used", url, type(err).__name__)
        return None
    return decode_avatar(bytes(data))


def decode_avatar(data: bytes) -> Image.Image | None:
    """``data`` decoded as a JPEG/PNG/WebP/GIF image, squared to SIDE px; None otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in ("JPEG", "PNG", "WEBP", "GIF"):
                    return None
                if probe.width * probe.height > MAX_PIXELS:
                    return None
                probe.verify()
            with Image.open(io.BytesIO(data)) as picture:
                picture.draft("RGB", (SIDE, SIDE))
                picture.load()
                return cover(picture, (SIDE, SIDE))
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ):
        return None
