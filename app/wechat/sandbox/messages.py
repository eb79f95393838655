"""Messages the shop sends to fans, in the stand-in: menu, template and customer-service
messages, temporary media; and a log of everything sent.

WeChat paths (all need ``?access_token=`` of a live base token, else 41001/40001/42001):

- ``POST /cgi-bin/menu/create`` (and ``GET /cgi-bin/menu/get``): 1-3 buttons, each with
  1-5 sub-buttons or a type; names up to 16 bytes (sub-buttons 60), ``click`` keys up to
  128 bytes, ``view`` URLs up to 1024 bytes and http(s). WeChat's errcodes 40016-40019,
  40023, 40024-40027 for the rest.
- ``POST /cgi-bin/message/template/send``: ``touser`` (else 40003), ``template_id`` (else
  40037; an unknown id is 40037 too once templates are registered with the test switch,
  otherwise any non-empty id is accepted), ``data`` an object of ``{"value": ...}``
  (else 47001). ``client_msg_id`` (WeChat's anti-reentry id) makes a repeat with the same
  openid within 10 minutes answer the first msgid without sending again (WeChat documents
  the parameter; the exact answer to a repeat is unconfirmed).
- ``POST /cgi-bin/message/custom/send``: ``text`` and ``image`` (``media_id`` from
  media/upload, else 40007). WeChat's 48-hour / 3-messages-a-minute-after-follow window
  (45015 / 45047) is NOT enforced here: the stand-in does not know who interacted when.
- ``POST /cgi-bin/media/upload?type=image``: multipart ``media``, a JPEG/PNG/GIF/BMP up
  to 2 MB → ``{"type", "media_id", "created_at"}``; it lives 3 days (``GET
  /cgi-bin/media/get`` returns it until then, 40007 after).

Developer page ``/sandbox/messages``: what the shop sent, newest first (images shown).
Test switches: ``GET /_sandbox/messages`` (the log as JSON, and ``repeats``: how many
template sends were dropped as repeats of a ``client_msg_id``), ``POST /_sandbox/messages/clear``,
``GET/POST /_sandbox/messages/settings`` (``fail_errcode``: every send answers this errcode
while set, ``fail_times`` limits it to the next N sends; ``templates``: the registered
template ids, ``[]`` to accept any).
"""

from __future__ import annotations

import itertools
import secrets
import threading
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, jsonify, render_template, request

from app.wechat.sandbox.common import get_state, require_access_token, wx_error

bp = Blueprint("sandbox_messages", __name__)

MEDIA_TTL = 3 * 86400  # temporary media live 3 days
MAX_IMAGE_BYTES = 2 * 1024 * 1024
CLIENT_MSG_TTL = 600  # client_msg_id dedupes for 10 minutes
MAX_LOG = 500
IMAGE_MAGIC = {
    b"\xff\xd8\xff": "image/jpeg",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
    b"BM": "image/bmp",
}
ERRMSG = {
    40003: "invalid openid",
    40004: "invalid media type",
    40005: "invalid file type",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40037: "invalid template_id",
    40054: "invalid sub button url domain",
    40055: "invalid button url domain",
    41005: "media data missing",
    44002: "empty post data",
    44003: "empty news data",
    45001: "media size out of limit",
    47001: "data format error",
}
BUTTON_TYPES = {
    "click",
    "view",
    "miniprogram",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
    "media_id",
    "article_id",
    "article_view_limited",
}


def _error(errcode: int):
    return wx_error(errcode, ERRMSG.get(errcode))


@dataclass
class Media:
    media_id: str
    type: str
    mimetype: str
    data: bytes
    filename: str
    created_at: float


@dataclass
class Sent:
    """One thing the shop made WeChat deliver (or publish), for the log."""

    id: int
    at: float
    kind: str  # template, text, image, menu
    touser: str = ""
    template_id: str = ""
    url: str = ""
    data: dict = field(default_factory=dict)
    content: str = ""
    media_id: str = ""
    msgid: int = 0


class MessagesState:
    """The log, the uploaded media, the menu and the test switches, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[Sent] = []
        self.media: dict[str, Media] = {}
        self.menu: dict | None = None
        self.templates: set[str] = set()
        self.fail_errcode: int | None = None
        self.fail_times: int | None = None  # None = every send while fail_errcode is set
        self.client_ids: dict[tuple[str, str], tuple[int, float]] = {}
        self.repeats = 0  # template sends dropped as repeats of a client_msg_id
        self._ids = itertools.count(1)
        self._msgids = itertools.count(2_000_000_001)

    def forced_failure(self) -> int | None:
        """The errcode the next send must answer (test switch), counting it down."""
        with self.lock:
            if self.fail_errcode is None:
                return None
            code = self.fail_errcode
            if self.fail_times is not None:
                self.fail_times -= 1
                if self.fail_times <= 0:
                    self.fail_errcode, self.fail_times = None, None
            return code

    def record(self, kind: str, **values) -> Sent:
        with self.lock:
            sent = Sent(id=next(self._ids), at=get_state().now(), kind=kind, **values)
            if kind != "menu":
                sent.msgid = next(self._msgids)
            self.log.append(sent)
            del self.log[:-MAX_LOG]
            return sent


def get_messages_state() -> MessagesState:
    return current_app.extensions["wechat_sandbox_messages"]


def init_messages(app: Flask) -> None:
    """Attach the messages state and blueprint to the stand-in ``app``."""
    app.extensions["wechat_sandbox_messages"] = MessagesState()
    app.register_blueprint(bp)


def _json_body():
    """(body, None) for a JSON object body, else (None, WeChat's error)."""
    if not request.data:
        return None, _error(44002)
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        return None, _error(47001)
    return body, None


def _valid_openid(value) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= 64
        and all(ch.isalnum() or ch in "-_" for ch in value)
    )


