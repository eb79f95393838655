"""Posters as the rest of the app sees them: templates the merchant edits, and the poster of
one distributor (shop) or of one distributor and product, rendered once and then cached.

``plan_poster`` gathers what a poster shows (a few queries, no rendering) and its cache
key; ``poster_bytes`` serves it from the cache or renders and stores it. Both flush only
(``qrcode_for`` may store a fresh WeChat QR ticket): the caller commits at its edge.
Nothing here knows about requests.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

import requests
from flask import current_app
from sqlalchemy import select, update
from wechatpy.exceptions import WeChatClientException

from app.accounts.models import User
from app.catalog.models import Product
from app.core.branding import shop_name
from app.distribution.centre import product_share_url, share_url
from app.distribution.distributors import distributor_for_user
from app.distribution.models import Distributor
from app.extensions import db
from app.posters import cache
from app.posters.avatars import fetch_avatar
from app.posters.models import POSTER_KINDS, PosterTemplate
from app.posters.render import (
    LAYOUTS,
    PosterContent,
    PosterStyle,
    render_poster,
    sample_content,
)
from app.posters.wxacode import poster_wxacode
from app.shop.queries import get_product, price_summary
from app.wechat.qrcodes import QrcodeError, qrcode_for

log = logging.getLogger(__name__)

# Bump when a layout's drawing changes: every cached poster is then made again.
RENDERER_VERSION = 1
KIND_LABELS = {"shop": "店铺海报", "product": "商品海报"}
_COLOUR = re.compile(r"^#[0-9A-Fa-f]{6}$")
MAX_NAME = 32
MAX_SLOGAN = 64


class PosterError(Exception):
    """A poster that cannot be made for this request: ``status`` and a Chinese message."""

    def __init__(self, code: str, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field


# --- templates ---------------------------------------------------------------------------


def active_template(kind: str) -> PosterTemplate | None:
    """The merchant's active template of ``kind``, or None (the built-in design is used)."""
    return db.session.scalar(
        select(PosterTemplate)
        .where(PosterTemplate.kind == kind, PosterTemplate.active.is_(True))
        .order_by(PosterTemplate.id)
        .limit(1)
    )


def upload_path(filename: str | None) -> Path | None:
    """Where a stored background picture lives (None when there is none)."""
    if not filename:
        return None
    return Path(current_app.config["UPLOAD_DIR"]) / filename


def style_of(template: PosterTemplate | None) -> PosterStyle:
    """The drawing style of a template (the built-in one for None)."""
    if template is None:
        return PosterStyle()
    return PosterStyle(
        layout=template.layout,
        background_color=template.background_color,
        accent_color=template.accent_color,
        background_image=upload_path(template.background_image),
        slogan=template.slogan,
    )


@dataclass
class TemplateInput:
    """A template form, cleaned."""

    kind: str
    name: str
    layout: str
    background_color: str
    accent_color: str
    slogan: str


def clean_template(form: dict[str, str], kind: str | None = None) -> TemplateInput:
    """Check a template form; ``PosterError`` (422, with the field) when something is off.

    ``kind`` is fixed for an existing template (a form cannot turn a shop poster into a
    product poster and orphan the active one).
    """
    kind = kind or (form.get("kind") or "").strip()
    if kind not in POSTER_KINDS:
        raise PosterError("invalid_kind", "请选择海报类型", 422, "kind")
    name = (form.get("name") or "").strip()
    if not name or len(name) > MAX_NAME or "\x00" in name:
        raise PosterError("invalid_name", f"模板名称需为 1-{MAX_NAME} 个字", 422, "name")
    layout = (form.get("layout") or "").strip()
    if layout not in LAYOUTS:
        raise PosterError("invalid_layout", "请选择一个版式", 422, "layout")
    colours = {}
    for field, label in (("background_color", "背景色"), ("accent_color", "文字色")):
        value = (form.get(field) or "").strip()
        if not _COLOUR.match(value):
            raise PosterError("invalid_color", f"{label}需为 #RRGGBB 格式，如 #E4393C", 422, field)
        colours[field] = value.upper()
    slogan = " ".join((form.get("slogan") or "").split())
    if len(slogan) > MAX_SLOGAN or "\x00" in slogan:
        raise PosterError("invalid_slogan", f"宣传语最多 {MAX_SLOGAN} 个字", 422, "slogan")
    return TemplateInput(kind, name, layout, slogan=slogan, **colours)


