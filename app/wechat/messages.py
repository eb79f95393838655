"""The official account's message server: decoding what WeChat pushes and answering it.

WeChat POSTs XML to ``/wechat`` (wechat-protocol.md §1):

1. ``decode_request`` checks the query signature first (``sha1(sorted[token, timestamp,
   nonce])``) and that its timestamp is within ``FRESH_SECONDS`` of now, caps the body,
   refuses any ``<!DOCTYPE``/``<!ENTITY`` (XXE, billion laughs) before an XML parser sees
   it, and in safe mode (``encrypt_type=aes``) checks ``msg_signature`` and decrypts with
   the EncodingAESKey; the plaintext is checked again. With an EncodingAESKey configured,
   plaintext pushes are refused: safe mode means encrypted only. Last, ``claim_signature``
   remembers the signature triple with a hash of the body (Redis), so a captured triple
   cannot carry another body (see there).
2. ``handle_message`` records the message once (``wechat_messages_seen``: INSERT ... ON
   CONFLICT DO NOTHING RETURNING; messages by MsgId, events by FromUserName + CreateTime
   + event) and does only the fast work inline: the fan row, the customer, the binding.
   A retry or duplicate finds the key taken and gets the same reply without side
   effects. Slow work (``/cgi-bin/user/info``) is returned as ``Outcome.after_commit`` for
   the edge to enqueue once it has committed.
3. ``encode_reply`` wraps a passive reply in the request's mode.

WeChat waits 5 s and then retries up to three times; everything here is a few queries.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from xml.parsers.expat import ExpatError

import redis
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from app.accounts.models import User
from app.core.redis import get_redis
from app.core.sql import insert_on_conflict
from app.core.time import utcnow
from app.distribution import funnel
from app.distribution.binding import current_binding, record_ref
from app.distribution.centre import share_url
from app.distribution.distributors import distributor_for_user
from app.distribution.models import Distributor
from app.extensions import db
from app.wechat import fans
from app.wechat.models import WechatMessageSeen
from app.wechat.qrcodes import SCENE_PREFIX, distributor_for_scene

MAX_BODY = 64 * 1024  # WeChat's messages are a few hundred bytes; encrypted ones ~1 KB
# Anything the XML spec opens with "<!" except CDATA: DOCTYPE, ENTITY, comments. WeChat
# sends none of them, and refusing them before parsing shuts out XXE and entity bombs.
_UNSAFE_XML = re.compile(rb"<!(?!\[CDATA\[)")
_UNSAFE_NAME = re.compile(r"[<>&\]\"]")
# How far a push's timestamp may be from our clock, either way. WeChat signs each push as
# it sends it and retries within seconds; 5 minutes leaves room for clock drift while a
# triple read from a log or a proxy is worthless soon after.
FRESH_SECONDS = 300
# Seen triples are kept until their timestamp has left the window, plus this margin.
SEEN_MARGIN_SECONDS = 60
POSTER_KEYWORD = "海报"
POSTER_CLICK_KEY = "POSTER"


class MessageRejected(Exception):
    """A push we refuse: HTTP ``status`` and a short reason (logged, never shown)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    """The message server's settings: token, EncodingAESKey (None = no safe mode), appid."""

    token: str
    aes_key: str | None
    appid: str


@dataclass
class Decoded:
    """A verified push: its plaintext XML and, in safe mode, the crypto to reply with."""

    xml: bytes
    crypto: WeChatCrypto | None = None
    nonce: str = ""
    timestamp: str = ""


@dataclass
class Outcome:
    """What the message server answers and what to queue after the commit."""

    reply: str | None = None  # passive reply text; None = "success"
    first: bool = True  # False for a retry or duplicate
    after_commit: list[tuple[str, str]] = field(default_factory=list)  # (job name, arg)


# --- signatures and decoding ---------------------------------------------------------------


def verify_signature(token: str, args) -> bool:
    """Whether the query's ``signature`` is sha1(sorted[token, timestamp, nonce])."""
    signature, timestamp, nonce = (args.get(k) or "" for k in ("signature", "timestamp", "nonce"))
    if not (signature and timestamp and nonce) or max(map(len, (timestamp, nonce))) > 64:
        return False
    try:
        check_signature(token, signature, timestamp, nonce)
    except InvalidSignatureException:
        return False
    return True