def _http_url(value) -> bool:
    if not isinstance(value, str) or len(value.encode()) > 1024:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# --- menu ---------------------------------------------------------------------------------


def _menu_problem(body: dict) -> int | None:
    buttons = body.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return 40016
    for button in buttons:
        if not isinstance(button, dict):
            return 40017
        name = button.get("name")
        if not isinstance(name, str) or not 0 < len(name.encode()) <= 16:
            return 40018
        subs = button.get("sub_button")
        if subs:
            if not isinstance(subs, list) or len(subs) > 5:
                return 40023
            for sub in subs:
                problem = _action_problem(sub, sub_level=True)
                if problem:
                    return problem
            continue
        problem = _action_problem(button, sub_level=False)
        if problem:
            return problem
    return None


def _action_problem(button, sub_level: bool) -> int | None:
    """Checks of a button that does something (its type, key or url)."""
    if not isinstance(button, dict):
        return 40024 if sub_level else 40017
    name = button.get("name")
    if not isinstance(name, str) or not 0 < len(name.encode()) <= (60 if sub_level else 16):
        return 40025 if sub_level else 40018
    kind = button.get("type")
    if kind not in BUTTON_TYPES:
        return 40024 if sub_level else 40017
    if kind == "view" and not _http_url(button.get("url")):
        return 40054 if sub_level else 40055
    if kind not in ("view", "miniprogram", "media_id", "article_id", "article_view_limited"):
        key = button.get("key")
        if not isinstance(key, str) or not 0 < len(key.encode()) <= 128:
            return 40026 if sub_level else 40019
    return None


@bp.post("/cgi-bin/menu/create")
def menu_create():
    """Publish the custom menu (replaces the previous one)."""
    error = require_access_token()
    if error:
        return error
    body, error = _json_body()
    if error:
        return error
    problem = _menu_problem(body)
    if problem:
        return _error(problem)
    messages = get_messages_state()
    with messages.lock:
        messages.menu = {"button": body["button"]}
    messages.record("menu", data={"button": body["button"]})
    return jsonify(errcode=0, errmsg="ok")


@bp.get("/cgi-bin/menu/get")
def menu_get():
    """The published menu (46003 "menu no exist" before any)."""
    error = require_access_token()
    if error:
        return error
    menu = get_messages_state().menu
    if menu is None:
        return wx_error(46003, "menu no exist")
    return jsonify(menu=menu)


# --- template messages --------------------------------------------------------------------


@bp.post("/cgi-bin/message/template/send")
def template_send():
    """Send a template message to one fan."""
    error = require_access_token()
    if error:
        return error
    body, error = _json_body()
    if error:
        return error
    messages = get_messages_state()
    touser = body.get("touser")
    template_id = body.get("template_id")
    data = body.get("data")
    if not _valid_openid(touser):
        return _error(40003)
    if not isinstance(template_id, str) or not template_id.strip():
        return _error(40037)
    with messages.lock:
        known = set(messages.templates)
    if known and template_id not in known:
        return _error(40037)
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("value"), str | int | float) for v in data.values()
    ):
        return _error(47001)
    url = body.get("url") or ""
    if url and not _http_url(url):
        return _error(47001)
    forced = messages.forced_failure()
    if forced is not None:
        return wx_error(forced)
    client_id = body.get("client_msg_id")
    now = get_state().now()
    if isinstance(client_id, str) and client_id:
        with messages.lock:
            seen = messages.client_ids.get((touser, client_id))
            if seen and now - seen[1] < CLIENT_MSG_TTL:
                messages.repeats += 1
                return jsonify(errcode=0, errmsg="ok", msgid=seen[0])
    sent = messages.record(
        "template",
        touser=touser,
        template_id=template_id,
        url=url,
        data={k: v.get("value") for k, v in data.items()},
    )
    if isinstance(client_id, str) and client_id:
        with messages.lock:
            messages.client_ids[(touser, client_id)] = (sent.msgid, now)
    return jsonify(errcode=0, errmsg="ok", msgid=sent.msgid)


# --- customer-service messages ------------------------------------------------------------


