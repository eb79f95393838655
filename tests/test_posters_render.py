"""Poster rendering without the app: every layout and kind draws real Chinese glyphs (not
tofu), QR codes decode to their content, long titles stay on two lines, files stay under
300 KB even on a noisy background picture, and missing pictures degrade to placeholders."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.posters import drawing
from app.posters.layouts import LAYOUTS
from app.posters.render import (
    HEIGHT,
    MAX_BYTES,
    WIDTH,
    PosterContent,
    PosterStyle,
    encode_jpeg,
    render_poster,
    render_poster_image,
)
from tests.support.poster import decode_qr, glyph_match, open_jpeg, tofu_face

CASES = [(layout, kind) for layout in LAYOUTS for kind in ("shop", "product")]
URL = "http://127.0.0.1:5000/product/123?ref=AB12CD34"


def content(kind: str, **overrides) -> PosterContent:
    values = {
        "kind": kind,
        "shop_name": "春风十里好物店",
        "nickname": "测试小店主",
        "qr_content": URL,
        "title": "春风十里好物 暖冬新品",
        "price_fen": 3990,
        "original_price_fen": 5990,
    }
    values.update(overrides)
    return PosterContent(**values)


def test_the_cjk_font_is_installed():
    regular, _bold = drawing.font_paths()
    assert regular and "CJK" in regular, "install fonts-noto-cjk (.ci/run does)"
    assert "SC" in " ".join(drawing.font(30).getname())


@pytest.mark.parametrize(("layout", "kind"), CASES)
def test_chinese_text_is_drawn_with_real_glyphs(layout, kind):
    ctx = render_poster_image(PosterStyle(layout=layout), content(kind))
    poster = open_jpeg(encode_jpeg(ctx.image))  # what the distributor gets, JPEG and all
    for name in ("title", "nickname") if kind == "product" else ("shop_name", "nickname"):
        run = ctx.runs[name]
        assert run.text in ("春风十里好物 暖冬新品", "测试小店主", "春风十里好物店")
        iou, ink = glyph_match(poster, run)
        assert ink > 500, (name, ink)  # something was drawn there
        assert iou > 0.9, (name, iou)  # and it is the font's own glyphs
        tofu_iou, _ = glyph_match(poster, run, tofu_face(run.size))
        assert tofu_iou < 0.4, (name, tofu_iou)  # the comparison tells glyphs from boxes


@pytest.mark.parametrize(("layout", "kind"), CASES)
def test_qr_decodes_to_its_content_and_size_is_right(layout, kind):
    data = render_poster(PosterStyle(layout=layout), content(kind))
    assert len(data) < MAX_BYTES
    assert open_jpeg(data).size == (WIDTH, HEIGHT)
    assert decode_qr(data) == URL


def test_qr_keeps_its_quiet_zone_and_whole_pixel_modules():
    code = drawing.qr_image(URL, 220)
    modules = len(drawing.qr_modules(URL))
    assert code.width == code.height and code.width % modules == 0
    scale = code.width // modules
    pixels = np.asarray(code.convert("L"))
    quiet = drawing.QR_BORDER * scale
    assert pixels[:quiet].min() == 255 and pixels[:, :quiet].min() == 255
    assert pixels[-quiet:].min() == 255 and pixels[:, -quiet:].min() == 255


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_long_titles_wrap_on_two_lines_with_an_ellipsis(layout):
    title = "新疆阿克苏冰糖心苹果 脆甜多汁 产地直发 坏果包赔 5斤装 10斤装 礼盒 送礼 自用 " * 3
    ctx = render_poster_image(PosterStyle(layout=layout), content("product", title=title))
    assert "title2" in ctx.runs and "title3" not in ctx.runs
    assert ctx.runs["title2"].text.endswith("…")
    for name in ("title", "title2"):
        left, _top, right, _bottom = ctx.runs[name].box
        assert left > 0 and right < WIDTH - 30, (name, ctx.runs[name].box)


def test_long_nicknames_and_emoji_never_overflow_or_tofu():
    ctx = render_poster_image(
        PosterStyle(), content("shop", nickname="🌸小美🌸的好物分享铺子" * 4, shop_name="店" * 40)
    )
    assert "🌸" not in ctx.runs["nickname"].text
    assert ctx.runs["nickname"].text.endswith("…")
    for name in ("nickname", "shop_name"):
        left, _top, right, _bottom = ctx.runs[name].box
        assert left >= 30 and right <= WIDTH - 30


def test_wrap_keeps_latin_words_whole():
    face = drawing.font(34, True)
    lines = drawing.wrap("Apple iPhone 手机壳 MagSafe magnetic case", face, 300, 3)
    assert all(not line.endswith(("Mag", "magn")) for line in lines[:-1]), lines


def test_noisy_background_picture_still_fits_300kb(tmp_path: Path):
    noise = np.random.default_rng(7).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    picture = tmp_path / "noise.png"
    Image.fromarray(noise).save(picture)
    for layout in LAYOUTS:
        style = PosterStyle(layout=layout, background_image=picture)
        data = render_poster(style, content("product", picture_path=picture))
        assert len(data) < MAX_BYTES, (layout, len(data))
        assert decode_qr(data) == URL


def test_missing_or_broken_pictures_degrade_to_placeholders(tmp_path: Path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really a jpeg")
    for picture in (tmp_path / "missing.jpg", broken, None):
        style = PosterStyle(background_image=tmp_path / "gone.png")
        data = render_poster(style, content("product", picture_path=picture, avatar=None))
        assert decode_qr(data) == URL


def test_rendering_is_deterministic():
    style = PosterStyle(layout="immersive", slogan="精选好物")
    assert render_poster(style, content("product")) == render_poster(style, content("product"))


def test_an_avatar_picture_is_drawn_round():
    avatar = Image.new("RGB", (200, 200), (0, 0, 255))
    ctx = render_poster_image(PosterStyle(layout="classic"), content("shop", avatar=avatar))
    pixels = ctx.image.load()
    assert pixels[375, 300] == (0, 0, 255)  # the avatar's centre
    corner = pixels[375 - 78, 300 - 78]  # inside its square, outside its circle
    assert corner != (0, 0, 255)
    out = io.BytesIO()
    ctx.image.save(out, "PNG")
