"""The local WeChat stand-in, spoken to over real HTTP like WeChat would be."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from config import SANDBOX_APPID, SANDBOX_SECRET
from tests.support.servers import ServerThread

REDIRECT = "http://127.0.0.1:9/login/callback?from=test"


def _state(sandbox):
    """The stand-in's in-memory state (read only: to learn a fan's openid)."""
    return sandbox.server.app.extensions["wechat_sandbox"]


def _calls(sandbox) -> dict[str, int]:
    return requests.get(f"{sandbox.url}/_sandbox/calls", timeout=5).json()["calls"]


def _code(base_url: str, nickname: str = "", scope: str = "snsapi_base", state: str = "abc"):
    """Pick (or type) a fan on the authorize page over HTTP; return the redirect's query."""
    form = {
        "appid": SANDBOX_APPID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": scope,
        "state": state,
        "nickname": nickname,
        "action": "allow",
    }
    res = requests.post(
        f"{base_url}/connect/oauth2/authorize", data=form, allow_redirects=False, timeout=5
    )
    assert res.status_code == 302, res.text
    location = res.headers["Location"]
    assert location.startswith("http://127.0.0.1:9/login/callback?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _exchange(base_url: str, code: str, appid=SANDBOX_APPID, secret=SANDBOX_SECRET) -> dict:
    params = {
        "appid": appid,
        "secret": secret,
        "code": code,
        "grant_type": "authorization_code",
    }
    return requests.get(f"{base_url}/sns/oauth2/access_token", params=params, timeout=5).json()


# --- base access token ------------------------------------------------------------------


def test_token_issues_a_new_token_each_time_and_old_ones_overlap(sandbox):
    params = {"grant_type": "client_credential", "appid": SANDBOX_APPID, "secret": SANDBOX_SECRET}
    first = requests.get(f"{sandbox.url}/cgi-bin/token", params=params, timeout=5).json()
    second = requests.get(f"{sandbox.url}/cgi-bin/token", params=params, timeout=5).json()
    assert first["expires_in"] == 7200 and "errcode" not in first
    assert first["access_token"] != second["access_token"]
    # the previous token keeps working during WeChat's 5-minute overlap
    ticket = requests.get(
        f"{sandbox.url}/cgi-bin/ticket/getticket",
        params={"access_token": first["access_token"], "type": "jsapi"},
        timeout=5,
    ).json()
    # The session's stand-in may have issued this ticket minutes ago: some life left, at most 2 h.
    assert ticket["errcode"] == 0 and ticket["ticket"] and 0 < ticket["expires_in"] <= 7200


@pytest.mark.parametrize(
    ("params", "errcode"),
    [
        ({"grant_type": "client_credential", "appid": "wx_wrong", "secret": SANDBOX_SECRET}, 40013),
        ({"grant_type": "client_credential", "appid": SANDBOX_APPID, "secret": "nope"}, 40125),
        ({"grant_type": "password", "appid": SANDBOX_APPID, "secret": SANDBOX_SECRET}, 40002),
        ({"grant_type": "client_credential", "secret": SANDBOX_SECRET}, 41002),
    ],
)
def test_token_errors_have_wechat_shape(sandbox, params, errcode):
    res = requests.get(f"{sandbox.url}/cgi-bin/token", params=params, timeout=5)
    body = res.json()
    assert res.status_code == 200  # WeChat reports errors in the body
    assert body["errcode"] == errcode
    assert "rid:" in body["errmsg"]
    assert "access_token" not in body


def test_stable_token_is_the_same_while_valid_and_force_refresh_renews(sandbox):
    body = {"grant_type": "client_credential", "appid": SANDBOX_APPID, "secret": SANDBOX_SECRET}
    url = f"{sandbox.url}/cgi-bin/stable_token"
    first = requests.post(url, json=body, timeout=5).json()
    again = requests.post(url, json={**body, "force_refresh": False}, timeout=5).json()
    assert first["access_token"] == again["access_token"]
    # Counting down from 2 h since the session's stand-in first issued it (maybe minutes ago).
    assert 0 < again["expires_in"] <= first["expires_in"] <= 7200
    forced = requests.post(url, json={**body, "force_refresh": True}, timeout=5).json()
    assert forced["access_token"] != first["access_token"]
    after = requests.post(url, json=body, timeout=5).json()
    assert after["access_token"] == forced["access_token"]


def test_stable_token_errors(sandbox):
    url = f"{sandbox.url}/cgi-bin/stable_token"
    assert requests.post(url, data="not json", timeout=5).json()["errcode"] == 47001
    wrong = {"grant_type": "client_credential", "appid": SANDBOX_APPID, "secret": "x"}
    assert requests.post(url, json=wrong, timeout=5).json()["errcode"] == 40125
    wrong_appid = {**wrong, "appid": "wxnope", "secret": SANDBOX_SECRET}
    assert requests.post(url, json=wrong_appid, timeout=5).json()["errcode"] == 40013


def test_getticket_needs_a_live_token(sandbox):
    url = f"{sandbox.url}/cgi-bin/ticket/getticket"
    body = requests.get(url, params={"access_token": "bogus", "type": "jsapi"}, timeout=5).json()
    assert body["errcode"] == 40001
    assert requests.get(url, params={"type": "jsapi"}, timeout=5).json()["errcode"] == 41001


def test_unknown_paths_answer_json(sandbox):
    res = requests.get(f"{sandbox.url}/cgi-bin/nothing-here", timeout=5)
    assert res.status_code == 404 and res.json()["errcode"] == 404


# --- OAuth ------------------------------------------------------------------------------


def test_authorize_page_lists_fans_in_chinese(sandbox):
    params = {
        "appid": SANDBOX_APPID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "xyz",
    }
    res = requests.get(f"{sandbox.url}/connect/oauth2/authorize", params=params, timeout=5)
    assert res.status_code == 200
    assert 'lang="zh-CN"' in res.text and "选择测试粉丝" in res.text
    assert "李雷" in res.text and "拒绝" in res.text
    assert "允许" not in res.text  # snsapi_base asks no consent
    consent = requests.get(
        f"{sandbox.url}/connect/oauth2/authorize",
        params={**params, "scope": "snsapi_userinfo"},
        timeout=5,
    )
    assert "允许" in consent.text and "获得你的公开信息" in consent.text


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"appid": "wxnotours"}, "10016"),
        ({"redirect_uri": "javascript:alert(1)"}, "10003"),
        ({"scope": "snsapi_login"}, "10005"),
        ({"state": "has spaces"}, "10009"),
    ],
)
def test_authorize_refuses_bad_requests(sandbox, override, code):
    params = {
        "appid": SANDBOX_APPID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "s1",
        **override,
    }
    res = requests.get(f"{sandbox.url}/connect/oauth2/authorize", params=params, timeout=5)
    assert res.status_code == 400
    assert code in res.text