@bp.post("/cgi-bin/message/custom/send")
def custom_send():
    """Send a text or image customer-service message (the 48 h window is not enforced)."""
    error = require_access_token()
    if error:
        return error
    body, error = _json_body()
    if error:
        return error
    messages = get_messages_state()
    touser = body.get("touser")
    if not _valid_openid(touser):
        return _error(40003)
    kind = body.get("msgtype")
    if kind == "text":
        text = body.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content:
            return _error(44003)
        values = {"content": content}
    elif kind == "image":
        image = body.get("image")
        media_id = image.get("media_id") if isinstance(image, dict) else None
        if not isinstance(media_id, str) or _live_media(media_id) is None:
            return _error(40007)
        values = {"media_id": media_id}
    else:
        return _error(40008)
    forced = messages.forced_failure()
    if forced is not None:
        return wx_error(forced)
    messages.record(kind, touser=touser, **values)
    return jsonify(errcode=0, errmsg="ok")


# --- temporary media ----------------------------------------------------------------------


def _live_media(media_id: str) -> Media | None:
    messages = get_messages_state()
    with messages.lock:
        media = messages.media.get(media_id)
    if media is None or get_state().now() - media.created_at >= MEDIA_TTL:
        return None
    return media


@bp.post("/cgi-bin/media/upload")
def media_upload():
    """Upload a temporary image (multipart ``media``); it lives 3 days."""
    error = require_access_token()
    if error:
        return error
    kind = request.args.get("type")
    if kind not in ("image", "thumb"):
        return _error(40004)
    upload = request.files.get("media")
    if upload is None:
        return _error(41005)
    data = upload.read(MAX_IMAGE_BYTES + 1)
    if not data:
        return _error(41005)
    if len(data) > MAX_IMAGE_BYTES:
        return _error(40009)
    mimetype = next((m for magic, m in IMAGE_MAGIC.items() if data.startswith(magic)), None)
    if mimetype is None:
        return _error(40005)
    media = Media(
        media_id=secrets.token_urlsafe(48)[:64],
        type=kind,
        mimetype=mimetype,
        data=data,
        filename=(upload.filename or "")[:128],
        created_at=get_state().now(),
    )
    messages = get_messages_state()
    with messages.lock:
        messages.media[media.media_id] = media
    return jsonify(type=kind, media_id=media.media_id, created_at=int(media.created_at))


@bp.get("/cgi-bin/media/get")
def media_get():
    """Download a temporary media file while it lives."""
    error = require_access_token()
    if error:
        return error
    media = _live_media(request.args.get("media_id") or "")
    if media is None:
        return _error(40007)
    return current_app.response_class(media.data, mimetype=media.mimetype)


@bp.get("/_sandbox/media/<media_id>")
def media_view(media_id: str):
    """An uploaded image for the log page (no token: a developer's browser shows it)."""
    messages = get_messages_state()
    with messages.lock:
        media = messages.media.get(media_id)
    if media is None:
        abort(404)
    return current_app.response_class(media.data, mimetype=media.mimetype)


# --- the log and the test switches --------------------------------------------------------


def _log_rows() -> list[dict]:
    messages = get_messages_state()
    with messages.lock:
        return [asdict(sent) for sent in reversed(messages.log)]


@bp.get("/sandbox/messages")
def log_page():
    """What the shop sent, newest first."""
    state = get_state()
    nicknames = {fan.openid: fan.nickname for fan in state.list_fans()}
    return render_template(
        "sandbox/messages.html",
        rows=_log_rows(),
        nicknames=nicknames,
        menu=get_messages_state().menu,
    )


@bp.get("/_sandbox/messages")
def log_json():
    """The log as JSON, newest first (tests)."""
    return jsonify(messages=_log_rows(), repeats=get_messages_state().repeats)


@bp.post("/_sandbox/messages/clear")
def log_clear():
    """Forget the log (tests)."""
    messages = get_messages_state()
    with messages.lock:
        messages.log.clear()
        messages.client_ids.clear()
        messages.repeats = 0
    return jsonify(ok=True)


@bp.route("/_sandbox/messages/settings", methods=["GET", "POST"])
def settings():
    """Read or change the test switches: ``fail_errcode``, ``fail_times``, ``templates``."""
    messages = get_messages_state()
    if request.method == "POST":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="JSON object expected"), 400
        with messages.lock:
            if "fail_errcode" in body:
                code = body["fail_errcode"]
                if code is not None and not isinstance(code, int):
                    return jsonify(error="fail_errcode must be an integer or null"), 400
                messages.fail_errcode = code
                messages.fail_times = None
            if "fail_times" in body:
                times = body["fail_times"]
                if times is not None and (not isinstance(times, int) or times < 1):
                    return jsonify(error="fail_times must be a positive integer or null"), 400
                messages.fail_times = times
            if "templates" in body:
                ids = body["templates"]
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    return jsonify(error="templates must be a list of strings"), 400
                messages.templates = set(ids)
    with messages.lock:
        return jsonify(
            fail_errcode=messages.fail_errcode,
            fail_times=messages.fail_times,
            templates=sorted(messages.templates),
        )
