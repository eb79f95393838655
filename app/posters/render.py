"""Poster rendering: a style and a content in, JPEG bytes out (750 x 1334, under 300 KB).

Pure: no database, no network. The service (app.posters.services) gathers the content
(nickname, avatar already fetched, QR content, prices) and caches the bytes. Rendering is
deterministic: the same style and content always give the same bytes, which is what lets
the cache use the hash of its inputs as a strong ETag.
"""

from __future__ import annotations

import io

from PIL import Image

from app.posters.layouts import (
    DEFAULT_LAYOUT,
    HEIGHT,
    LAYOUTS,
    WIDTH,
    Ctx,
    PosterContent,
    PosterStyle,
    draw_poster,
)

__all__ = [
    "HEIGHT",
    "LAYOUTS",
    "MAX_BYTES",
    "WIDTH",
    "PosterContent",
    "PosterStyle",
    "encode_jpeg",
    "render_poster",
    "render_poster_image",
    "sample_content",
]

MAX_BYTES = 300 * 1024  # WeChat moments and groups show it at once; the bound
# Quality steps tried in order until the file fits: 86 keeps small text and the QR crisp.
# Product photos and designed backgrounds fit at the first step (about 100 KB). A very busy
# picture (fine texture, noise) is drawn again with its pictures blurred, which keeps the
# text and the QR sharp where lowering the quality further would smear the QR code.
QUALITY_STEPS = (86, 78, 70, 62)
SOFT_QUALITY_STEPS = (80, 70, 60, 50, 40, 30)


def render_poster_image(style: PosterStyle, content: PosterContent) -> Ctx:
    """Draw the poster; the context carries the image and where each text went."""
    return draw_poster(style, content)


def render_poster(style: PosterStyle, content: PosterContent) -> bytes:
    """The poster as JPEG bytes, under MAX_BYTES."""
    data = encode_jpeg(render_poster_image(style, content).image)
    if len(data) > MAX_BYTES:
        data = encode_jpeg(draw_poster(style, content, soften=True).image, SOFT_QUALITY_STEPS)
    return data


def encode_jpeg(image: Image.Image, steps: tuple[int, ...] = QUALITY_STEPS) -> bytes:
    """Baseline JPEG at the best quality step that fits MAX_BYTES (else the last step).

    4:2:0 chroma subsampling halves the file; text and QR modules are drawn on
    luminance edges, which keep full resolution, so they stay sharp.
    """
    data = b""
    for quality in steps:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, subsampling="4:2:0", optimize=True)
        data = out.getvalue()
        if len(data) <= MAX_BYTES:
            break
    return data


def sample_content(kind: str, shop_name: str, qr_content: str) -> PosterContent:
    """What the admin preview shows: a made-up distributor and product."""
    return PosterContent(
        kind=kind,
        shop_name=shop_name,
        nickname="小美的好物分享",
        qr_content=qr_content,
        avatar=None,
        title="新疆阿克苏冰糖心苹果 脆甜多汁 产地直发 坏果包赔 5斤装",
        price_fen=3990,
        original_price_fen=5990,
        price_from=False,
        picture_path=None,
    )


def layout_choices() -> list[tuple[str, str, str]]:
    """(key, label, description) of every layout, for forms."""
    return [(k, v.label, v.description) for k, v in LAYOUTS.items()]


def is_layout(key: str) -> bool:
    return key in LAYOUTS


DEFAULT = DEFAULT_LAYOUT
