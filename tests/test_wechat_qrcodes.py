"""Distributors' parametric QR codes: made at the stand-in, cached, renewed, scanned."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image
from sqlalchemy import select

from app.accounts.models import User
from app.core.time import utcnow
from app.distribution.binding import current_binding
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.distribution.models import Grade
from app.extensions import db
from app.wechat import qrcodes
from app.wechat.models import DistributorQrcode, WechatFan

pytestmark = pytest.mark.usefixtures("app_ctx")


@pytest.fixture
def shop(make):
    settings = get_distribution_settings()
    settings.bind_mode = "first_visit"
    settings.protection_days = 15
    db.session.commit()
    return settings


def distributor(make, nickname="分销员"):
    d = create_distributor(make.user(nickname=nickname).id, None)
    db.session.commit()
    return d


def calls(sandbox) -> dict[str, int]:
    return requests.get(f"{sandbox.url}/_sandbox/calls", timeout=5).json()["calls"]


def stand_in_tickets(sandbox) -> dict[str, dict]:
    data = requests.get(f"{sandbox.url}/_sandbox/fans/state", timeout=5).json()
    return {t["ticket"]: t for t in data["tickets"]}


@pytest.mark.postgresql  # once-only, counted cap
def test_temporary_code_is_made_once_and_cached(sandbox, make):
    alice = distributor(make)
    before = calls(sandbox).get("/cgi-bin/qrcode/create", 0)
    code = qrcodes.qrcode_for(alice)
    db.session.commit()
    assert not code.permanent and code.scene == f"d:{alice.code}"
    remaining = code.expires_at - utcnow()
    assert timedelta(days=29, hours=23) < remaining <= timedelta(days=30)
    issued = stand_in_tickets(sandbox)[code.ticket]
    assert issued["action_name"] == "QR_STR_SCENE" and issued["scene"] == f"d:{alice.code}"
    assert qrcodes.qrcode_for(alice).ticket == code.ticket
    assert calls(sandbox)["/cgi-bin/qrcode/create"] == before + 1


def test_code_is_made_again_within_a_day_of_expiry(sandbox, make):
    alice = distributor(make)
    first = qrcodes.qrcode_for(alice).ticket
    db.session.commit()
    later = utcnow() + timedelta(days=29, hours=1)
    renewed = qrcodes.qrcode_for(alice, now=later)
    db.session.commit()
    assert renewed.ticket != first
    assert db.session.scalars(select(DistributorQrcode)).all() == [renewed]  # one row, updated


def test_showqrcode_url_is_urlencoded_and_serves_a_png_of_the_url(sandbox, make):
    alice = distributor(make)
    code = qrcodes.qrcode_for(alice)
    db.session.commit()
    url = qrcodes.showqrcode_url(code.ticket)
    assert url.startswith(f"{sandbox.url}/cgi-bin/showqrcode?ticket=")
    assert "+" not in url.split("ticket=")[1] and "/" not in url.split("ticket=")[1]
    assert parse_qs(urlsplit(url).query)["ticket"] == [code.ticket]
    res = requests.get(url, timeout=5)
    assert res.status_code == 200 and res.headers["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(res.content))
    assert image.format == "PNG" and image.size[0] >= 200
    missing = requests.get(f"{sandbox.url}/cgi-bin/showqrcode?ticket=nope", timeout=5)
    assert missing.status_code == 404


def test_top_distributors_get_a_permanent_code(app, sandbox, make, monkeypatch):
    gold = Grade(name="金牌", rank=3)
    db.session.add(gold)
    alice = distributor(make)
    alice.grade_id = gold.id
    db.session.commit()
    monkeypatch.setitem(app.config, "WECHAT_PERMANENT_QR_MIN_GRADE_RANK", 3)
    code = qrcodes.qrcode_for(alice)
    db.session.commit()
    assert code.permanent and code.expires_at is None
    assert stand_in_tickets(sandbox)[code.ticket]["action_name"] == "QR_LIMIT_STR_SCENE"
    assert qrcodes.permanent_count() == 1
    assert qrcodes.qrcode_for(alice).ticket == code.ticket


@pytest.mark.postgresql  # once-only, counted cap
def test_past_the_permanent_cap_a_top_distributor_gets_a_temporary_code(
    app, sandbox, make, monkeypatch
):
    alice = distributor(make)
    monkeypatch.setattr(qrcodes, "PERMANENT_CAP", 0)  # the cap itself, not our functions
    code = qrcodes.qrcode_for(alice, permanent=True)
    db.session.commit()
    assert not code.permanent and code.expires_at is not None


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"action_name": "QR_NOPE", "action_info": {"scene": {"scene_str": "x"}}}, 40097),
        ({"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": ""}}}, 40097),
        ({"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "x" * 65}}}, 40097),
        ({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100001}}}, 40097),
        (
            {
                "action_name": "QR_STR_SCENE",
                "expire_seconds": "30",
                "action_info": {"scene": {"scene_str": "x"}},
            },
            40097,
        ),
    ],
)
def test_stand_in_validates_qrcode_create(app, sandbox, body, errcode):
    from app.wechat.clients import get_wechat_client

    token = get_wechat_client().access_token
    res = requests.post(
        f"{sandbox.url}/cgi-bin/qrcode/create", params={"access_token": token}, json=body, timeout=5
    ).json()
    assert res["errcode"] == errcode


def test_stand_in_clamps_expire_seconds_to_30_days(app, sandbox):
    from app.wechat.clients import get_wechat_client

    res = get_wechat_client().qrcode.create(
        {
            "action_name": "QR_STR_SCENE",
            "expire_seconds": 10**9,
            "action_info": {"scene": {"scene_str": "d:X"}},
        }
    )
    assert res["expire_seconds"] == 2_592_000


def test_stand_in_needs_a_live_token(sandbox):
    res = requests.post(f"{sandbox.url}/cgi-bin/qrcode/create", json={}, timeout=5).json()
    assert res["errcode"] == 41001
    res = requests.get(f"{sandbox.url}/cgi-bin/user/info?access_token=x&openid=o", timeout=5)
    assert res.json()["errcode"] == 40001


# --- the fan page, driven over HTTP -------------------------------------------------------------


def act(sandbox, **form) -> requests.Response:
    return requests.post(f"{sandbox.url}/sandbox/fans", data=form, timeout=10)


def reply_text(res: requests.Response) -> str:
    found = re.search(r'<div class="bubble" id="reply">(.*?)</div>', res.text, re.S)
    return unescape(found.group(1)) if found else ""


def test_fan_page_follow_then_scan_binds(live_server, sandbox, make, shop):
    """The shop has the stand-in's EncodingAESKey, so the page pushes in safe mode."""
    alice = distributor(make, "页面分销员")
    code = qrcodes.qrcode_for(alice)
    db.session.commit()
    page = requests.get(f"{sandbox.url}/sandbox/fans", timeout=5)
    assert page.status_code == 200 and "扮演粉丝" in page.text and code.ticket[:10] in page.text
    assert "安全模式（AES 加密）" in page.text
    nickname = "页面粉丝"

    res = act(sandbox, nickname=nickname, action="follow")
    assert res.status_code == 200 and reply_text(res).startswith("欢迎关注！")
    assert "&lt;Encrypt&gt;" in res.text  # the shop's raw reply is encrypted too
    fan = sandbox.server.app.extensions["wechat_sandbox"].fan_for_nickname(nickname)
    assert current_binding(_user(fan.openid).id) is None

    res = act(sandbox, fan=fan.openid, action="scan", ticket=code.ticket)
    assert "SCAN" in res.text  # already following: WeChat sends SCAN
    assert reply_text(res).startswith("欢迎回来！你由 页面分销员 推荐")
    db.session.expire_all()
    assert current_binding(_user(fan.openid).id).distributor_id == alice.id

    res = act(sandbox, fan=fan.openid, action="text", content="海报")
    assert "申请成为分销员" in reply_text(res)
    res = act(sandbox, fan=fan.openid, action="unfollow")
    assert "无被动回复" in res.text
    db.session.expire_all()
    assert not db.session.scalar(select(WechatFan).where(WechatFan.openid == fan.openid)).subscribed