def test_code_is_single_use_and_gives_a_stable_openid(sandbox):
    back = _code(sandbox.url, nickname="单次码测试")
    assert back["from"] == "test" and back["state"] == "abc"  # redirect_uri's own query kept
    token = _exchange(sandbox.url, back["code"])
    fan = _state(sandbox).fan_for_nickname("单次码测试")
    assert token["openid"] == fan.openid and fan.openid.startswith("o") and len(fan.openid) == 28
    assert token["scope"] == "snsapi_base" and token["expires_in"] == 7200
    assert "unionid" not in token  # WeChat gives it here only for snsapi_userinfo
    assert _exchange(sandbox.url, back["code"])["errcode"] == 40163
    # the same nickname always maps to the same openid
    again = _exchange(sandbox.url, _code(sandbox.url, nickname="单次码测试")["code"])
    assert again["openid"] == fan.openid


def test_code_exchange_errors(sandbox):
    code = _code(sandbox.url, nickname="错误码测试")["code"]
    assert _exchange(sandbox.url, code, appid="wxother")["errcode"] == 40013
    assert _exchange(sandbox.url, code, secret="wrong")["errcode"] == 40125
    assert _exchange(sandbox.url, "not-a-code")["errcode"] == 40029
    # refused calls did not burn the code
    assert _exchange(sandbox.url, code)["openid"]


