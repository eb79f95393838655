"""Fans and parametric QR codes in the stand-in, and a page to act as a fan.

WeChat's APIs: ``POST /cgi-bin/qrcode/create``, ``GET /cgi-bin/showqrcode?ticket=`` (a
real PNG of the ticket's URL, on the ``mp`` origin in WeChat) and ``GET /cgi-bin/user/info``.

The developer page ``/sandbox/fans`` plays WeChat's part towards the shop's message
server: pick (or type) a fan, follow, scan one of the QR codes the stand-in issued
(``subscribe`` + ``qrscene_`` when not following, ``SCAN`` when following), unfollow,
send a text or click a menu key. Each sends a correctly signed push to the shop's
``/wechat`` and shows the reply: encrypted (safe mode) when the stand-in has the shop's
EncodingAESKey, plaintext when the shop has none, as WeChat follows the account's
message encryption setting.

``build_event``, ``build_text``, ``sign_push`` and ``open_reply`` are the same pushes for
tests and benchmarks (tests/support/wechat.py, bench/wechat_events.py).

Settings: ``SHOP_MESSAGE_URL`` (default ``SHOP_BASE_URL`` + ``/wechat``), ``SANDBOX_TOKEN``,
``SANDBOX_AES_KEY`` and ``SANDBOX_APPID`` (the shop's WECHAT_TOKEN, WECHAT_AES_KEY, appid).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

import requests
import xmltodict
from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from app.wechat.sandbox.common import get_state, require_access_token, wx_error

bp = Blueprint("sandbox_fans", __name__)

TEMP_MAX_SECONDS = 2_592_000  # 30 days
TEMP_DEFAULT_SECONDS = 30  # an omitted expire_seconds meant 30 s in WeChat's older doc
PERMANENT_CAP = 100_000
ACTIONS = ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE")
MAX_TEXT = 600  # characters a fan may type on the page
PUSH_TIMEOUT = 5  # seconds: WeChat's own limit for an answer


# --- state ----------------------------------------------------------------------------------


@dataclass
class QrTicket:
    """A QR code the stand-in issued."""

    ticket: str
    action_name: str
    scene: str  # scene_str, or scene_id as text
    url: str
    expires_at: float | None  # None = permanent

    @property
    def permanent(self) -> bool:
        return self.expires_at is None


@dataclass
class Follow:
    """Whether a fan follows the account, and how they came."""

    subscribed: bool = False
    subscribe_time: int = 0
    subscribe_scene: str = ""
    qr_scene_str: str = ""


@dataclass
class FanState:
    """QR tickets and follows, behind their own lock (the token state has its own)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    tickets: dict[str, QrTicket] = field(default_factory=dict)
    permanent_scenes: dict[str, str] = field(default_factory=dict)  # scene -> ticket
    follows: dict[str, Follow] = field(default_factory=dict)
    msg_ids: int = field(default_factory=lambda: secrets.randbits(40) + 10**15)

    def next_msg_id(self) -> int:
        with self.lock:
            self.msg_ids += 1
            return self.msg_ids

    def follow(self, openid: str) -> Follow:
        with self.lock:
            return self.follows.setdefault(openid, Follow())


def fan_state() -> FanState:
    return current_app.extensions["wechat_sandbox_fans"]


def init_fans(app: Flask) -> None:
    """Register the fan APIs and page on the stand-in app."""
    app.extensions["wechat_sandbox_fans"] = FanState()
    app.register_blueprint(bp)


# --- building and signing pushes (shared with tests and benches) ------------------------------


def account_id(appid: str) -> str:
    """The account's original id (原始 ID, ``gh_...``) the stand-in uses as ToUserName."""
    return "gh_" + hashlib.sha256(appid.encode()).hexdigest()[:12]


def _xml(fields: dict[str, str | int]) -> str:
    parts = []
    for name, value in fields.items():
        if isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def build_event(
    to_user: str,
    openid: str,
    event: str,
    *,
    event_key: str | None = None,
    ticket: str | None = None,
    create_time: int | None = None,
) -> str:
    """An event push as WeChat writes it (subscribe, unsubscribe, SCAN, CLICK, ...)."""
    fields: dict[str, str | int] = {
        "ToUserName": to_user,
        "FromUserName": openid,
        "CreateTime": create_time or int(time.time()),
        "MsgType": "event",
        "Event": event,
    }
    if event_key is not None:
        fields["EventKey"] = event_key
    if ticket is not None:
        fields["Ticket"] = ticket
    return _xml(fields)