def store_background(data: bytes, extension: str) -> str:
    """Write a checked background picture under UPLOAD_DIR; returns its file name."""
    folder = Path(current_app.config["UPLOAD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    filename = f"poster-bg-{secrets.token_hex(12)}{extension}"
    (folder / filename).write_bytes(data)
    return filename


def save_template(
    template: PosterTemplate | None,
    values: TemplateInput,
    background: str | None = None,
    remove_background: bool = False,
) -> tuple[PosterTemplate, str | None]:
    """Create or update a template; its version goes up so cached posters are made again.

    ``background`` is a file already written by ``store_background``. Returns the
    template and the replaced background file (delete it after the commit). Flushes.
    """
    old_file = None
    if template is None:
        template = PosterTemplate(kind=values.kind, version=1, active=False)
        db.session.add(template)
    else:
        template.version = (template.version or 1) + 1
    template.name = values.name
    template.layout = values.layout
    template.background_color = values.background_color
    template.accent_color = values.accent_color
    template.slogan = values.slogan
    if background is not None or remove_background:
        old_file = template.background_image
        template.background_image = background
    db.session.flush()
    return template, old_file


def activate_template(template: PosterTemplate) -> None:
    """Make ``template`` the one used for its kind (the others of that kind stop). Flushes."""
    db.session.execute(
        update(PosterTemplate)
        .where(PosterTemplate.kind == template.kind, PosterTemplate.id != template.id)
        .values(active=False)
    )
    template.active = True
    db.session.flush()


def base_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"]


def preview_poster(kind: str, style: PosterStyle) -> bytes:
    """A poster of ``kind`` in ``style`` with made-up content (admin preview)."""
    content = sample_content(kind, shop_name(), share_url(base_url(), "SAMPLE01"))
    return render_poster(style, content)


def template_preview(template: PosterTemplate) -> tuple[str, bytes]:
    """(ETag, bytes) of a saved template's sample poster, cached like real posters."""
    key = cache.poster_key(
        {
            "sample": True,
            "r": RENDERER_VERSION,
            "template": [template.id, template.version],
            "shop": shop_name(),
            "base": base_url(),
        }
    )
    data = cache.get(key)
    if data is None:
        data = preview_poster(template.kind, style_of(template))
        cache.put(key, data)
    return key, data


# --- one distributor's poster --------------------------------------------------------------


@dataclass
class PosterPlan:
    """Everything a poster shows, and its cache key, before any rendering."""

    key: str
    kind: str
    style: PosterStyle
    content: PosterContent
    avatar_url: str
    product_id: int | None = None
    qr_fallback: bool = False


def shop_qr(distributor: Distributor) -> tuple[str, str, bool]:
    """(QR content, ticket, fell back) for a shop poster: the distributor's parametric QR
    code, so scanning follows the account and binds; the share link when WeChat will not
    make one (the poster still binds, through the link)."""
    try:
        code = qrcode_for(distributor)
    # qrcode_for wraps WeChat's refusals; a refused connection reaches us as requests'.
    except (QrcodeError, WeChatClientException, requests.RequestException) as err:
        log.warning(
            "official account QR unavailable for distributor %s (%s): poster uses the share link",
            distributor.id,
            err,
        )
        code = None
    if code is None or not code.url:
        return share_url(base_url(), distributor.code), "", True
    return code.url, code.ticket, False


def poster_product(product_id: int | None) -> Product:
    """The on-shelf product a product poster is for, or ``PosterError`` 404/422."""
    if product_id is None:
        raise PosterError("product_required", "请选择要生成海报的商品", 422, "product_id")
    product = get_product(product_id)
    if product is None or not product.skus:
        raise PosterError("product_not_found", "商品不存在或已下架", 404, "product_id")
    return product


def plan_poster(distributor: Distributor, kind: str, product_id: int | None = None) -> PosterPlan:
    """Gather a poster's content and key. Flushes (a new QR ticket); the caller commits."""
    if kind not in POSTER_KINDS:
        raise PosterError("invalid_kind", "海报类型应为 shop 或 product", 422, "kind")
    if distributor.status != "active":
        raise PosterError("distributor_disabled", "你的分销员资格已停用，暂不能生成推广海报", 403)
    template = active_template(kind)
    style = style_of(template)
    user = db.session.get(User, distributor.user_id)
    nickname = user.display_name if user else ""
    avatar_url = (user.avatar_url if user else "") or ""
    parts: dict = {
        "r": RENDERER_VERSION,
        "template": [template.id, template.version] if template else None,
        "kind": kind,
        "distributor": distributor.id,
        "nickname": nickname,
        "avatar": avatar_url,
        "shop": shop_name(),
    }
    content = PosterContent(kind=kind, shop_name=parts["shop"], nickname=nickname, qr_content="")
    fallback = False
    if kind == "shop":
        qr, ticket, fallback = shop_qr(distributor)
        parts.update(qr=qr, ticket=ticket)
        content.qr_content = qr
    else:
        product = poster_product(product_id)
        prices = price_summary(product)
        cover = product.cover.filename if product.cover else None
        content = replace(
            content,
            qr_content=product_share_url(base_url(), distributor.code, product.id),
            title=product.title,
            price_fen=prices["price_fen"],
            original_price_fen=prices["original_fen"],
            price_from=prices["from"],
            picture_path=upload_path(cover),
        )
        parts.update(
            product=product.id,
            title=product.title,
            price=prices["price_fen"],
            original=prices["original_fen"],
            price_from=prices["from"],
            picture=cover,
            qr=content.qr_content,
        )
    # The mini-program code too, when the mini-program is configured (its key, not its
    # bytes, goes into the poster's key: the same code gives the same poster).
    wxacode_key, wxacode = poster_wxacode(distributor)
    if wxacode is not None:
        parts["wxacode"] = wxacode_key
        content = replace(content, wxacode=wxacode)
    return PosterPlan(
        key=cache.poster_key(parts),
        kind=kind,
        style=style,
        content=content,
        avatar_url=avatar_url,
        product_id=product_id if kind == "product" else None,
        qr_fallback=fallback,
    )


def render_plan(plan: PosterPlan) -> bytes:
    """Fetch the avatar (placeholder on any failure) and render the poster."""
    content = replace(plan.content, avatar=fetch_avatar(plan.avatar_url))
    return render_poster(plan.style, content)


def poster_bytes(plan: PosterPlan) -> bytes:
    """The poster from the cache, or rendered now and cached."""
    data = cache.get(plan.key)
    if data is None:
        data = render_plan(plan)
        cache.put(plan.key, data)
    return data


def poster_for_distributor(
    distributor: Distributor, kind: str, product_id: int | None = None
) -> tuple[str, bytes]:
    """(ETag, JPEG bytes) of a distributor's poster. Flushes; the caller commits."""
    plan = plan_poster(distributor, kind, product_id)
    return plan.key, poster_bytes(plan)


def fan_poster(openid: str) -> tuple[str, bytes] | None:
    """(ETag, bytes) of the shop poster of the fan with ``openid`` if they are an active
    distributor, else None. Flushes; the caller commits."""
    user = db.session.scalar(select(User).where(User.openid == openid))
    if user is None:
        return None
    distributor = distributor_for_user(user.id)
    if distributor is None or distributor.status != "active":
        return None
    return poster_for_distributor(distributor, "shop")


def poster_for_fan(openid: str) -> bytes | None:
    """The shop poster of the fan with ``openid`` if they are an active distributor,
    else None (the official account then replies with how to join).

    For the 海报 keyword and the POSTER menu click. Flushes; the caller commits.
    """
    found = fan_poster(openid)
    return found[1] if found is not None else None