def is_fresh(timestamp: str, now: float) -> bool:
    """Whether ``timestamp`` (Unix seconds, as WeChat sends it) is within the window."""
    if not (timestamp.isascii() and timestamp.isdecimal()) or len(timestamp) > 12:
        return False
    return abs(int(timestamp) - now) <= FRESH_SECONDS


def authenticate_query(token: str, args, now: float | None = None) -> None:
    """Raise ``MessageRejected`` (403) unless the query is signed and recent.

    Checked on every GET and POST before the body is read. The signature covers only
    the token, timestamp and nonce, so an old signed URL (from a log, a proxy, a
    browser history) would otherwise be good forever.
    """
    if not verify_signature(token, args):
        raise MessageRejected(403, "bad signature")
    if not is_fresh(args.get("timestamp") or "", time.time() if now is None else now):
        raise MessageRejected(403, "stale or future timestamp")


def claim_signature(kind: str, signature: str, args, fingerprint: bytes, now: float) -> None:
    """Remember a verified signature triple with ``fingerprint``; refuse a reuse with another.

    WeChat retries an unanswered push with the same request, so a triple may come back
    with the same fingerprint (the dedupe by MsgId / event key then keeps it from acting
    twice). The plain signature does not cover the body: a triple seen with one body and
    replayed with another (a forged ``SCAN`` rebinding a customer) is refused with 403.
    ``kind`` keeps plain signatures and ``msg_signature`` apart. The key lives until the
    timestamp has left the freshness window, after which ``authenticate_query`` refuses
    the triple anyway. Without Redis the push is refused (503: WeChat retries).
    """
    timestamp, nonce = args.get("timestamp") or "", args.get("nonce") or ""
    triple = f"{kind}\n{signature}\n{timestamp}\n{nonce}".encode()
    key = "wechat:seen-signature:" + hashlib.sha256(triple).hexdigest()
    digest = hashlib.sha256(fingerprint).hexdigest()
    ttl = max(1, int(timestamp) + FRESH_SECONDS - int(now)) + SEEN_MARGIN_SECONDS
    try:
        store = get_redis()
        # Twice: the key may expire between a failed SET NX and the GET.
        for _ in range(2):
            if store.set(key, digest, nx=True, ex=ttl):
                return
            seen = store.get(key)
            if seen is not None:
                break
    except redis.RedisError as err:
        raise MessageRejected(503, f"signature store unavailable: {type(err).__name__}") from err
    if seen is None or seen.decode() != digest:
        raise MessageRejected(403, f"{kind} signature reused with another request")


def claim_url_check(args, now: float | None = None) -> None:
    """The URL check (GET) claims its triple too: a GET's signature is the same as a
    plain POST's, so a captured check URL must not sign a forged push, nor be replayed
    with another ``echostr``."""
    fingerprint = b"GET\n" + (args.get("echostr") or "").encode()
    now = time.time() if now is None else now
    claim_signature("plain", args.get("signature") or "", args, fingerprint, now)


def refuse_unsafe_xml(body: bytes) -> None:
    """Raise ``MessageRejected`` (400) for a DOCTYPE, ENTITY or other ``<!`` declaration."""
    if _UNSAFE_XML.search(body):
        raise MessageRejected(400, "xml declarations are not accepted")