def test_codes_expire_after_five_minutes():
    from app.wechat.sandbox import create_sandbox_app

    now = [1_800_000_000.0]
    stand_in = ServerThread(create_sandbox_app({"SANDBOX_CLOCK": lambda: now[0]})).start()
    try:
        fresh = _code(stand_in.url, nickname="过期测试")["code"]
        stale = _code(stand_in.url, nickname="过期测试")["code"]
        now[0] += 299
        assert _exchange(stand_in.url, fresh)["openid"]
        now[0] += 2
        assert _exchange(stand_in.url, stale)["errcode"] == 40029
    finally:
        stand_in.stop()


def test_deny_returns_only_state(sandbox):
    form = {
        "appid": SANDBOX_APPID,
        "redirect_uri": REDIRECT,
        "scope": "snsapi_userinfo",
        "state": "st8",
        "action": "deny",
    }
    res = requests.post(
        f"{sandbox.url}/connect/oauth2/authorize", data=form, allow_redirects=False, timeout=5
    )
    query = parse_qs(urlsplit(res.headers["Location"]).query)
    assert res.status_code == 302
    assert query == {"from": ["test"], "state": ["st8"]}


def test_choosing_nobody_re_renders_the_page(sandbox):
    form = {
        "appid": SANDBOX_APPID,
        "redirect_uri": REDIRECT,
        "scope": "snsapi_base",
        "state": "s",
        "action": "allow",
    }
    res = requests.post(f"{sandbox.url}/connect/oauth2/authorize", data=form, timeout=5)
    assert res.status_code == 400 and "请选择一个测试粉丝" in res.text


def test_userinfo_and_auth(sandbox):
    back = _code(sandbox.url, nickname="资料测试", scope="snsapi_userinfo")
    token = _exchange(sandbox.url, back["code"])
    assert token["scope"] == "snsapi_userinfo" and token["unionid"].startswith("ou")
    url = f"{sandbox.url}/sns/userinfo"
    params = {"access_token": token["access_token"], "openid": token["openid"], "lang": "zh_CN"}
    info = requests.get(url, params=params, timeout=5)
    assert "资料测试" in info.content.decode()  # raw UTF-8 like WeChat, not \u escapes
    body = info.json()
    assert body["nickname"] == "资料测试" and body["unionid"] == token["unionid"]
    avatar = requests.get(body["headimgurl"], timeout=5)
    assert avatar.headers["Content-Type"].startswith("image/svg+xml")
    wrong = requests.get(url, params={**params, "openid": "o_someone_else"}, timeout=5).json()
    assert wrong["errcode"] == 40003
    auth = requests.get(f"{sandbox.url}/sns/auth", params=params, timeout=5).json()
    assert auth == {"errcode": 0, "errmsg": "ok"}
    bad = requests.get(
        f"{sandbox.url}/sns/auth", params={**params, "access_token": "x"}, timeout=5
    ).json()
    assert bad["errcode"] == 40001


def test_userinfo_needs_the_userinfo_scope(sandbox):
    token = _exchange(sandbox.url, _code(sandbox.url, nickname="静默测试")["code"])
    body = requests.get(
        f"{sandbox.url}/sns/userinfo",
        params={"access_token": token["access_token"], "openid": token["openid"]},
        timeout=5,
    ).json()
    assert body["errcode"] == 48001


def test_refresh_token(sandbox):
    token = _exchange(sandbox.url, _code(sandbox.url, nickname="续期测试")["code"])
    params = {
        "appid": SANDBOX_APPID,
        "grant_type": "refresh_token",
        "refresh_token": token["refresh_token"],
    }
    url = f"{sandbox.url}/sns/oauth2/refresh_token"
    renewed = requests.get(url, params=params, timeout=5).json()
    assert renewed["openid"] == token["openid"]
    assert renewed["access_token"] != token["access_token"]
    bad = requests.get(url, params={**params, "refresh_token": "nope"}, timeout=5).json()
    assert bad["errcode"] == 40030


def test_calls_are_counted_per_path(sandbox):
    before = _calls(sandbox).get("/sns/auth", 0)
    requests.get(f"{sandbox.url}/sns/auth", timeout=5)
    assert _calls(sandbox)["/sns/auth"] == before + 1


def test_index_page(sandbox):
    res = requests.get(f"{sandbox.url}/", timeout=5)
    assert res.status_code == 200 and "本地微信模拟" in res.text and SANDBOX_APPID in res.text