def build_text(
    to_user: str, openid: str, content: str, msg_id: int, create_time: int | None = None
) -> str:
    """A text message push."""
    return _xml(
        {
            "ToUserName": to_user,
            "FromUserName": openid,
            "CreateTime": create_time or int(time.time()),
            "MsgType": "text",
            "Content": content.replace("]]>", "]]&gt;"),
            "MsgId": msg_id,
        }
    )


def _signature(*values: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*values)
    return signer.signature


def sign_push(
    xml: str,
    token: str,
    *,
    safe: bool = False,
    aes_key: str | None = None,
    appid: str | None = None,
    timestamp: str | None = None,
    nonce: str | None = None,
    openid: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """The query string and body WeChat would POST for ``xml`` (plain or safe mode)."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    query = {
        "signature": _signature(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    if openid:
        query["openid"] = openid
    if not safe:
        return query, xml.encode()
    crypto = WeChatCrypto(token, aes_key, appid)
    wrapped = xmltodict.parse(crypto.encrypt_message(xml, nonce, timestamp))["xml"]
    # WeChat's safe-mode body: ToUserName and Encrypt; msg_signature goes in the query.
    # Read with a regex, not a parser: tests encrypt hostile XML on purpose.
    found = re.search(r"<ToUserName>(?:<!\[CDATA\[)?([^<\]]*)", xml)
    to_user = found.group(1) if found else ""
    body = _xml({"ToUserName": to_user, "Encrypt": wrapped["Encrypt"]})
    query.update(encrypt_type="aes", msg_signature=wrapped["MsgSignature"])
    return query, body.encode()


def open_reply(
    body: bytes | str, token: str, aes_key: str | None = None, appid: str | None = None
) -> dict | None:
    """The reply's fields as a dict (decrypted and checked in safe mode); None for success."""
    text = body.decode() if isinstance(body, bytes) else body
    if not text.strip() or text.strip() == "success":
        return None
    outer = xmltodict.parse(text)["xml"]
    if "Encrypt" not in outer:
        return dict(outer)
    crypto = WeChatCrypto(token, aes_key, appid)
    plain = crypto.decrypt_message(text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
    return dict(xmltodict.parse(plain)["xml"])


# --- WeChat's APIs ----------------------------------------------------------------------------


def _new_ticket() -> str:
    # Standard base64 (with + / =), like WeChat's tickets: callers must URL-encode them.
    return "gQ" + base64.b64encode(secrets.token_bytes(60)).decode()


@bp.post("/cgi-bin/qrcode/create")
def qrcode_create():
    """``POST /cgi-bin/qrcode/create?access_token``: a temporary or permanent QR ticket."""
    error = require_access_token()
    if error:
        return error
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        return wx_error(44002 if not request.data else 47001)
    action = body.get("action_name")
    if action not in ACTIONS:
        return wx_error(40097, "invalid action_name")
    scene_obj = (body.get("action_info") or {}).get("scene")
    if not isinstance(scene_obj, dict):
        # WeChat accepts it and the scan says qrscene_0 (wechat-protocol.md §2).
        scene_obj = {"scene_id": 0}
    if action.endswith("STR_SCENE"):
        scene = scene_obj.get("scene_str")
        if not isinstance(scene, str) or not 1 <= len(scene) <= 64:
            return wx_error(40097, "invalid scene_str: 1 to 64 characters")
    else:
        scene_id = scene_obj.get("scene_id")
        if not isinstance(scene_id, int) or isinstance(scene_id, bool):
            return wx_error(40097, "invalid scene_id")
        limit = 100_000 if action == "QR_LIMIT_SCENE" else 2**32 - 1
        if not (1 <= scene_id <= limit or (scene_id == 0 and action == "QR_SCENE")):
            return wx_error(40097, "invalid scene_id")
        scene = str(scene_id)
    permanent = action.startswith("QR_LIMIT")
    state, fans = get_state(), fan_state()
    if not permanent:
        seconds = body.get("expire_seconds", TEMP_DEFAULT_SECONDS)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
            return wx_error(40097, "invalid expire_seconds")
        seconds = min(seconds, TEMP_MAX_SECONDS)  # WeChat clamps to 30 days
    with fans.lock:
        if permanent and scene in fans.permanent_scenes:
            issued = fans.tickets[fans.permanent_scenes[scene]]  # same scene, same code
        else:
            if permanent and len(fans.permanent_scenes) >= PERMANENT_CAP:
                # Our sources give no errcode for the cap; WeChat's quota error is used.
                return wx_error(45009, "permanent qrcode limit reached")
            ticket = _new_ticket()
            origin = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
            # WeChat's content URL is http://weixin.qq.com/q/...; the stand-in's opens
            # its fan page with this code picked, so a phone camera can "scan" it.
            url = f"{origin}/sandbox/fans?ticket={ticket[2:18]}"
            issued = QrTicket(
                ticket=ticket,
                action_name=action,
                scene=scene,
                url=url,
                expires_at=None if permanent else state.now() + seconds,
            )
            fans.tickets[ticket] = issued
            if permanent:
                fans.permanent_scenes[scene] = ticket
    result = {"ticket": issued.ticket, "url": issued.url}
    if not permanent:
        result["expire_seconds"] = round(issued.expires_at - state.now())
    return jsonify(result)


def _live_ticket(value: str | None) -> QrTicket | None:
    fans = fan_state()
    with fans.lock:
        issued = fans.tickets.get(value or "")
    if issued is None or (issued.expires_at is not None and issued.expires_at <= get_state().now()):
        return None
    return issued


def _ticket_by_prefix(prefix: str) -> QrTicket | None:
    fans = fan_state()
    with fans.lock:
        for ticket in fans.tickets.values():
            if ticket.ticket[2:18] == prefix:
                return ticket
    return None


@bp.get("/cgi-bin/showqrcode")
def showqrcode():
    """``GET /cgi-bin/showqrcode?ticket=``: the QR code image (PNG) of a live ticket."""
    issued = _live_ticket(request.args.get("ticket"))
    if issued is None:
        return wx_error(40097, "invalid ticket"), 404
    import qrcode

    image = qrcode.make(issued.url, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    response = current_app.response_class(buffer.getvalue(), mimetype="image/png")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.get("/cgi-bin/user/info")
def user_info():
    """``GET /cgi-bin/user/info?access_token&openid&lang``: a fan's follow details.

    Like WeChat since late 2021, nickname and headimgurl come back empty.
    """
    error = require_access_token()
    if error:
        return error
    state = get_state()
    fan = state.fans.get(request.args.get("openid") or "")
    if fan is None:
        return wx_error(40003)
    follow = fan_state().follow(fan.openid)
    body: dict = {"subscribe": 1 if follow.subscribed else 0, "openid": fan.openid}
    if follow.subscribed:
        body.update(
            nickname="",
            headimgurl="",
            language=request.args.get("lang") or "zh_CN",
            subscribe_time=follow.subscribe_time,
            remark="",
            groupid=0,
            tagid_list=[],
            subscribe_scene=follow.subscribe_scene,
            qr_scene=0,
            qr_scene_str=follow.qr_scene_str,
        )
    if current_app.config.get("SANDBOX_UNIONID", True):
        body["unionid"] = fan.unionid
    return jsonify(body)


# --- the fan page -----------------------------------------------------------------------------


def message_url() -> str | None:
    """Where the shop's message server is (``SHOP_MESSAGE_URL`` or ``SHOP_BASE_URL``/wechat)."""
    config = current_app.config
    if config.get("SHOP_MESSAGE_URL"):
        return config["SHOP_MESSAGE_URL"]
    if config.get("SHOP_BASE_URL"):
        return config["SHOP_BASE_URL"].rstrip("/") + "/wechat"
    return None


@dataclass
class PushResult:
    """What the page shows after a push: what was sent and what the shop answered."""

    sent: str
    status: int | None = None
    raw: str = ""
    reply: dict | None = None
    error: str = ""


def safe_mode() -> bool:
    """Whether pushes are encrypted: the account has an EncodingAESKey (安全模式)."""
    return bool(current_app.config.get("SANDBOX_AES_KEY"))


def push(xml: str, openid: str, safe: bool) -> PushResult:
    """Sign ``xml`` like WeChat and POST it to the shop's message server."""
    config = current_app.config
    result = PushResult(sent=xml)
    url = message_url()
    if not url:
        result.error = "未配置商城地址（SHOP_BASE_URL / SHOP_MESSAGE_URL）"
        return result
    token = config["SANDBOX_TOKEN"]
    aes_key, appid = config["SANDBOX_AES_KEY"], config["SANDBOX_APPID"]
    query, body = sign_push(xml, token, safe=safe, aes_key=aes_key, appid=appid, openid=openid)
    try:
        res = requests.post(
            url,
            params=query,
            data=body,
            headers={"Content-Type": "text/xml"},
            timeout=PUSH_TIMEOUT,
        )
    except requests.RequestException as exc:
        result.error = f"推送失败（微信会重试）：{type(exc).__name__}"
        return result
    result.status = res.status_code
    result.raw = res.text[:4000]
    if res.status_code == 200:
        try:
            result.reply = open_reply(res.content, token, aes_key, appid)
        except Exception as exc:  # a bad reply is what the developer needs to see
            result.error = f"回复无法解析：{type(exc).__name__}"
    else:
        result.error = f"商城返回 HTTP {res.status_code}"
    return result


def _pick_fan(form):
    state = get_state()
    nickname = (form.get("nickname") or "").strip()
    if nickname:
        if len(nickname) > 32:
            return None, "昵称最多 32 个字"
        return state.fan_for_nickname(nickname), ""
    fan = state.fans.get(form.get("fan") or "")
    return (fan, "") if fan else (None, "请选择一个测试粉丝，或输入新昵称")


def act(form) -> tuple[PushResult | None, str, str]:
    """Carry out one action of the page; returns (push result, notice, chosen openid)."""
    fan, problem = _pick_fan(form)
    if fan is None:
        return None, problem, ""
    action = form.get("action") or ""
    safe = safe_mode()
    to_user = account_id(current_app.config["SANDBOX_APPID"])
    fans, now = fan_state(), int(get_state().now())
    follow = fans.follow(fan.openid)
    if action == "follow":
        if follow.subscribed:
            return None, f"{fan.nickname} 已关注，微信不会再推送关注事件", fan.openid
        xml = build_event(to_user, fan.openid, "subscribe", create_time=now)
        with fans.lock:
            follow.subscribed, follow.subscribe_time = True, now
            follow.subscribe_scene, follow.qr_scene_str = "ADD_SCENE_SEARCH", ""
    elif action == "scan":
        issued = _live_ticket(form.get("ticket"))
        if issued is None:
            return None, "二维码不存在或已过期", fan.openid
        if follow.subscribed:
            xml = build_event(
                to_user,
                fan.openid,
                "SCAN",
                event_key=issued.scene,
                ticket=issued.ticket,
                create_time=now,
            )
        else:
            xml = build_event(
                to_user,
                fan.openid,
                "subscribe",
                event_key=f"qrscene_{issued.scene}",
                ticket=issued.ticket,
                create_time=now,
            )
            with fans.lock:
                follow.subscribed, follow.subscribe_time = True, now
                follow.subscribe_scene = "ADD_SCENE_QR_CODE"
                follow.qr_scene_str = issued.scene if "STR" in issued.action_name else ""
    elif action == "unfollow":
        if not follow.subscribed:
            return None, f"{fan.nickname} 还没有关注", fan.openid
        xml = build_event(to_user, fan.openid, "unsubscribe", create_time=now)
        with fans.lock:
            follow.subscribed = False
    elif action == "text":
        content = (form.get("content") or "").strip()
        if not content or len(content) > MAX_TEXT:
            return None, f"请输入 1-{MAX_TEXT} 个字", fan.openid
        if not follow.subscribed:
            return None, "关注后才能发消息", fan.openid
        xml = build_text(to_user, fan.openid, content, fans.next_msg_id(), now)
    elif action == "click":
        key = (form.get("key") or "").strip()
        if not key or len(key) > 128:
            return None, "请输入菜单 key", fan.openid
        if not follow.subscribed:
            return None, "关注后才能点菜单", fan.openid
        xml = build_event(to_user, fan.openid, "CLICK", event_key=key, create_time=now)
    else:
        return None, "未知操作", fan.openid
    return push(xml, fan.openid, safe), "", fan.openid


def _render(result=None, notice="", chosen="", status=200):
    fans = fan_state()
    now = get_state().now()
    with fans.lock:
        tickets = [t for t in fans.tickets.values() if t.expires_at is None or t.expires_at > now]
        follows = dict(fans.follows)
    picked = _ticket_by_prefix(request.args.get("ticket", ""))
    return (
        render_template(
            "sandbox/fans.html",
            fans=get_state().list_fans(),
            follows=follows,
            tickets=tickets,
            picked=picked.ticket if picked else request.form.get("ticket", ""),
            result=result,
            notice=notice,
            chosen=chosen or request.form.get("fan", ""),
            safe_mode=safe_mode(),
            message_url=message_url(),
        ),
        status,
    )


@bp.get("/sandbox/fans")
def fans_page():
    """The developer page: act as a fan towards the shop's message server."""
    return _render()


@bp.post("/sandbox/fans")
def fans_act():
    """One action from the page (follow, scan, unfollow, text, click); shows the reply."""
    result, notice, chosen = act(request.form)
    status = 200 if result is not None or not notice else 400
    return _render(result, notice, chosen, status)


@bp.get("/_sandbox/fans/state")
def fans_json():
    """Follows and issued tickets as JSON (tests read it)."""
    fans = fan_state()
    with fans.lock:
        return jsonify(
            follows={k: vars(v) for k, v in fans.follows.items()},
            tickets=[
                {
                    "ticket": t.ticket,
                    "scene": t.scene,
                    "action_name": t.action_name,
                    "url": t.url,
                    "expires_at": t.expires_at,
                }
                for t in fans.tickets.values()
            ],
        )
