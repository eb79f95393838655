"""Helpers for tests that speak to the shop's message server as WeChat does.

Pushes are built and signed by the stand-in's own code (app/wechat/sandbox/fans.py, with
wechatpy's crypto) and sent over real HTTP to the live server's ``/wechat``.
"""

from __future__ import annotations

import itertools
import time

import requests

from app.wechat.sandbox.fans import account_id, build_event, build_text, open_reply, sign_push
from config import SANDBOX_AES_KEY, SANDBOX_APPID, SANDBOX_TOKEN

TO_USER = account_id(SANDBOX_APPID)
_clock = itertools.count(int(time.time()))
_msg_ids = itertools.count(7_000_000_000_000_000_000)


def next_time() -> int:
    """A CreateTime no other push of this test run has (events dedupe by it)."""
    return next(_clock)


def event(openid: str, name: str, key: str | None = None, create_time: int | None = None) -> str:
    """An event push (``subscribe``, ``SCAN``, ``unsubscribe``, ``CLICK``)."""
    ticket = "gQtest" if key is not None and name in ("subscribe", "SCAN") else None
    return build_event(
        TO_USER, openid, name, event_key=key, ticket=ticket, create_time=create_time or next_time()
    )


def subscribe(openid: str, scene: str | None = None, create_time: int | None = None) -> str:
    """A follow, through a parametric QR code when ``scene`` is given."""
    return event(openid, "subscribe", f"qrscene_{scene}" if scene else None, create_time)


def scan(openid: str, scene: str, create_time: int | None = None) -> str:
    """A scan by someone already following."""
    return event(openid, "SCAN", scene, create_time)


def text(openid: str, content: str, msg_id: int | None = None) -> str:
    """A text message."""
    return build_text(TO_USER, openid, content, msg_id or next(_msg_ids), next_time())


def signed(xml: str, safe: bool = True, token: str = SANDBOX_TOKEN, **kwargs):
    """(query, body) for ``xml``, signed with the test config's token (and AES key).

    Encrypted by default, like WeChat towards the test app (which has the stand-in's
    EncodingAESKey); ``safe=False`` for the ``plain_server`` fixture's app.
    """
    return sign_push(xml, token, safe=safe, aes_key=SANDBOX_AES_KEY, appid=SANDBOX_APPID, **kwargs)


def post(base_url: str, xml: str, safe: bool = True, **kwargs) -> requests.Response:
    """POST a signed push to ``base_url``/wechat like WeChat does."""
    query, body = signed(xml, safe, **kwargs)
    return send(base_url, query, body)


def send(base_url: str, query: dict, body: bytes) -> requests.Response:
    """POST an already signed push (a retry, or a replay) to ``base_url``/wechat."""
    return requests.post(
        f"{base_url}/wechat",
        params=query,
        data=body,
        headers={"Content-Type": "text/xml"},
        timeout=10,
    )


def reply(response: requests.Response) -> dict | None:
    """The passive reply's fields (decrypted in safe mode), None for ``success``."""
    assert response.status_code == 200, response.text
    return open_reply(response.content, SANDBOX_TOKEN, SANDBOX_AES_KEY, SANDBOX_APPID)