def test_a_stand_in_without_the_aes_key_pushes_plaintext(plain_sandbox, make, shop):
    """A shop without an EncodingAESKey (plain mode): the stand-in pushes plaintext."""
    page = requests.get(f"{plain_sandbox.url}/sandbox/fans", timeout=5)
    assert "明文模式" in page.text and "安全模式" not in page.text
    res = act(plain_sandbox, nickname="明文粉丝", action="follow")
    assert res.status_code == 200 and reply_text(res).startswith("欢迎关注！")
    assert "&lt;Encrypt&gt;" not in res.text
    db.session.expire_all()
    assert db.session.scalar(select(WechatFan).where(WechatFan.subscribed.is_(True))) is not None


def test_fan_page_scan_when_not_following_subscribes_with_qrscene(live_server, sandbox, make, shop):
    alice = distributor(make, "扫码分销员")
    code = qrcodes.qrcode_for(alice)
    db.session.commit()
    res = act(sandbox, nickname="扫码新粉丝", action="scan", ticket=code.ticket)
    assert f"qrscene_d:{alice.code}" in unescape(res.text)
    assert "你由 扫码分销员 推荐" in reply_text(res)
    fan = sandbox.server.app.extensions["wechat_sandbox"].fan_for_nickname("扫码新粉丝")
    assert current_binding(_user(fan.openid).id).source == "qr"


def test_fan_page_refuses_bad_input(live_server, sandbox):
    assert act(sandbox, action="follow").status_code == 400  # nobody chosen
    res = act(sandbox, nickname="无效扫码", action="scan", ticket="gQnope")
    assert res.status_code == 400 and "二维码不存在或已过期" in res.text
    res = act(sandbox, nickname="话痨", action="text", content="")
    assert res.status_code == 400


def _user(openid: str) -> User:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.openid == openid))
