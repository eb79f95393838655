"""The custom menu: ``flask wechat-menu publish`` and the owner's button reach the stand-in,
which checks it like WeChat; WeChat's refusals are shown in Chinese."""

from __future__ import annotations

import pytest
import requests

from app.wechat.menu import POSTER_KEY, error_text, menu_definition
from app.wechat.sandbox.messages import _menu_problem
from tests.support.admin import csrf_token, fresh_client, text


@pytest.fixture
def client(app):
    return fresh_client(app)


def published(sandbox) -> dict | None:
    return sandbox.server.app.extensions["wechat_sandbox_messages"].menu


@pytest.fixture
def no_menu(sandbox):
    """The stand-in forgets any menu before and after the test."""
    state = sandbox.server.app.extensions["wechat_sandbox_messages"]
    state.menu = None
    yield
    state.menu = None


def test_the_menu_is_what_wechat_accepts():
    menu = menu_definition("https://shop.example.com/")
    assert [b["name"] for b in menu["button"]] == ["商城", "我的推广", "个人中心"]
    assert menu["button"][0] == {"type": "view", "name": "商城", "url": "https://shop.example.com/"}
    assert menu["button"][1]["url"] == "https://shop.example.com/distributor"
    subs = menu["button"][2]["sub_button"]
    assert subs[0]["url"] == "https://shop.example.com/my"
    assert subs[1] == {"type": "click", "name": "关注有礼/生成海报", "key": POSTER_KEY}
    assert _menu_problem(menu) is None  # the stand-in's WeChat rules (name bytes, types)


def test_cli_publishes_the_menu_to_the_stand_in(app, runner, sandbox, no_menu):
    result = runner.invoke(args=["wechat-menu", "publish"])
    assert result.exit_code == 0, result.output
    assert "菜单已发布：商城、我的推广、个人中心" in result.output
    base = app.config["PUBLIC_BASE_URL"]
    assert published(sandbox) == menu_definition(base)
    # WeChat's own read-back of the menu, with our real client.
    with app.app_context():
        from app.wechat.clients import get_wechat_client

        assert get_wechat_client().menu.get()["menu"]["button"][0]["url"] == f"{base}/"


def test_cli_shows_wechats_refusal_in_chinese(app, runner, sandbox, no_menu):
    saved = app.config["PUBLIC_BASE_URL"]
    app.config["PUBLIC_BASE_URL"] = "ftp://shop.example.com"  # WeChat wants http(s) links
    try:
        result = runner.invoke(args=["wechat-menu", "publish"])
    finally:
        app.config["PUBLIC_BASE_URL"] = saved
    assert result.exit_code != 0
    assert "菜单发布失败：菜单链接不正确，或域名未在公众号后台登记（错误码 40055）" in result.output
    assert published(sandbox) is None


def test_cli_without_wechat_says_so(app, runner, no_menu):
    saved = app.config["WECHAT_API_BASE"]
    app.config["WECHAT_API_BASE"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    try:
        result = runner.invoke(args=["wechat-menu", "publish"])
    finally:
        app.config["WECHAT_API_BASE"] = saved
    assert result.exit_code != 0
    assert "菜单发布失败：无法连接微信接口" in result.output


def test_error_text():
    assert error_text(48001, "api unauthorized") == (
        "公众号没有自定义菜单接口的权限（需认证的服务号或订阅号）（错误码 48001）"
    )
    assert error_text(99999, "odd") == "微信返回错误 99999：odd"


def test_owner_publishes_from_the_admin_page(app, client, make, sandbox, no_menu):
    make.staff("boss", role="owner")
    token = csrf_token(client, "/admin/login")
    client.post(
        "/admin/login", data={"username": "boss", "password": "password123", "csrf_token": token}
    )
    page = client.get("/admin/wechat")
    assert page.status_code == 200
    assert "发布菜单" in text(page)
    token = csrf_token(client, "/admin/wechat")
    response = client.post("/admin/wechat/menu", data={"csrf_token": token})
    assert response.status_code == 302
    assert "菜单已发布" in text(client.get(response.headers["Location"]))
    assert published(sandbox) == menu_definition(app.config["PUBLIC_BASE_URL"])


def test_plain_staff_cannot_publish(app, client, make, sandbox, no_menu):
    make.staff("clerk", role="staff")
    token = csrf_token(client, "/admin/login")
    client.post(
        "/admin/login", data={"username": "clerk", "password": "password123", "csrf_token": token}
    )
    token = csrf_token(client, "/admin/wechat/messages")
    response = client.post("/admin/wechat/menu", data={"csrf_token": token})
    assert response.status_code == 403
    assert published(sandbox) is None


@pytest.mark.parametrize(
    ("menu", "errcode"),
    [
        ({"button": []}, 40016),
        ({"button": [{"type": "view", "name": "一二三四五六", "url": "https://a.cn/"}]}, 40018),
        ({"button": [{"type": "nope", "name": "商城", "key": "K"}]}, 40017),
        ({"button": [{"type": "click", "name": "商城"}]}, 40019),
        ({"button": [{"name": "更多", "sub_button": [{}] * 6}]}, 40023),
    ],
)
def test_the_stand_in_checks_menus_like_wechat(app, sandbox, menu, errcode):
    with app.app_context():
        from app.wechat.clients import get_wechat_client

        token = get_wechat_client().access_token
    answer = requests.post(
        f"{sandbox.url}/cgi-bin/menu/create", params={"access_token": token}, json=menu, timeout=5
    ).json()
    assert answer["errcode"] == errcode


def test_the_stand_in_wants_a_token(sandbox):
    answer = requests.post(f"{sandbox.url}/cgi-bin/menu/create", json={}, timeout=5).json()
    assert answer["errcode"] == 41001
