"""Poster layouts: where each element of a shop or product poster goes on 750 x 1334.

A layout is a pair of drawing functions (shop, product) registered under a key that the
merchant's PosterTemplate stores. Each function draws on a ``Ctx``: the canvas, the
template's style and the poster's content. Named text runs are recorded on the context
(``ctx.runs``) so tests can compare the drawn glyphs with the font's own rendering.

Every text is fitted to its box: single lines are cut with …, product titles wrap on two
lines at most, so no title or nickname can overflow into the QR code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from app.core.money import format_yuan
from app.posters import drawing as d
from app.posters.drawing import Colour, TextRun

WIDTH, HEIGHT = 750, 1334
DARK: Colour = (34, 34, 34)
GREY: Colour = (140, 140, 140)
LIGHT: Colour = (232, 232, 232)
WHITE: Colour = (255, 255, 255)
RED: Colour = (228, 57, 60)
SOFTEN_RADIUS = 2.5


@dataclass(frozen=True)
class PosterStyle:
    """The merchant's design: a layout key, colours, background picture and slogan."""

    layout: str = "classic"
    background_color: str = "#E4393C"
    accent_color: str = "#FFFFFF"
    background_image: Path | Image.Image | None = None  # a picture: unsaved admin preview
    slogan: str = ""


@dataclass
class PosterContent:
    """What one poster says. ``avatar`` is already fetched (None: placeholder)."""

    kind: str  # shop or product
    shop_name: str
    nickname: str
    qr_content: str
    avatar: Image.Image | None = None
    title: str = ""
    price_fen: int = 0
    original_price_fen: int | None = None
    price_from: bool = False  # several prices: "¥39.00 起"
    picture_path: Path | None = None
    wxacode: Image.Image | None = None  # the mini-program code, when configured


@dataclass
class Ctx:
    """One poster being drawn."""

    image: Image.Image
    style: PosterStyle
    content: PosterContent
    runs: dict[str, TextRun] = field(default_factory=dict)
    soften: bool = False  # blur pictures: the second try when a busy photo is over budget

    def __post_init__(self):
        self.draw = ImageDraw.Draw(self.image)
        self.bg = d.hex_colour(self.style.background_color, RED)
        self.accent = d.hex_colour(self.style.accent_color, WHITE)
        self.soft_accent = d.mix(self.accent, self.bg, 0.25)
        # Prices on white: the theme colour when it reads well there, else the shop red.
        self.price = self.bg if d.luminance(self.bg) < 0.4 else RED

    def text(self, name: str, xy, text: str, size: int, fill, *, bold=False, anchor="la"):
        run = d.draw_text(self.draw, xy, text, size, fill, bold=bold, anchor=anchor)
        self.runs[name] = run
        return run

    def line(self, name: str, xy, text: str, size: int, fill, width: int, **kw) -> TextRun:
        """One line cut with … to ``width`` px."""
        return self.text(
            name,
            xy,
            d.ellipsize(text, d.font(size, kw.get("bold", False)), width),
            size,
            fill,
            **kw,
        )

    def lines(self, name, xy, text, size, fill, width, max_lines, height, **kw) -> int:
        """Wrapped text, at most ``max_lines`` lines ``height`` px apart; returns the count."""
        wrapped = d.wrap(text, d.font(size, kw.get("bold", False)), width, max_lines)
        for i, row in enumerate(wrapped):
            self.text(
                f"{name}{i + 1}" if i else name, (xy[0], xy[1] + i * height), row, size, fill, **kw
            )
        return len(wrapped)

    def avatar(self, side: int) -> Image.Image:
        if self.content.avatar is not None:
            return self.content.avatar
        return d.avatar_placeholder(self.content.nickname, side, d.mix(self.bg, WHITE, 0.15))

    def picture(self, size: tuple[int, int]) -> Image.Image:
        path = self.content.picture_path
        picture = d.open_picture(path, size) if path is not None else None
        if picture is None:
            return d.picture_placeholder(self.content.title, size, self.bg)
        return self.softened(picture)

    def softened(self, picture: Image.Image) -> Image.Image:
        return picture.filter(ImageFilter.GaussianBlur(SOFTEN_RADIUS)) if self.soften else picture


# --- shared pieces --------------------------------------------------------------------------


