"""Drawing primitives for posters: fonts, text that fits its box, QR codes, round avatars,
cover-fitted pictures and placeholders.

Everything here is pure Pillow work on images and strings: no database, no request. Fonts,
masks and decoded faces are cached per process because loading a CJK face costs several
milliseconds and a poster uses a handful of sizes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont, ImageOps
from qrcode.constants import ERROR_CORRECT_M

Colour = tuple[int, int, int]
Box = tuple[int, int, int, int]  # left, top, right, bottom

QR_BORDER = 4  # modules of quiet zone, as the QR standard asks: scanners need it
SUPERSAMPLE = 4  # round masks are drawn this much larger, then scaled down (smooth edges)

# Emoji and pictographs are not in Noto Sans CJK: WeChat nicknames often carry them, and
# they would print as tofu boxes. Dropped rather than drawn wrong.
_NO_GLYPH = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0000fe00-\U0000fe0f\U0000200d"
    "\U0001f1e6-\U0001f1ff\U000e0000-\U000e007f\U00002b00-\U00002bff]"
)


def clean_text(text: str) -> str:
    """``text`` without characters the CJK font cannot draw (emoji) and without newlines."""
    text = _NO_GLYPH.sub("", text or "")
    return " ".join(text.split())


def hex_colour(value: str, default: Colour = (0, 0, 0)) -> Colour:
    """``#RRGGBB`` as an RGB tuple (``default`` for anything else)."""
    value = (value or "").strip().lstrip("#")
    if len(value) != 6:
        return default
    try:
        return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
    except ValueError:
        return default


def luminance(colour: Colour) -> float:
    """Relative luminance 0..1 (WCAG), to pick readable text colours."""

    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in colour)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def mix(a: Colour, b: Colour, t: float) -> Colour:
    """The colour ``t`` of the way from ``a`` to ``b``."""
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


# --- fonts --------------------------------------------------------------------------------


CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)


def find_cjk_font() -> str | None:
    """Path of an installed font that can draw Chinese, or None (cards then carry no text)."""
    for candidate in CJK_FONT_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return None


def load_font(path: str | None, size: int) -> ImageFont.FreeTypeFont | None:
    """The Simplified Chinese face of ``path`` (a .ttc holds JP, KR, SC, TC... faces)."""
    if path is None:
        return None
    for index in range(10):
        try:
            face = ImageFont.truetype(path, size, index=index)
        except OSError:
            break
        if "SC" in " ".join(face.getname()):
            return face
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return None


@lru_cache(maxsize=1)
def font_paths() -> tuple[str | None, str | None]:
    """(regular, bold) CJK font files; either may stand in for the other."""
    found = find_cjk_font()
    if found is None:
        return None, None
    regular = found.replace("-Bold", "-Regular")
    bold = found.replace("-Regular", "-Bold")
    regular = regular if Path(regular).exists() else found
    bold = bold if Path(bold).exists() else found
    return regular, bold


@lru_cache(maxsize=64)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The Simplified Chinese face at ``size`` px (Pillow's default font when none is
    installed: posters still render, without Chinese)."""
    regular, heavy = font_paths()
    face = load_font(heavy if bold else regular, size)
    return face if face is not None else ImageFont.load_default(size)


def text_width(text: str, face) -> int:
    return int(face.getlength(text))


def ellipsize(text: str, face, max_width: int) -> str:
    """``text`` cut to fit ``max_width`` with a trailing … when it had to be cut."""
    text = clean_text(text)
    if text_width(text, face) <= max_width:
        return text
    while text and text_width(text + "…", face) > max_width:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap(text: str, face, max_width: int, max_lines: int) -> list[str]:
    """Break ``text`` into at most ``max_lines`` lines of ``max_width``; the last line ends
    with … when the text does not fit. Chinese breaks between any two characters; a Latin
    word is kept whole when it fits on a line of its own."""
    text = clean_text(text)
    lines: list[str] = []
    rest = text
    while rest and len(lines) < max_lines:
        if len(lines) == max_lines - 1:
            lines.append(ellipsize(rest, face, max_width))
            break
        cut = _fit_count(rest, face, max_width)
        if cut < len(rest):
            cut = _word_boundary(rest, cut)
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return lines


def _fit_count(text: str, face, max_width: int) -> int:
    """How many leading characters of ``text`` fit in ``max_width`` (at least one)."""
    low, high = 1, len(text)
    while low < high:  # binary search: getlength is the slow part
        mid = (low + high + 1) // 2
        if text_width(text[:mid], face) <= max_width:
            low = mid
        else:
            high = mid - 1
    return low


def _word_boundary(text: str, cut: int) -> int:
    """Move a cut that falls inside a Latin word back to the word's start, if it has one."""
    if not (text[cut - 1].isascii() and text[cut - 1].isalnum() and text[cut].isascii()):
        return cut
    start = cut
    while start > 0 and text[start - 1].isascii() and text[start - 1].isalnum():
        start -= 1
    return start if start > 0 else cut


@dataclass(frozen=True)
class TextRun:
    """Where a line of text was drawn: what tests compare against the font's own rendering."""

    text: str
    xy: tuple[int, int]
    size: int
    bold: bool
    fill: Colour
    box: Box
    anchor: str = "la"


def draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[int, int],
    text: str,
    size: int,
    fill: Colour,
    *,
    bold: bool = False,
    anchor: str = "la",
) -> TextRun:
    """Draw one line and return where it went (its ink box)."""
    face = font(size, bold)
    draw.text(xy, text, font=face, fill=fill, anchor=anchor)
    box = draw.textbbox(xy, text, font=face, anchor=anchor) if text else (*xy, *xy)
    box = tuple(int(v) for v in box)
    return TextRun(text, xy, size, bold, fill, box, anchor)  # type: ignore[arg-type]