def decode_request(args, body: bytes, creds: Credentials, now: float | None = None) -> Decoded:
    """Verify a push and return its plaintext XML (see the module docstring)."""
    now = time.time() if now is None else now
    authenticate_query(creds.token, args, now)
    if len(body) > MAX_BODY:
        raise MessageRejected(413, "body too large")
    if not body.strip():
        raise MessageRejected(400, "empty body")
    refuse_unsafe_xml(body)
    signature = args.get("signature") or ""
    encrypt_type = (args.get("encrypt_type") or "raw").lower()
    if encrypt_type == "raw":
        if creds.aes_key:
            # Safe mode is set: a plaintext push can only be a forgery signed with a
            # captured triple (WeChat encrypts every push once the key is set).
            raise MessageRejected(403, "plaintext push while safe mode is configured")
        claim_signature("plain", signature, args, b"POST\n" + body, now)
        return Decoded(body)
    if encrypt_type != "aes":
        raise MessageRejected(400, "unknown encrypt_type")
    if not creds.aes_key:
        raise MessageRejected(400, "safe mode is not configured")
    crypto = WeChatCrypto(creds.token, creds.aes_key, creds.appid)
    timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
    msg_signature = args.get("msg_signature") or ""
    try:
        plain = crypto.decrypt_message(body, msg_signature, timestamp, nonce)
    except InvalidSignatureException as err:
        raise MessageRejected(403, "bad msg_signature") from err
    except InvalidAppIdException as err:
        raise MessageRejected(403, "message for another appid") from err
    except (ExpatError, KeyError, TypeError, ValueError) as err:
        raise MessageRejected(400, f"undecryptable body: {type(err).__name__}") from err
    plain_bytes = plain.encode() if isinstance(plain, str) else plain
    refuse_unsafe_xml(plain_bytes)
    # The plain signature of a safe-mode push is marked as used by safe mode (so it can
    # sign no URL check or plaintext push); the msg_signature triple holds the body.
    claim_signature("plain", signature, args, b"POST aes", now)
    claim_signature("aes", msg_signature, args, b"POST\n" + body, now)
    return Decoded(plain_bytes, crypto, nonce, timestamp)


def encode_reply(decoded: Decoded, reply_xml: str) -> str:
    """The passive reply in the request's mode (encrypted in safe mode)."""
    if decoded.crypto is None:
        return reply_xml
    return decoded.crypto.encrypt_message(reply_xml, decoded.nonce, decoded.timestamp)