def background(ctx: Ctx) -> None:
    """The template's colour, or its picture cover-fitted over the whole poster."""
    source = ctx.style.background_image
    if isinstance(source, Image.Image):
        picture = d.cover(source, (WIDTH, HEIGHT))
    else:
        picture = d.open_picture(source, (WIDTH, HEIGHT)) if source is not None else None
    if picture is not None:
        ctx.image.paste(ctx.softened(picture), (0, 0))
    else:
        ctx.image.paste(ctx.bg, (0, 0, WIDTH, HEIGHT))


def price_row(ctx: Ctx, x: int, baseline: int, colour, struck, big: int = 64, centre=False):
    """¥ + price (+ 起) and the original price struck through, on one baseline."""
    c = ctx.content
    amount = format_yuan(c.price_fen, symbol=False)
    parts = [("¥", big * 9 // 16, True, colour), (amount, big, True, colour)]
    if c.price_from:
        parts.append((" 起", big * 7 // 16, False, colour))
    original = ""
    if c.original_price_fen and c.original_price_fen > c.price_fen:
        original = format_yuan(c.original_price_fen)
    widths = [d.text_width(t, d.font(s, b)) for t, s, b, _ in parts]
    gap = 18
    total = sum(widths) + (gap + d.text_width(original, d.font(big * 7 // 16)) if original else 0)
    cursor = x - total // 2 if centre else x
    for (text, size, bold, fill), width in zip(parts, widths, strict=True):
        name = "price" if text == amount else f"price_{text.strip()}"
        ctx.text(name, (cursor, baseline), text, size, fill, bold=bold, anchor="ls")
        cursor += width
    if original:
        run = ctx.text(
            "original", (cursor + gap, baseline), original, big * 7 // 16, struck, anchor="ls"
        )
        left, top, right, bottom = run.box
        middle = (top + bottom) // 2 + 1
        ctx.draw.line((left - 2, middle, right + 2, middle), fill=struck, width=2)


def dashed(ctx: Ctx, y: int, x0: int, x1: int, colour=LIGHT) -> None:
    for x in range(x0, x1, 16):
        ctx.draw.line((x, y, min(x + 8, x1), y), fill=colour, width=2)


def qr_tile(ctx: Ctx, box, radius: int = 20, pad: int = 10) -> None:
    """A white rounded tile with the QR code inside (quiet zone included)."""
    d.rounded_box(ctx.image, box, radius, WHITE)
    inner = (box[0] + pad, box[1] + pad, box[2] - pad, box[3] - pad)
    d.paste_qr(ctx.image, ctx.content.qr_content, inner)


def slogan(ctx: Ctx, fallback: str) -> str:
    return ctx.style.slogan.strip() or fallback


# --- classic: a white card on the theme colour ------------------------------------------------


def classic_product(ctx: Ctx) -> None:
    background(ctx)
    c = ctx.content
    d.circle_avatar(ctx.image, ctx.avatar(88), (92, 86), 88, ring=4)
    ctx.line("nickname", (156, 44), c.nickname, 32, ctx.accent, 520, bold=True)
    ctx.line("invite", (156, 92), "为你推荐一件好物", 24, ctx.soft_accent, 520)
    d.rounded_box(ctx.image, (36, 160, 714, 1298), 28, WHITE)
    d.paste_rounded(ctx.image, ctx.picture((630, 630)), (60, 184), 16)
    ctx.lines("title", (60, 840), c.title, 34, DARK, 630, 2, 50, bold=True)
    price_row(ctx, 60, 1002, ctx.price, GREY)
    dashed(ctx, 1040, 60, 690)
    qr_tile(ctx, (466, 1058, 694, 1286), radius=12, pad=4)
    ctx.text("hint", (60, 1104), "长按识别二维码", 32, DARK, bold=True)
    ctx.text("hint2", (60, 1156), "查看商品详情", 26, GREY)
    ctx.line("slogan", (60, 1210), slogan(ctx, c.shop_name), 24, ctx.price, 380)


def classic_shop(ctx: Ctx) -> None:
    background(ctx)
    c = ctx.content
    ctx.line("shop_name", (375, 84), c.shop_name, 46, ctx.accent, 660, bold=True, anchor="mm")
    ctx.line(
        "slogan",
        (375, 150),
        slogan(ctx, "好物推荐 · 品质生活"),
        28,
        ctx.soft_accent,
        660,
        anchor="mm",
    )
    d.rounded_box(ctx.image, (36, 300, 714, 1298), 28, WHITE)
    d.circle_avatar(ctx.image, ctx.avatar(160), (375, 300), 160, ring=8)
    ctx.line("nickname", (375, 440), c.nickname, 40, DARK, 600, bold=True, anchor="mm")
    ctx.text("invite", (375, 494), "邀请你一起逛逛好店", 28, GREY, anchor="mm")
    d.rounded_box(ctx.image, (145, 540, 605, 1000), 24, (246, 246, 246))
    qr_tile(ctx, (160, 555, 590, 985), radius=16, pad=6)
    ctx.text("hint", (375, 1060), "长按识别二维码", 34, DARK, bold=True, anchor="mm")
    ctx.text("hint2", (375, 1112), "关注公众号，进店选好物", 26, GREY, anchor="mm")
    dashed(ctx, 1170, 80, 670)
    ctx.text("footer", (375, 1232), "好友推荐 · 专属福利", 26, ctx.price, anchor="mm")


# --- immersive: the picture fills the top half ----------------------------------------------


def immersive_product(ctx: Ctx) -> None:
    background(ctx)
    c = ctx.content
    ctx.image.paste(ctx.picture((WIDTH, 750)), (0, 0))
    name = d.ellipsize(c.nickname, d.font(28, True), 300)
    chip_w = 130 + d.text_width(name, d.font(28, True)) + d.text_width(" 推荐", d.font(24))
    d.rounded_box(ctx.image, (28, 28, 28 + chip_w, 108), 40, (0, 0, 0), alpha=120)
    d.circle_avatar(ctx.image, ctx.avatar(64), (72, 68), 64, ring=2)
    run = ctx.text("nickname", (116, 68), name, 28, WHITE, bold=True, anchor="lm")
    ctx.text("invite", (run.box[2] + 6, 68), " 推荐", 24, WHITE, anchor="lm")
    ctx.lines("title", (40, 786), c.title, 40, ctx.accent, 670, 2, 58, bold=True)
    price_row(ctx, 40, 990, ctx.accent, ctx.soft_accent, big=76)
    qr_tile(ctx, (466, 1046, 710, 1290), radius=20, pad=8)
    ctx.text("hint", (40, 1110), "长按识别二维码", 32, ctx.accent, bold=True)
    ctx.text("hint2", (40, 1162), "立即查看 · 马上抢购", 26, ctx.soft_accent)
    ctx.line("slogan", (40, 1214), slogan(ctx, c.shop_name), 24, ctx.soft_accent, 400)


def immersive_shop(ctx: Ctx) -> None:
    background(ctx)
    c = ctx.content
    for cx, cy, r, alpha in ((650, 110, 230, 34), (70, 600, 150, 26)):
        d.rounded_box(ctx.image, (cx - r, cy - r, cx + r, cy + r), r, ctx.accent, alpha=alpha)
    ctx.line("shop_name", (375, 150), c.shop_name, 64, ctx.accent, 660, bold=True, anchor="mm")
    ctx.lines(
        "slogan",
        (375, 214),
        slogan(ctx, "好物推荐 · 品质生活"),
        30,
        ctx.soft_accent,
        640,
        2,
        44,
        anchor="ma",
    )
    d.circle_avatar(ctx.image, ctx.avatar(150), (375, 400), 150, ring=6)
    ctx.line("nickname", (375, 530), c.nickname, 38, ctx.accent, 600, bold=True, anchor="mm")
    ctx.text("invite", (375, 582), "诚邀你关注好店", 26, ctx.soft_accent, anchor="mm")
    d.rounded_box(ctx.image, (0, 650, WIDTH, HEIGHT + 60), 48, WHITE)
    qr_tile(ctx, (160, 705, 590, 1135), radius=16, pad=6)
    ctx.text("hint", (375, 1195), "长按识别二维码 关注进店", 32, DARK, bold=True, anchor="mm")
    ctx.text("hint2", (375, 1248), "扫码关注公众号，好物优惠不错过", 24, GREY, anchor="mm")


# --- minimal: centred, framed picture, white strip at the bottom ------------------------------


def minimal_product(ctx: Ctx) -> None:
    background(ctx)
    c = ctx.content
    run = ctx.line("shop_name", (375, 66), c.shop_name, 30, ctx.accent, 500, bold=True, anchor="mm")
    for x0, x1 in ((run.box[0] - 90, run.box[0] - 24), (run.box[2] + 24, run.box[2] + 90)):
        ctx.draw.line((x0, 67, x1, 67), fill=ctx.soft_accent, width=2)
    d.rounded_box(ctx.image, (83, 112, 667, 696), 30, WHITE)
    d.paste_rounded(ctx.image, ctx.picture((560, 560)), (95, 124), 22)
    ctx.lines("title", (375, 730), c.title, 36, ctx.accent, 620, 2, 52, bold=True, anchor="ma")
    price_row(ctx, 375, 900, ctx.accent, ctx.soft_accent, big=68, centre=True)
    d.rounded_box(ctx.image, (30, 966, 720, 1304), 28, WHITE)
    d.circle_avatar(ctx.image, ctx.avatar(88), (106, 1046), 88)
    ctx.line("nickname", (168, 1012), c.nickname, 30, DARK, 250, bold=True)
    ctx.text("invite", (168, 1056), "向你推荐了这件好物", 24, GREY)
    dashed(ctx, 1118, 62, 410)
    ctx.text("hint", (62, 1150), "长按识别二维码", 30, DARK, bold=True)
    ctx.text("hint2", (62, 1198), "查看详情 · 立即购买", 24, GREY)
    ctx.line("slogan", (62, 1242), slogan(ctx, "好物推荐 · 品质生活"), 22, ctx.price, 350)
    d.paste_qr(ctx.image, c.qr_content, (440, 996, 700, 1274))


def minimal_shop(ctx: Ctx) -> None:
    background(ctx)
    c = ctx.content
    d.circle_avatar(ctx.image, ctx.avatar(140), (375, 140), 140, ring=6)
    ctx.line("nickname", (375, 268), c.nickname, 40, ctx.accent, 600, bold=True, anchor="mm")
    ctx.text("invite", (375, 318), "邀请你逛逛", 26, ctx.soft_accent, anchor="mm")
    ctx.line("shop_name", (375, 410), c.shop_name, 56, ctx.accent, 660, bold=True, anchor="mm")
    ctx.lines(
        "slogan",
        (375, 460),
        slogan(ctx, "好物推荐 · 品质生活"),
        28,
        ctx.soft_accent,
        620,
        2,
        42,
        anchor="ma",
    )
    d.rounded_box(ctx.image, (135, 580, 615, 1150), 32, WHITE)
    d.paste_qr(ctx.image, c.qr_content, (165, 608, 585, 1028))
    ctx.text("hint", (375, 1090), "长按识别二维码", 30, DARK, bold=True, anchor="mm")
    ctx.text("footer", (375, 1232), "关注公众号 · 进店有惊喜", 26, ctx.accent, anchor="mm")


@dataclass(frozen=True)
class Layout:
    """A registered layout: its key (stored on PosterTemplate), label and drawers."""

    key: str
    label: str
    description: str
    shop: Callable[[Ctx], None]
    product: Callable[[Ctx], None]


LAYOUTS: dict[str, Layout] = {
    layout.key: layout
    for layout in (
        Layout(
            "classic",
            "经典卡片",
            "主题色背景上放一张白色卡片，信息清晰",
            classic_shop,
            classic_product,
        ),
        Layout(
            "immersive",
            "大图沉浸",
            "商品大图铺满上半部分，文字在主题色上",
            immersive_shop,
            immersive_product,
        ),
        Layout("minimal", "简约居中", "居中排版，底部白色信息条", minimal_shop, minimal_product),
    )
}
DEFAULT_LAYOUT = "classic"


def draw_poster(style: PosterStyle, content: PosterContent, soften: bool = False) -> Ctx:
    """Draw the poster on a new 750 x 1334 canvas and return the context (image, runs).

    ``soften`` blurs the background and product pictures (text and QR stay sharp).
    """
    layout = LAYOUTS.get(style.layout) or LAYOUTS[DEFAULT_LAYOUT]
    ctx = Ctx(Image.new("RGB", (WIDTH, HEIGHT), WHITE), style, content, soften=soften)
    (layout.product if content.kind == "product" else layout.shop)(ctx)
    if content.wxacode is not None:
        wxacode_badge(ctx)
    return ctx


WXACODE_SIDE = 132


def wxacode_badge(ctx: Ctx) -> None:
    """The mini-program code in the top right corner, on a white tile, with its caption
    (every layout leaves that corner to the background or the avatar row's end)."""
    side, pad = WXACODE_SIDE, 8
    x1, y0 = WIDTH - 24, 24
    box = (x1 - side - 2 * pad, y0, x1, y0 + side + 2 * pad + 26)
    d.rounded_box(ctx.image, box, 16, WHITE)
    code = ctx.content.wxacode.resize((side, side), Image.LANCZOS)
    ctx.image.paste(code, (box[0] + pad, y0 + pad))
    ctx.line(
        "wxacode", (box[0] + pad, y0 + pad + side + 2), "小程序扫码", 20, (102, 102, 102), side
    )
