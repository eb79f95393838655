"""Product descriptions as rich text: images and text, sanitised with nh3 (Ammonia).

Staff write the description in a small editor that produces HTML. Whatever arrives (the
editor, a hand-made POST, the Open API) is cleaned on save by ``sanitize``: only the tags
and attributes below survive; scripts, event handlers (``onerror=``) and ``javascript:``
links do not, and an image's ``src`` must be one of the shop's own uploads (``/media/...``),
so a description cannot load anything from elsewhere (the pages' CSP agrees).

Plain text (older rows, the Open API) is cleaned the same way, which escapes its ``<`` and
``&``; ``to_html`` shows text without tags one paragraph per line. Rendering cleans again
(cheap, and the page is cached), so a row written before this rule, or by raw SQL, still
cannot carry a script.
"""

from __future__ import annotations

import re

import nh3
from markupsafe import Markup

TAGS = {"p", "br", "b", "strong", "i", "em", "u", "h3", "h4", "ul", "ol", "li", "img", "blockquote"}
ATTRIBUTES = {"img": {"src", "alt", "width", "height"}}
MEDIA_PREFIX = "/media/"
# A stored file name (app/admin/images.py): p + 32 hex + extension.
MEDIA_SRC = re.compile(r"^/media/[A-Za-z0-9_-]{1,100}\.(?:jpg|png|webp)$")
DIMENSION = re.compile(r"^\d{1,4}$")
HAS_TAG = re.compile(r"</?(?:p|br|b|strong|i|em|u|h3|h4|ul|ol|li|img|blockquote)\b[^<>]*>", re.I)
MAX_LENGTH = 20_000


def _attribute_filter(tag: str, name: str, value: str) -> str | None:
    if tag == "img" and name == "src":
        return value if MEDIA_SRC.match(value) else None
    if tag == "img" and name in ("width", "height"):
        return value if DIMENSION.match(value) else None
    return value


def sanitize(html: str | None) -> str:
    """The description cleaned: allowed tags only, no scripts, handlers or foreign URLs."""
    cleaned = nh3.clean(
        html or "",
        tags=TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes=set(),  # relative /media/ paths only: no http, data or javascript
        link_rel=None,
        strip_comments=True,
    )
    # An <img> whose src was refused is an empty box: drop it.
    return re.sub(r"<img(?![^>]*\ssrc=)[^>]*>", "", cleaned).strip()


def is_rich(text: str | None) -> bool:
    """Whether ``text`` is editor HTML (has one of the allowed tags) rather than plain text."""
    return bool(HAS_TAG.search(text or ""))


def to_html(text: str | None) -> Markup:
    """Safe HTML for the product page: editor HTML cleaned again, plain text with its lines."""
    text = text or ""
    if is_rich(text):
        return Markup(sanitize(text))  # noqa: S704 -- nh3 output, the allow-list above
    # Saved plain text is already escaped by ``sanitize``; cleaning each line again keeps
    # that (nh3 is idempotent) and escapes a legacy row's raw ``<``.
    lines = [sanitize(line) for line in text.splitlines()]
    return Markup("").join(Markup(f"<p>{line}</p>") for line in lines if line)  # noqa: S704


def image_sources(html: str | None) -> list[str]:
    """The ``/media/`` files a description shows (to keep them when cleaning up)."""
    return re.findall(r'<img[^>]*\ssrc="(/media/[^"]+)"', html or "")