def parse(xml: bytes):
    """wechatpy's message object for verified, declaration-free XML (400 when malformed)."""
    try:
        message = parse_message(xml.decode("utf-8"))
    except (ExpatError, KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
        raise MessageRejected(400, f"malformed message: {type(err).__name__}") from err
    if message is None:
        raise MessageRejected(400, "empty message")
    openid = message.source or ""
    if not openid or len(openid) > 64 or not str(message._data.get("CreateTime", "")).isdecimal():
        raise MessageRejected(400, "missing FromUserName or CreateTime")
    return message


# --- handling ------------------------------------------------------------------------------


def dedupe_key(message) -> str:
    """``msg:<MsgId>`` for messages; ``event:<openid>:<CreateTime>:<event>`` for events."""
    if message.type != "event" and message.id:
        return f"msg:{message.id}"
    kind = getattr(message, "event", None) or message.type
    return f"event:{message.source}:{message._data['CreateTime']}:{kind}"[:160]


_CLAIM = insert_on_conflict(
    WechatMessageSeen.__table__,
    ("dedupe_key", "openid", "kind", "received_at"),
    conflict=("dedupe_key",),
    returning=(WechatMessageSeen.id,),
)


def claim(key: str, openid: str, kind: str, now: datetime) -> bool:
    """Record a push once; True for the first delivery, False for a retry or duplicate.

    RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT DO NOTHING.
    A concurrent duplicate waits on the unique key until the first one commits.
    """
    row = db.session.execute(
        _CLAIM, {"dedupe_key": key, "openid": openid, "kind": kind[:32], "received_at": now}
    )
    return row.scalar_one_or_none() is not None


def handle_message(message, base_url: str, now: datetime | None = None) -> Outcome:
    """Handle one verified message or event; flushes, the caller commits.

    ``base_url`` is the shop's public origin, for the links in replies.
    """
    now = now or utcnow()
    kind = getattr(message, "event", None) or message.type
    first = claim(dedupe_key(message), message.source, kind, now)
    outcome = Outcome(first=first)
    openid = message.source
    if message.type == "event":
        event = message.event
        if event in ("subscribe", "subscribe_scan"):
            scene = message.scene_id if event == "subscribe_scan" else ""
            user = fans.customer_for_openid(openid, create=first)
            if first and user is not None:
                fans.record_follow(openid, user.id, scene or "", now)
                outcome.after_commit.append(("fan_info", openid))
            _count_scan(scene, user, openid, first)
            outcome.reply = _welcome(user, scene, base_url, first, now, returning=False)
        elif event == "scan":
            user = fans.customer_for_openid(openid, create=first)
            _count_scan(message.scene_id, user, openid, first)
            outcome.reply = _welcome(user, message.scene_id, base_url, first, now, returning=True)
        elif event == "unsubscribe":
            if first:
                fans.record_unfollow(openid, now)
        elif event == "click" and (message.key or "") == POSTER_CLICK_KEY:
            _answer_poster(outcome, fans.customer_for_openid(openid, create=first), base_url)
    elif message.type == "text" and (message.content or "").strip() == POSTER_KEYWORD:
        _answer_poster(outcome, fans.customer_for_openid(openid, create=first), base_url)
    return outcome


def _count_scan(scene: str | None, user: User | None, openid: str, first: bool) -> None:
    """A scan of a distributor's QR code (poster or 推广二维码) is a visit of their
    promotion funnel; WeChat's retries of the same push are not counted again."""
    code = (scene or "").strip()[len(SCENE_PREFIX) :].upper()
    if first and (scene or "").strip().startswith(SCENE_PREFIX) and code.isalnum():
        funnel.count_scan(code[:16], user.id if user is not None else None, openid)


def _answer_poster(outcome: Outcome, user: User | None, base_url: str) -> None:
    """Reply to 海报 / POSTER; a distributor's poster image follows as a customer-service
    message from an RQ job (jobs.posters): rendering and uploading may take longer than
    WeChat's 5 s, and only the first delivery queues it."""
    outcome.reply = poster_reply(user, base_url)
    distributor = distributor_for_user(user.id) if user is not None else None
    if outcome.first and distributor is not None and distributor.status == "active":
        outcome.after_commit.append(("poster", user.openid))


def reply_xml(message, text: str) -> str:
    """A passive text reply to ``message`` (source and target swapped)."""
    return create_reply(text, message, render=True)


# --- replies -------------------------------------------------------------------------------


def _shop_link(base_url: str, code: str | None) -> str:
    return share_url(base_url, code) if code else f"{base_url.rstrip('/')}/"


def _welcome(
    user: User | None,
    scene: str | None,
    base_url: str,
    first: bool,
    now: datetime,
    *,
    returning: bool,
) -> str:
    """Bind through the QR's distributor (first delivery only) and say who invited."""
    greeting = "欢迎回来！" if returning else "欢迎关注！"
    scanned = distributor_for_scene(scene) if scene else None
    inviter: Distributor | None = None
    if user is not None and scanned is not None:
        # Loaded (and held) before binding: the member-bound notice and the greeting
        # below then find this user in the session instead of loading it twice.
        scanned_user = db.session.get(User, scanned.user_id)  # noqa: F841
        binding = record_ref(user.id, scanned, "qr", now) if first else current_binding(user.id)
        if binding is not None:
            inviter = db.session.get(Distributor, binding.distributor_id)
        elif scanned.user_id != user.id:
            inviter = scanned  # remembered for bind-on-first-payment, or binding is off
    if inviter is None:
        return f'{greeting}<a href="{_shop_link(base_url, None)}">进入商城</a>'
    # Nicknames are the fan's own text: nothing that could close the CDATA or add markup.
    name = _UNSAFE_NAME.sub("", db.session.get(User, inviter.user_id).display_name)
    link = _shop_link(base_url, inviter.code)
    return f'{greeting}你由 {name} 推荐，<a href="{link}">进入商城</a>'


def poster_reply(user: User | None, base_url: str) -> str:
    """The answer to 海报 / the POSTER menu: the poster is on its way (with the share link
    meanwhile), or how to become a distributor."""
    distributor = distributor_for_user(user.id) if user is not None else None
    if distributor is None or distributor.status != "active":
        join = f"{base_url.rstrip('/')}/distributor"
        return f'你还不是分销员，<a href="{join}">申请成为分销员</a>后即可获得专属推广海报。'
    link = share_url(base_url, distributor.code)
    return (
        "你的专属推广海报正在生成，马上发给你，长按海报即可保存或转发。\n"
        f'也可以直接分享推广链接：<a href="{link}">{link}</a>'
    )