# --- pictures -----------------------------------------------------------------------------


@lru_cache(maxsize=32)
def round_mask(width: int, height: int, radius: int) -> Image.Image:
    """An anti-aliased rounded-rectangle mask (a circle when radius is half the side)."""
    big = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    ImageDraw.Draw(big).rounded_rectangle(
        (0, 0, big.width - 1, big.height - 1), radius=radius * SUPERSAMPLE, fill=255
    )
    return big.resize((width, height), Image.Resampling.LANCZOS)


def paste_rounded(canvas: Image.Image, picture: Image.Image, xy: tuple[int, int], radius: int):
    """Paste ``picture`` with rounded corners (``radius`` px) at ``xy``."""
    mask = round_mask(picture.width, picture.height, radius)
    canvas.paste(picture.convert("RGB"), xy, mask)


def rounded_box(canvas: Image.Image, box: Box, radius: int, fill: Colour, alpha: int = 255):
    """A filled rounded rectangle with smooth corners, optionally translucent."""
    width, height = box[2] - box[0], box[3] - box[1]
    mask = round_mask(width, height, radius)
    if alpha < 255:
        mask = mask.point(lambda v: v * alpha // 255)
    canvas.paste(Image.new("RGB", (width, height), fill), box[:2], mask)


def cover(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``picture`` scaled and centre-cropped to fill ``size`` exactly."""
    if picture.mode not in ("RGB", "L"):
        background = Image.new("RGB", picture.size, (255, 255, 255))
        background.paste(picture.convert("RGBA"), mask=picture.convert("RGBA").split()[-1])
        picture = background
    return ImageOps.fit(picture.convert("RGB"), size, Image.Resampling.LANCZOS)


def open_picture(path: Path, size: tuple[int, int]) -> Image.Image | None:
    """A picture file decoded near ``size`` (JPEG draft mode skips most of a big decode),
    or None when it is missing or unreadable."""
    try:
        with Image.open(path) as picture:
            if picture.format == "JPEG":
                picture.draft("RGB", size)
            picture.load()
            return cover(picture, size)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def avatar_placeholder(name: str, side: int, colour: Colour) -> Image.Image:
    """A square with the first character of ``name`` (or 微) on ``colour``."""
    initial = clean_text(name)[:1] or "微"
    picture = Image.new("RGB", (side, side), colour)
    ink = (255, 255, 255) if luminance(colour) < 0.6 else (51, 51, 51)
    ImageDraw.Draw(picture).text(
        (side // 2, side // 2), initial, font=font(side * 9 // 20, True), fill=ink, anchor="mm"
    )
    return picture


def picture_placeholder(title: str, size: tuple[int, int], colour: Colour) -> Image.Image:
    """A soft tinted panel with the product's first characters, for a missing image."""
    pale = mix(colour, (255, 255, 255), 0.85)
    picture = Image.new("RGB", size, pale)
    draw = ImageDraw.Draw(picture)
    cx, cy = size[0] // 2, size[1] // 2
    r = min(size) // 4
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=mix(colour, pale, 0.55))
    words = clean_text(title)[:4] or "好物"
    draw.text((cx, cy), words, font=font(min(size) // 9, True), fill=(255, 255, 255), anchor="mm")
    return picture


def circle_avatar(
    canvas: Image.Image, avatar: Image.Image, centre: tuple[int, int], side: int, ring: int = 0
):
    """Paste ``avatar`` as a circle of diameter ``side`` centred at ``centre``, with a
    white ring ``ring`` px wide around it."""
    cx, cy = centre
    if ring:
        outer = side + 2 * ring
        rounded_box(
            canvas,
            (cx - outer // 2, cy - outer // 2, cx - outer // 2 + outer, cy - outer // 2 + outer),
            outer // 2,
            (255, 255, 255),
        )
    face = cover(avatar, (side, side))
    paste_rounded(canvas, face, (cx - side // 2, cy - side // 2), side // 2)


# --- QR codes -----------------------------------------------------------------------------


@lru_cache(maxsize=256)
def qr_modules(content: str) -> tuple[tuple[bool, ...], ...]:
    """The QR matrix of ``content`` with its quiet zone, at error correction M (15 %)."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QR_BORDER)
    code.add_data(content)
    code.make(fit=True)
    return tuple(tuple(row) for row in code.get_matrix())


def qr_image(content: str, max_side: int, dark: Colour = (0, 0, 0)) -> Image.Image:
    """A crisp QR code no larger than ``max_side`` px: a whole number of pixels per module
    (scaled with NEAREST, so edges stay sharp), quiet zone included, on white."""
    matrix = qr_modules(content)
    count = len(matrix)
    scale = max(1, max_side // count)
    small = Image.new("1", (count, count), 1)
    small.putdata([0 if cell else 1 for row in matrix for cell in row])
    big = small.resize((count * scale, count * scale), Image.Resampling.NEAREST)
    if dark == (0, 0, 0):
        return big.convert("RGB")
    return Image.composite(
        Image.new("RGB", big.size, (255, 255, 255)), Image.new("RGB", big.size, dark), big
    )


def paste_qr(canvas: Image.Image, content: str, box: Box, dark: Colour = (0, 0, 0)) -> Box:
    """Draw the QR of ``content`` centred in ``box`` (which is white behind it)."""
    side = min(box[2] - box[0], box[3] - box[1])
    code = qr_image(content, side, dark)
    x = box[0] + (box[2] - box[0] - code.width) // 2
    y = box[1] + (box[3] - box[1] - code.height) // 2
    canvas.paste(code, (x, y))
    return x, y, x + code.width, y + code.height
