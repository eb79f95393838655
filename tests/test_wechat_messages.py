"""The message server ``/wechat`` over real HTTP, with pushes signed as WeChat signs them."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select
from wechatpy.utils import check_signature

from app import create_app
from app.accounts.models import User
from app.distribution.binding import current_binding
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.distribution.models import Binding, BindingEvent
from app.extensions import db
from app.wechat.models import WechatFan, WechatMessageSeen
from tests.support import wechat as wx

pytestmark = pytest.mark.usefixtures("app_ctx")  # tests read the database afterwards

# WeChat's published URL-check vector (wechat-protocol.md §1).
VECTOR = {
    "token": "AAAAA",
    "timestamp": "1714036504",
    "nonce": "1514711492",
    "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
}


@pytest.fixture
def shop(make):
    """Bind on first visit, 15 days of protection, permanent bindings."""
    settings = get_distribution_settings()
    settings.bind_mode = "first_visit"
    settings.protection_days = 15
    settings.binding_days = 0
    db.session.commit()
    return settings


def distributor(make, nickname="分销员小王"):
    d = create_distributor(make.user(nickname=nickname).id, None)
    db.session.commit()
    return d


def door(request, safe: bool):
    """The live server for a mode: the test app (safe mode) or ``plain_server``."""
    return request.getfixturevalue("live_server" if safe else "plain_server")


def seen_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(WechatMessageSeen))


def binding_of(openid: str) -> Binding | None:
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.openid == openid))
    return current_binding(user.id) if user else None


def bind_events(openid: str) -> list[str]:
    user = db.session.scalar(select(User).where(User.openid == openid))
    return [
        e.action
        for e in db.session.scalars(select(BindingEvent).where(BindingEvent.user_id == user.id))
    ]


# --- URL check --------------------------------------------------------------------------------


def test_published_vector_matches_wechatpy():
    check_signature(VECTOR["token"], VECTOR["signature"], VECTOR["timestamp"], VECTOR["nonce"])
    raw = "".join(sorted([VECTOR["token"], VECTOR["timestamp"], VECTOR["nonce"]]))
    assert hashlib.sha1(raw.encode()).hexdigest() == VECTOR["signature"]  # noqa: S324


def test_url_check_with_the_published_vector(app):
    """An app configured with token AAAAA checks WeChat's own example as WeChat signs it:
    the signature is right, but the vector's timestamp (2024) is long past, so only the
    same check signed now is answered with the echostr."""
    from app.wechat.sandbox.fans import sign_push

    other = create_app(
        {
            **{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "REDIS_URL")},
            "ENV_NAME": "test",
            "WECHAT_TOKEN": "AAAAA",
        }
    )
    client = other.test_client()
    args = {k: VECTOR[k] for k in ("signature", "timestamp", "nonce")}
    res = client.get("/wechat", query_string={**args, "echostr": "5923592049580497393"})
    assert res.status_code == 403
    args, _ = sign_push("<xml/>", "AAAAA", nonce=VECTOR["nonce"])
    res = client.get("/wechat", query_string={**args, "echostr": "5923592049580497393"})
    assert res.status_code == 200
    assert res.get_data(as_text=True) == "5923592049580497393"
    bad = {**args, "signature": "0" * 40, "echostr": "x"}
    assert client.get("/wechat", query_string=bad).status_code == 403


def test_url_check_over_http(live_server):
    query, _ = wx.signed("<xml/>")
    res = requests.get(
        f"{live_server.url}/wechat", params={**query, "echostr": "abc 123"}, timeout=5
    )
    assert res.status_code == 200 and res.text == "abc 123"
    res = requests.get(f"{live_server.url}/wechat", params={"echostr": "x"}, timeout=5)
    assert res.status_code == 403


# --- signatures, size, XML safety ----------------------------------------------------------


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
def test_plain_subscribe_in_both_modes_replies_in_the_same_mode(request, safe):
    openid = f"o_plain_{int(safe)}"
    res = wx.post(door(request, safe).url, wx.subscribe(openid), safe=safe)
    assert res.status_code == 200
    if safe:
        assert "<Encrypt>" in res.text and "欢迎" not in res.text
    answer = wx.reply(res)
    assert answer["MsgType"] == "text" and answer["Content"].startswith("欢迎关注！")
    assert answer["ToUserName"] == openid and answer["FromUserName"] == wx.TO_USER
    fan = db.session.scalar(select(WechatFan).where(WechatFan.openid == openid))
    user = db.session.scalar(select(User).where(User.openid == openid))
    assert fan.subscribed and fan.user_id == user.id
    assert seen_count() == 1


def test_forged_signature_is_refused_and_nothing_written(live_server):
    query, body = wx.signed(wx.subscribe("o_forged"), token="not-the-token")
    res = requests.post(f"{live_server.url}/wechat", params=query, data=body, timeout=5)
    assert res.status_code == 403
    res = requests.post(f"{live_server.url}/wechat", data=body, timeout=5)  # no signature
    assert res.status_code == 403
    assert seen_count() == 0
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_forged_msg_signature_in_safe_mode(live_server):
    query, body = wx.signed(wx.subscribe("o_forged_safe"), safe=True)
    query["msg_signature"] = "0" * 40
    res = requests.post(f"{live_server.url}/wechat", params=query, data=body, timeout=5)
    assert res.status_code == 403
    assert seen_count() == 0


def test_encrypted_body_for_another_appid_is_refused(live_server):
    from app.wechat.sandbox.fans import sign_push
    from config import SANDBOX_AES_KEY, SANDBOX_TOKEN

    query, body = sign_push(
        wx.subscribe("o_other_app"),
        SANDBOX_TOKEN,
        safe=True,
        aes_key=SANDBOX_AES_KEY,
        appid="wxsomebodyelse00",
    )
    res = requests.post(f"{live_server.url}/wechat", params=query, data=body, timeout=5)
    assert res.status_code == 403
    assert seen_count() == 0


XXE = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[o_xxe]]></FromUserName>
<CreateTime>1714036504</CreateTime><MsgType><![CDATA[text]]></MsgType>
<Content>&xxe;</Content><MsgId>1</MsgId></xml>"""

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><ToUserName>gh_x</ToUserName><FromUserName>o_lol</FromUserName>
<CreateTime>1714036504</CreateTime><MsgType>text</MsgType><Content>&lol4;</Content>
<MsgId>2</MsgId></xml>"""


@pytest.mark.parametrize("payload", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
def test_entity_payloads_are_refused_before_parsing(request, payload, safe):
    res = wx.post(door(request, safe).url, payload, safe=safe)
    assert res.status_code == 400
    assert "root:" not in res.text and "lollol" not in res.text
    assert seen_count() == 0
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_body_is_capped(live_server):
    big = wx.text("o_big", "长" * 30_000)  # ~90 KB of UTF-8
    res = wx.post(live_server.url, big)
    assert res.status_code == 413
    assert seen_count() == 0


@pytest.mark.parametrize(
    "body",
    ["not xml at all", "<xml><MsgType>text</MsgType></xml>", "<other>1</other>"],
    ids=["garbage", "no-sender", "wrong-root"],
)
def test_malformed_messages_get_400(live_server, body):
    res = wx.post(live_server.url, body)
    assert res.status_code == 400
    assert seen_count() == 0


def test_unknown_encrypt_type_is_400(live_server):
    query, body = wx.signed(wx.subscribe("o_enc"))
    query["encrypt_type"] = "rot13"
    res = requests.post(f"{live_server.url}/wechat", params=query, data=body, timeout=5)
    assert res.status_code == 400


# --- QR binding --------------------------------------------------------------------------------


@pytest.mark.parametrize("safe", [False, True], ids=["plain", "safe"])
def test_subscribe_through_a_distributor_qr_binds_and_names_the_inviter(request, make, shop, safe):
    alice = distributor(make, "小王")
    openid = "o_new_fan"
    res = wx.post(door(request, safe).url, wx.subscribe(openid, f"d:{alice.code}"), safe=safe)
    answer = wx.reply(res)
    assert "你由 小王 推荐" in answer["Content"]
    assert f"/?ref={alice.code}" in answer["Content"]
    binding = binding_of(openid)
    assert binding.distributor_id == alice.id and binding.source == "qr"
    fan = db.session.scalar(select(WechatFan).where(WechatFan.openid == openid))
    assert fan.qr_scene == f"d:{alice.code}"


def test_scan_by_a_follower_binds(live_server, make, shop):
    alice = distributor(make, "小李")
    openid = "o_follower"
    wx.post(live_server.url, wx.subscribe(openid))
    assert binding_of(openid) is None
    answer = wx.reply(wx.post(live_server.url, wx.scan(openid, f"d:{alice.code}")))
    assert answer["Content"].startswith("欢迎回来！你由 小李 推荐")
    assert binding_of(openid).distributor_id == alice.id


def test_same_openid_is_the_same_customer_as_oauth(live_server, make, shop):
    """A customer who signed in with OAuth first, then follows: one User."""
    customer = make.user(openid="o_oauth_first")
    alice = distributor(make)
    wx.post(live_server.url, wx.subscribe(customer.openid, f"d:{alice.code}"))
    assert (
        db.session.scalar(
            select(func.count()).select_from(User).where(User.openid == customer.openid)
        )
        == 1
    )
    assert binding_of(customer.openid).user_id == customer.id


@pytest.mark.postgresql  # once-only
def test_retried_event_binds_once_and_gets_the_same_reply(live_server, make, shop):
    alice = distributor(make)
    xml = wx.subscribe("o_retried", f"d:{alice.code}")
    replies = [wx.reply(wx.post(live_server.url, xml)) for _ in range(3)]
    assert len({r["Content"] for r in replies}) == 1
    assert seen_count() == 1
    assert bind_events("o_retried") == ["bind"]


@pytest.mark.postgresql  # once-only
def test_concurrent_duplicates_bind_once(live_server, make, shop):
    alice = distributor(make)
    xml = wx.subscribe("o_dupes", f"d:{alice.code}")
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: wx.post(live_server.url, xml), range(8)))
    assert all(r.status_code == 200 for r in responses)
    assert {wx.reply(r)["Content"] for r in responses} == {wx.reply(responses[0])["Content"]}
    assert seen_count() == 1
    assert bind_events("o_dupes") == ["bind"]
    assert db.session.scalar(select(func.count()).select_from(User)) == 2  # alice + the fan


@pytest.mark.postgresql  # once-only
def test_a_protected_binding_is_not_taken_over_by_a_later_scan(live_server, make, shop):
    alice, bob = distributor(make, "阿丽"), distributor(make, "阿博")
    openid = "o_protected"
    wx.post(live_server.url, wx.subscribe(openid, f"d:{alice.code}"))
    answer = wx.reply(wx.post(live_server.url, wx.scan(openid, f"d:{bob.code}")))
    assert binding_of(openid).distributor_id == alice.id
    assert "阿丽" in answer["Content"] and "阿博" not in answer["Content"]
    assert bind_events(openid) == ["bind"]


def test_without_protection_the_latest_scan_wins(live_server, make, shop):
    shop.protection_days = 0
    db.session.commit()
    alice, bob = distributor(make), distributor(make)
    openid = "o_unprotected"
    wx.post(live_server.url, wx.subscribe(openid, f"d:{alice.code}"))
    wx.post(live_server.url, wx.scan(openid, f"d:{bob.code}"))
    assert binding_of(openid).distributor_id == bob.id


@pytest.mark.parametrize("scene", ["d:NOSUCH99", "campaign-2026", "0"])
def test_unknown_scene_gets_a_polite_welcome_without_binding(live_server, make, shop, scene):
    answer = wx.reply(wx.post(live_server.url, wx.subscribe("o_unknown", scene)))
    assert answer["Content"].startswith("欢迎关注！") and "推荐" not in answer["Content"]
    assert binding_of("o_unknown") is None
    assert db.session.scalar(select(WechatFan).where(WechatFan.openid == "o_unknown")).subscribed


def test_a_distributor_scanning_their_own_code_is_not_bound(live_server, make, shop):
    alice = distributor(make)
    own = db.session.get(User, alice.user_id)
    answer = wx.reply(wx.post(live_server.url, wx.subscribe(own.openid, f"d:{alice.code}")))
    assert "推荐" not in answer["Content"]
    assert binding_of(own.openid) is None


def test_a_disabled_distributor_code_does_not_bind(live_server, make, shop):
    alice = distributor(make)
    alice.status = "disabled"
    db.session.commit()
    wx.post(live_server.url, wx.subscribe("o_disabled", f"d:{alice.code}"))
    assert binding_of("o_disabled") is None


def test_no_cycle_a_parent_scanning_a_child_code(live_server, make, shop):
    parent = distributor(make)
    child = create_distributor(make.user().id, parent)
    db.session.commit()
    parent_user = db.session.get(User, parent.user_id)
    wx.post(live_server.url, wx.subscribe(parent_user.openid, f"d:{child.code}"))
    assert binding_of(parent_user.openid) is None


def test_unsubscribe_marks_the_fan_and_keeps_the_binding(live_server, make, shop):
    alice = distributor(make)
    openid = "o_leaver"
    wx.post(live_server.url, wx.subscribe(openid, f"d:{alice.code}"))
    res = wx.post(live_server.url, wx.event(openid, "unsubscribe"))
    assert res.status_code == 200 and res.text == "success"
    db.session.expire_all()
    fan = db.session.scalar(select(WechatFan).where(WechatFan.openid == openid))
    assert not fan.subscribed and fan.unsubscribed_at is not None
    assert binding_of(openid).distributor_id == alice.id


# --- keywords ----------------------------------------------------------------------------------


def test_poster_keyword_and_menu_click_reply_with_the_share_link(live_server, make, shop):
    alice = distributor(make)
    openid = db.session.get(User, alice.user_id).openid
    for xml in (wx.text(openid, " 海报 "), wx.event(openid, "CLICK", "POSTER")):
        answer = wx.reply(wx.post(live_server.url, xml))
        assert f"/?ref={alice.code}" in answer["Content"]


def test_poster_keyword_for_a_non_distributor_points_to_joining(live_server):
    answer = wx.reply(wx.post(live_server.url, wx.text("o_not_yet", "海报")))
    assert "申请成为分销员" in answer["Content"] and "/distributor" in answer["Content"]


@pytest.mark.postgresql  # once-only
def test_other_text_is_acknowledged_and_deduped_by_msgid(live_server):
    xml = wx.text("o_chatty", "你好", msg_id=1234567890123456)
    for _ in range(2):
        res = wx.post(live_server.url, xml)
        assert res.status_code == 200 and res.text == "success"
    assert db.session.scalar(select(WechatMessageSeen.dedupe_key)) == "msg:1234567890123456"
    assert seen_count() == 1


# --- the follow-up job ---------------------------------------------------------------------------


@pytest.mark.postgresql  # once-only
def test_follow_queues_the_user_info_job_once_and_it_stores_the_profile(
    app, live_server, sandbox, make, shop
):
    """Through the stand-in's fan page: follow by QR; the job reads /cgi-bin/user/info."""
    from rq import Queue

    from app.core.redis import redis_for
    from app.wechat.qrcodes import qrcode_for
    from jobs.wechat import fetch_fan_info

    alice = distributor(make)
    code = qrcode_for(alice)
    db.session.commit()
    fan = sandbox.server.app.extensions["wechat_sandbox"].fan_for_nickname("韩梅梅")
    form = {"fan": fan.openid, "action": "scan", "ticket": code.ticket}
    res = requests.post(f"{sandbox.url}/sandbox/fans", data=form, timeout=10)
    assert res.status_code == 200 and "推荐" in res.text
    queue = Queue("default", connection=redis_for(app))
    jobs = [j for j in queue.get_jobs() if j.id.startswith("wechat-fan-info-")]
    assert [j.args for j in jobs] == [(fan.openid,)]
    assert fetch_fan_info(fan.openid) == "updated"
    db.session.expire_all()
    row = db.session.scalar(select(WechatFan).where(WechatFan.openid == fan.openid))
    assert row.unionid == fan.unionid
    assert row.subscribe_scene == "ADD_SCENE_QR_CODE"
    assert row.qr_scene == f"d:{alice.code}"
    assert db.session.scalar(select(User.unionid).where(User.openid == fan.openid)) == fan.unionid


def test_user_info_job_gives_up_on_an_unknown_openid(app_ctx, sandbox):
    from jobs.wechat import fetch_fan_info

    assert fetch_fan_info("o_nobody_at_wechat") == "refused"
