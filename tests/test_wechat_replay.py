"""Stale and reused signatures at ``/wechat``: pushes signed as WeChat signs them, sent over
real HTTP, in plain mode (``plain_server``: an app without an EncodingAESKey) and safe mode
(the test app, which has the stand-in's key)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import func, select

from app.accounts.models import User
from app.core.redis import redis_for
from app.distribution.binding import current_binding
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.distribution.models import BindingEvent
from app.extensions import db
from app.wechat.messages import FRESH_SECONDS, SEEN_MARGIN_SECONDS
from app.wechat.models import WechatFan, WechatMessageSeen
from tests.support import wechat as wx

pytestmark = pytest.mark.usefixtures("app_ctx")

Y2001 = int(datetime(2001, 1, 1, tzinfo=UTC).timestamp())
# Timestamps outside the window, from the clock when the test runs.
OLD = {
    "two-days-old": lambda now: now - 2 * 86_400,
    "2001-01-01": lambda now: Y2001,
    "six-minutes-old": lambda now: now - FRESH_SECONDS - 60,
    "a-day-ahead": lambda now: now + 86_400,
    "six-minutes-ahead": lambda now: now + FRESH_SECONDS + 60,
}


@pytest.fixture
def shop():
    """Bind on first visit, and no protection: the latest scan would take a customer over."""
    settings = get_distribution_settings()
    settings.bind_mode = "first_visit"
    settings.protection_days = 0
    settings.binding_days = 0
    db.session.commit()
    return settings


def same_reply(first, again) -> bool:
    """The two passive replies say the same; CreateTime is the second each was made in."""
    one, two = wx.reply(first), wx.reply(again)
    for fields in (one, two):
        if fields:
            fields.pop("CreateTime", None)
    return one == two


def door(request, safe: bool):
    """The live server for a mode: the test app (safe mode) or ``plain_server``."""
    return request.getfixturevalue("live_server" if safe else "plain_server")


def distributor(make, nickname: str):
    d = create_distributor(make.user(nickname=nickname).id, None)
    db.session.commit()
    return d


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def bound_to(openid: str) -> int | None:
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.openid == openid))
    binding = current_binding(user.id) if user else None
    return binding.distributor_id if binding else None


MODES = pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])


# --- freshness -----------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize("stamp", OLD.values(), ids=OLD.keys())
def test_a_push_signed_outside_the_window_is_refused_and_writes_nothing(request, safe, stamp):
    """The signature (and, in safe mode, msg_signature) is right; only the time is off."""
    server = door(request, safe)
    old = str(stamp(int(time.time())))
    res = wx.post(server.url, wx.subscribe("o_stale"), safe=safe, timestamp=old)
    assert res.status_code == 403
    assert count(WechatMessageSeen) == 0 and count(User) == 0 and count(WechatFan) == 0
    # The same push signed four minutes ago is inside the window.
    recent = str(int(time.time()) - 240)
    res = wx.post(server.url, wx.subscribe("o_stale"), safe=safe, timestamp=recent)
    assert res.status_code == 200 and count(WechatMessageSeen) == 1


@pytest.mark.parametrize("stamp", OLD.values(), ids=OLD.keys())
def test_a_url_check_signed_outside_the_window_is_refused(live_server, stamp):
    query, _ = wx.signed("<xml/>", safe=False, timestamp=str(stamp(int(time.time()))))
    res = requests.get(f"{live_server.url}/wechat", params={**query, "echostr": "e1"}, timeout=5)
    assert res.status_code == 403 and "e1" not in res.text


@pytest.mark.parametrize("stamp", ["", "abc", "1e9", "-5", "１７００００００００", "9" * 40])
def test_a_timestamp_that_is_no_number_is_refused(plain_server, stamp):
    res = wx.post(plain_server.url, wx.subscribe("o_odd_time"), safe=False, timestamp=stamp or "x")
    assert res.status_code == 403
    assert count(WechatMessageSeen) == 0


# --- reused triples ------------------------------------------------------------------------------


def test_plain_triple_with_the_same_body_is_a_retry_and_with_another_body_is_refused(
    plain_server, make, shop
):
    alice = distributor(make, "阿丽")
    query, body = wx.signed(wx.subscribe("o_retry", f"d:{alice.code}"), safe=False)
    first = wx.send(plain_server.url, query, body)
    again = wx.send(plain_server.url, query, body)  # WeChat's retry: same request
    assert first.status_code == again.status_code == 200
    assert same_reply(first, again)
    assert count(WechatMessageSeen) == 1  # processed once
    other = wx.text("o_retry", "你好")
    res = wx.send(plain_server.url, query, other.encode())
    assert res.status_code == 403
    assert count(WechatMessageSeen) == 1


def test_safe_triple_with_the_same_body_is_a_retry_and_with_another_body_is_refused(
    live_server, make, shop
):
    """msg_signature covers only ``Encrypt``: the same triple with the envelope changed
    (another ToUserName, an extra element) is another body, and refused."""
    alice = distributor(make, "阿丽")
    query, body = wx.signed(wx.subscribe("o_safe_retry", f"d:{alice.code}"))
    first = wx.send(live_server.url, query, body)
    again = wx.send(live_server.url, query, body)
    assert first.status_code == again.status_code == 200
    assert same_reply(first, again)
    assert count(WechatMessageSeen) == 1
    encrypt = re.search(rb"<Encrypt>.*</Encrypt>", body).group(0)
    for other in (
        b"<xml><ToUserName><![CDATA[gh_other]]></ToUserName>" + encrypt + b"</xml>",
        body.replace(b"</xml>", b"<Extra>1</Extra></xml>"),
    ):
        res = wx.send(live_server.url, query, other)
        assert res.status_code == 403
    assert count(WechatMessageSeen) == 1


def test_a_url_check_may_be_repeated_but_not_with_another_echostr(live_server):
    query, _ = wx.signed("<xml/>", safe=False)
    url = f"{live_server.url}/wechat"
    for _ in range(2):
        res = requests.get(url, params={**query, "echostr": "first"}, timeout=5)
        assert res.status_code == 200 and res.text == "first"
    res = requests.get(url, params={**query, "echostr": "second"}, timeout=5)
    assert res.status_code == 403 and "second" not in res.text


def test_a_url_check_triple_cannot_sign_a_push(plain_server):
    """The URL check and a plain push carry the same signature: a check URL read from a
    log must not sign a forged message."""
    query, _ = wx.signed("<xml/>", safe=False)
    res = requests.get(f"{plain_server.url}/wechat", params={**query, "echostr": "ok"}, timeout=5)
    assert res.status_code == 200
    res = wx.send(plain_server.url, query, wx.subscribe("o_from_check").encode())
    assert res.status_code == 403
    assert count(WechatMessageSeen) == 0 and count(User) == 0


def test_seen_triples_expire_just_after_the_window(app, plain_server):
    res = wx.post(plain_server.url, wx.subscribe("o_ttl"), safe=False)
    assert res.status_code == 200
    store = redis_for(app)
    keys = list(store.scan_iter("wechat:seen-signature:*"))
    assert len(keys) == 1
    assert FRESH_SECONDS < store.ttl(keys[0]) <= FRESH_SECONDS + SEEN_MARGIN_SECONDS + 1


# --- safe mode means encrypted only --------------------------------------------------------------


def test_plaintext_is_refused_when_the_aes_key_is_set(live_server):
    res = wx.post(live_server.url, wx.subscribe("o_plaintext"), safe=False)
    assert res.status_code == 403
    res = wx.post(live_server.url, wx.text("o_plaintext", "你好"), safe=False)
    assert res.status_code == 403
    assert count(WechatMessageSeen) == 0 and count(User) == 0 and count(WechatFan) == 0


# --- the binding hijack --------------------------------------------------------------------------


def hijack(captured_query: dict, openid: str, scene: str) -> tuple[dict, bytes]:
    """A forged SCAN for ``openid`` carried by a captured signature triple (plaintext: the
    attacker has no AES key)."""
    query = {k: captured_query[k] for k in ("signature", "timestamp", "nonce")}
    return query, wx.scan(openid, scene).encode()


def test_a_replayed_triple_with_a_forged_scan_does_not_rebind_the_customer(
    plain_server, make, shop
):
    alice, bob = distributor(make, "阿丽"), distributor(make, "阿博")
    customer = "o_victim"
    query, body = wx.signed(wx.subscribe(customer, f"d:{alice.code}"), safe=False)
    assert wx.send(plain_server.url, query, body).status_code == 200
    assert bound_to(customer) == alice.id
    res = wx.send(plain_server.url, *hijack(query, customer, f"d:{bob.code}"))
    assert res.status_code == 403
    assert bound_to(customer) == alice.id
    user = db.session.scalar(select(User).where(User.openid == customer))
    actions = db.session.scalars(select(BindingEvent.action).where(BindingEvent.user_id == user.id))
    assert list(actions) == ["bind"]


def test_a_two_day_old_triple_with_a_forged_scan_does_not_rebind(plain_server, make, shop):
    """An old signed URL (say from a proxy log) was never used here: refused by its age."""
    alice, bob = distributor(make, "阿丽"), distributor(make, "阿博")
    customer = "o_victim_old"
    wx.post(plain_server.url, wx.subscribe(customer, f"d:{alice.code}"), safe=False)
    old, _ = wx.signed("<xml/>", safe=False, timestamp=str(int(time.time()) - 2 * 86_400))
    res = wx.send(plain_server.url, *hijack(old, customer, f"d:{bob.code}"))
    assert res.status_code == 403
    assert bound_to(customer) == alice.id


def test_safe_mode_a_captured_triple_with_a_plaintext_scan_does_not_rebind(live_server, make, shop):
    alice, bob = distributor(make, "阿丽"), distributor(make, "阿博")
    customer = "o_victim_safe"
    query, body = wx.signed(wx.subscribe(customer, f"d:{alice.code}"))
    assert wx.send(live_server.url, query, body).status_code == 200
    forged_query, forged = hijack(query, customer, f"d:{bob.code}")
    assert wx.send(live_server.url, forged_query, forged).status_code == 403
    # Even dressed as safe mode with the captured msg_signature, the body is not WeChat's.
    dressed = {**query}
    assert wx.send(live_server.url, dressed, forged).status_code in (400, 403)
    assert bound_to(customer) == alice.id
