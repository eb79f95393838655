"""WeChat web OAuth sign-in, end to end through the local stand-in over real HTTP.

The shop is driven with Flask's test client (its session cookie is the browser's); the
stand-in's authorize page is posted with ``requests`` like a fan's phone would, and the
shop's server-to-server calls (code exchange, userinfo, tokens) go over real HTTP too.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import event, func, select, text

from app.accounts.models import User
from app.accounts.oauth import safe_next
from app.extensions import db
from tests.support.oauth import local, pick_fan, start_login
from tests.support.servers import DESKTOP_UA, WECHAT_UA


def fan_openid(sandbox, nickname: str) -> str:
    """The openid the stand-in gives ``nickname`` (read from its state, to check ours)."""
    return sandbox.server.app.extensions["wechat_sandbox"].fan_for_nickname(nickname).openid


def signed_in_id(client) -> str | None:
    with client.session_transaction() as session:
        return session.get("_user_id")


def user_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def find_user(app, openid: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.openid == openid))
        if user is not None:
            db.session.expunge(user)
        return user


@contextmanager
def config(app, **overrides):
    """Change app settings for one test and put them back afterwards."""
    saved = {key: app.config.get(key) for key in overrides}
    app.config.update(overrides)
    try:
        yield
    finally:
        app.config.update(saved)


def test_round_trip_creates_the_user_and_returns_to_next(app, client, sandbox):
    client.set_cookie("wx_seen", "1")  # signed in here before: the silent scope
    res, authorize, fragment = start_login(client, "next=/my")
    assert res.status_code == 302
    assert res.headers["Location"].startswith(f"{sandbox.url}/connect/oauth2/authorize?")
    assert fragment == "wechat_redirect"
    assert authorize["appid"] == app.config["WECHAT_APPID"]
    assert authorize["redirect_uri"] == f"{app.config['PUBLIC_BASE_URL']}/login/callback"
    assert authorize["response_type"] == "code"
    assert authorize["scope"] == "snsapi_base"
    assert re.fullmatch(r"[A-Za-z0-9]{16,128}", authorize["state"])

    page = requests.get(res.headers["Location"], timeout=5)  # the fan's phone opens it
    assert page.status_code == 200 and "选择测试粉丝" in page.text

    back = pick_fan(sandbox, authorize, "往返测试")
    assert back.startswith(f"{app.config['PUBLIC_BASE_URL']}/login/callback?")
    assert parse_qs(urlsplit(back).query)["state"] == [authorize["state"]]
    done = client.get(local(back), headers={"User-Agent": WECHAT_UA})
    assert done.status_code == 302
    # signed in, but with no nickname yet: once round with snsapi_userinfo, then /my
    assert done.headers["Location"] == "/login?next=/my&scope=userinfo"

    user = find_user(app, fan_openid(sandbox, "往返测试"))
    assert user is not None and user.last_login_at is not None
    assert user.nickname == ""  # snsapi_base tells us nobody's name
    assert signed_in_id(client) == f"user:{user.id}"

    # signed in: /login goes straight back without WeChat
    again = client.get("/login?next=/cart", headers={"User-Agent": WECHAT_UA})
    assert again.headers["Location"] == "/cart"


def test_second_sign_in_finds_the_same_user(app, client, sandbox):
    for browser in (client, app.test_client()):  # e.g. a new phone, same WeChat account
        _, authorize, _ = start_login(browser, "next=/")
        assert browser.get(local(pick_fan(sandbox, authorize, "回头客"))).status_code == 302
    assert user_count(app) == 1


def test_state_mismatch_is_refused_and_creates_nobody(app, client, sandbox):
    _, authorize, _ = start_login(client)
    back = pick_fan(sandbox, {**authorize, "state": "forgedstate123"}, "伪造测试")
    res = client.get(local(back))
    assert res.status_code == 400
    assert "登录失败" in res.get_data(as_text=True)
    assert user_count(app) == 0 and signed_in_id(client) is None


def test_callback_without_a_login_in_progress_is_refused(app, client, sandbox):
    res = client.get("/login/callback?code=abc&state=abc")
    assert res.status_code == 400 and user_count(app) == 0


def test_denied_consent_shows_a_friendly_page(app, client, sandbox):
    _, authorize, _ = start_login(client, "next=/my&scope=userinfo")
    back = pick_fan(sandbox, authorize, "拒绝测试", action="deny")
    assert "code=" not in back
    res = client.get(local(back))
    text = res.get_data(as_text=True)
    assert res.status_code == 200
    assert "你没有完成微信授权" in text and "重新授权登录" in text
    assert user_count(app) == 0 and signed_in_id(client) is None


def test_code_replay_shows_an_error_page(app, client, sandbox):
    _, authorize, _ = start_login(client)
    back = pick_fan(sandbox, authorize, "重放测试")
    assert client.get(local(back)).status_code == 302
    # a second login attempt with the old, used code: WeChat answers 40163
    other = app.test_client()
    _, second, _ = start_login(other)
    code = parse_qs(urlsplit(back).query)["code"][0]
    res = other.get(f"/login/callback?code={code}&state={second['state']}")
    assert res.status_code == 400
    assert "授权码无效或已使用" in res.get_data(as_text=True)
    assert signed_in_id(other) is None


@pytest.mark.parametrize("evil", ["//evil.com", "http://evil.com/x", "/\\evil.com"])
def test_next_outside_the_site_is_ignored(app, client, sandbox, evil):
    _, authorize, _ = start_login(client, f"next={requests.utils.quote(evil, safe='')}")
    res = client.get(local(pick_fan(sandbox, authorize, "跳转测试")))
    assert res.status_code == 302 and res.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/my", "/my"),
        ("/product/3?sku=5&ref=ABC", "/product/3?sku=5&ref=ABC"),
        ("//evil.com", "/"),
        ("///evil.com", "/"),
        ("https://evil.com", "/"),
        ("https:evil.com", "/"),
        ("javascript:alert(1)", "/"),
        ("/\\evil.com", "/"),
        ("/\t/evil.com", "/"),
        ("/login?next=/my", "/"),
        ("", "/"),
        (None, "/"),
        ("/" + "a" * 2000, "/"),
    ],
)
def test_safe_next(value, expected):
    assert safe_next(value) == expected


def test_outside_wechat_asks_to_open_in_wechat_with_a_qr(app, client, sandbox):
    with config(app, ALLOW_SIGNIN_OUTSIDE_WECHAT=False):
        res, _, _ = start_login(client, "next=/my", ua=DESKTOP_UA)
        text = res.get_data(as_text=True)
        assert res.status_code == 200
        assert "请在微信中打开" in text
        assert '<svg class="qr"' in text and "<path" in text
        assert f"{app.config['PUBLIC_BASE_URL']}/my" in text
        with client.session_transaction() as session:
            assert "oauth_state" not in session
        # inside WeChat the same setting still signs in
        client.set_cookie("wx_seen", "1")
        res, authorize, _ = start_login(client, "next=/my", ua=WECHAT_UA)
        assert res.status_code == 302 and authorize["scope"] == "snsapi_base"


def test_development_lets_any_browser_reach_the_stand_in(app, client, sandbox):
    assert app.config["ALLOW_SIGNIN_OUTSIDE_WECHAT"] is True  # test/development default
    res, authorize, _ = start_login(client, "next=/my", ua=DESKTOP_UA)
    assert res.status_code == 302 and authorize["appid"]


def test_userinfo_scope_fills_nickname_avatar_and_unionid(app, client, sandbox):
    _, authorize, _ = start_login(client, "next=/my&scope=userinfo")
    assert authorize["scope"] == "snsapi_userinfo"
    page = requests.get(f"{sandbox.url}/connect/oauth2/authorize", params=authorize, timeout=5)
    assert "允许" in page.text
    res = client.get(local(pick_fan(sandbox, authorize, "小明同学")))
    assert res.headers["Location"] == "/my"
    user = find_user(app, fan_openid(sandbox, "小明同学"))
    assert user.nickname == "小明同学"
    assert user.avatar_url.startswith(sandbox.url)
    assert user.unionid and user.unionid.startswith("ou")


def test_wechat_error_shows_a_page_not_a_500(app, client, sandbox):
    _, authorize, _ = start_login(client)
    back = pick_fan(sandbox, authorize, "密钥错误测试")
    with config(app, WECHAT_SECRET="wrong-secret"):
        res = client.get(local(back))
    assert res.status_code == 400 and "登录失败" in res.get_data(as_text=True)
    assert user_count(app) == 0


def test_wechat_unreachable_shows_a_page_not_a_500(app, client, sandbox):
    from tests.support.servers import free_port

    _, authorize, _ = start_login(client)
    back = pick_fan(sandbox, authorize, "断网测试")
    with config(app, WECHAT_API_BASE=f"http://127.0.0.1:{free_port()}"):
        res = client.get(local(back))
    assert res.status_code == 502 and "暂时连不上微信" in res.get_data(as_text=True)


@pytest.mark.postgresql  # once-only
def test_concurrent_callbacks_for_one_new_fan_make_one_user(app, sandbox):
    clients = [app.test_client() for _ in range(4)]
    backs = []
    for c in clients:
        _, authorize, _ = start_login(c, "next=/my")
        backs.append(local(pick_fan(sandbox, authorize, "并发新粉丝")))
    barrier = threading.Barrier(len(clients))
    results: list[int] = []

    def call(c, url):
        barrier.wait()
        results.append(c.get(url).status_code)

    pairs = zip(clients, backs, strict=True)
    threads = [threading.Thread(target=call, args=pair) for pair in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [302] * len(clients)
    assert user_count(app) == 1
    assert len({signed_in_id(c) for c in clients}) == 1


@pytest.mark.postgresql  # once-only
def test_sign_in_race_resolves_through_the_unique_constraint(app):
    """Deterministic race: B reads 'no such user' before A commits, then inserts; its
    INSERT ... ON CONFLICT DO NOTHING yields nothing and B reads A's row."""
    from app.accounts.services import sign_in_wechat_user

    inserts: list[str] = []

    def count_user_inserts(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO users"):
            inserts.append(statement)

    with app.app_context():
        event.listen(db.engine, "after_cursor_execute", count_user_inserts)
        try:
            # A is inside a longer transaction. (pysqlite opens a transaction only at the
            # first write.)
            db.session.execute(text("DELETE FROM users WHERE id = -1"))
            first = sign_in_wechat_user("o_race_openid_000000000000", nickname="甲")
            result: dict = {}

            def second():
                with app.app_context():
                    user = sign_in_wechat_user("o_race_openid_000000000000")
                    db.session.commit()
                    result["id"] = user.id

            thread = threading.Thread(target=second)
            thread.start()
            thread.join(0.5)  # B has selected (nothing committed yet) and waits on A's insert
            db.session.commit()
            thread.join(30)
            assert result["id"] == first.id
        finally:
            event.remove(db.engine, "after_cursor_execute", count_user_inserts)
    assert user_count(app) == 1
    assert len(inserts) == 2, "the race path (a second, conflicting INSERT) was not taken"


def test_logout_needs_csrf_and_signs_out(app, client, sandbox):
    _, authorize, _ = start_login(client)
    client.get(local(pick_fan(sandbox, authorize, "退出测试")))
    assert signed_in_id(client)
    assert client.post("/logout").status_code == 400  # no CSRF token
    page = client.get("/logout").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    res = client.post("/logout", data={"csrf_token": token})
    assert res.status_code == 302 and signed_in_id(client) is None


# --- the shop's base access token -------------------------------------------------------


def _calls(sandbox) -> dict[str, int]:
    return requests.get(f"{sandbox.url}/_sandbox/calls", timeout=5).json()["calls"]


def test_two_workers_needing_a_token_cause_one_stable_token_call(app, sandbox):
    from app.wechat.clients import get_wechat_client

    counts = _calls(sandbox)
    before = counts.get("/cgi-bin/stable_token", 0)
    barrier = threading.Barrier(2)
    tokens: list[str] = []

    def worker():
        with app.app_context():
            client = get_wechat_client()
            barrier.wait()
            tokens.append(client.access_token)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(tokens) == 2 and tokens[0] == tokens[1]
    assert _calls(sandbox).get("/cgi-bin/stable_token", 0) == before + 1
    # never the old /cgi-bin/token, whose every call invalidates the previous token
    assert _calls(sandbox).get("/cgi-bin/token", 0) == counts.get("/cgi-bin/token", 0)


def test_refused_token_is_refreshed_once_and_the_call_retried(app, sandbox):
    from app.wechat.clients import get_wechat_client

    stand_in = sandbox.server.app.extensions["wechat_sandbox"]
    with app.app_context():
        client = get_wechat_client()
        old = client.access_token
        stand_in.expire_base_tokens()  # WeChat now answers 42001 to the cached token
        before = _calls(sandbox).get("/cgi-bin/stable_token", 0)
        ticket = client.jsapi.get_ticket()  # through API_BASE_URL: the stand-in's path
        assert ticket["errcode"] == 0 and ticket["ticket"]
        assert client.access_token != old
        assert _calls(sandbox)["/cgi-bin/stable_token"] == before + 1


def test_client_origins_come_from_config(app, sandbox):
    from app.wechat.clients import get_oauth, get_wechat_client

    with app.app_context():
        client = get_wechat_client()
        api_base_url = client.API_BASE_URL
        assert api_base_url == f"{sandbox.url}/cgi-bin/"
        assert client.rewrite_url("https://api.weixin.qq.com/customservice/kfaccount/add") == (
            f"{sandbox.url}/customservice/kfaccount/add"
        )
        oauth = get_oauth("http://x/cb", state="s")
        assert oauth.authorize_url.startswith(f"{sandbox.url}/connect/oauth2/authorize?")


# --- in a browser -----------------------------------------------------------------------


@pytest.mark.browser
def test_browser_signs_in_through_the_stand_in(app, page, live_server, sandbox, artifacts):
    page.goto(f"{live_server.url}/login?next=/")
    page.wait_for_url(f"{sandbox.url}/connect/oauth2/authorize?**")
    assert page.get_by_text("选择测试粉丝").is_visible()
    page.screenshot(path=str(artifacts / "sandbox-authorize.png"), full_page=True)

    page.locator("label.fan", has_text="李雷").click()
    page.locator("button[name=action][value=allow]").click()  # 确认登录 or 允许
    page.wait_for_url(f"{live_server.url}/")

    cookies = {c["name"]: c for c in page.context.cookies(live_server.url)}
    assert "session" in cookies and cookies["session"]["httpOnly"]
    user = find_user(app, fan_openid(sandbox, "李雷"))
    assert user is not None and user.last_login_at is not None


@pytest.mark.browser
def test_browser_outside_wechat_shows_a_qr_code(app, browser, live_server, artifacts):
    context = browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 375, "height": 812})
    try:
        with config(app, ALLOW_SIGNIN_OUTSIDE_WECHAT=False):
            page = context.new_page()
            page.goto(f"{live_server.url}/login?next=/my")
            assert page.get_by_role("heading", name="请在微信中打开").is_visible()
            box = page.locator("svg.qr").bounding_box()
            assert box and box["width"] >= 150  # big enough to scan from a screen
            page.screenshot(path=str(artifacts / "open-in-wechat.png"))
    finally:
        context.close()
