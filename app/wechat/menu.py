"""The official account's custom menu (自定义菜单), published with ``/cgi-bin/menu/create``.

商城 opens the shop, 我的推广 the distributor centre, 个人中心 the customer's page, and
关注有礼 → 生成海报 is a click with key ``POSTER``: the message server (app/wechat/
messages.py) answers it with the fan's poster, like the keyword 海报.

Published by ``flask --app wsgi wechat-menu publish`` or the owner's button on the admin
公众号 page. WeChat replaces the whole menu each time, so publishing twice is harmless.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from wechatpy.exceptions import WeChatClientException

from app.wechat.clients import get_wechat_client

POSTER_KEY = "POSTER"

# WeChat's errcodes a merchant can meet here, in words they can act on.
MENU_ERRORS = {
    -1: "微信系统繁忙，请稍后再试",
    40001: "access_token 无效，请检查 AppID 与 AppSecret",
    40016: "菜单按钮数量不正确（一级菜单 1-3 个）",
    40017: "菜单按钮类型不正确",
    40018: "菜单名称过长（一级菜单最多 4 个汉字）",
    40019: "菜单 KEY 过长",
    40023: "子菜单数量不正确（最多 5 个）",
    40025: "子菜单名称过长",
    40055: "菜单链接不正确，或域名未在公众号后台登记",
    40054: "子菜单链接不正确，或域名未在公众号后台登记",
    40164: "服务器 IP 不在公众号的 IP 白名单中",
    42001: "access_token 已过期，请重试",
    45009: "今日接口调用次数已用完",
    48001: "公众号没有自定义菜单接口的权限（需认证的服务号或订阅号）",
}


class MenuError(Exception):
    """Publishing failed: ``message`` in Chinese for the merchant, ``errcode`` from WeChat."""

    def __init__(self, message: str, errcode: int | None = None):
        super().__init__(message)
        self.message = message
        self.errcode = errcode


def menu_definition(base_url: str) -> dict:
    """The menu, with links on ``base_url`` (PUBLIC_BASE_URL, the JS 安全域名)."""
    base = base_url.rstrip("/")
    return {
        "button": [
            {"type": "view", "name": "商城", "url": f"{base}/"},
            {"type": "view", "name": "我的推广", "url": f"{base}/distributor"},
            {
                "name": "个人中心",
                "sub_button": [
                    {"type": "view", "name": "个人中心", "url": f"{base}/my"},
                    {"type": "click", "name": "关注有礼/生成海报", "key": POSTER_KEY},
                ],
            },
        ]
    }


def error_text(errcode: int | None, errmsg: str = "") -> str:
    """A Chinese sentence for WeChat's answer (the code and WeChat's words for the rest)."""
    if errcode in MENU_ERRORS:
        return f"{MENU_ERRORS[errcode]}（错误码 {errcode}）"
    if errcode is None:
        return f"无法连接微信接口：{errmsg}" if errmsg else "无法连接微信接口"
    return f"微信返回错误 {errcode}：{errmsg}"


def publish_menu() -> dict:
    """Publish ``menu_definition`` for this app; return it. Raises ``MenuError``."""
    menu = menu_definition(current_app.config["PUBLIC_BASE_URL"])
    try:
        get_wechat_client().menu.create(menu)
    except WeChatClientException as err:
        raise MenuError(error_text(err.errcode, err.errmsg or ""), err.errcode) from None
    except OSError as err:  # requests' connection errors are OSErrors
        raise MenuError(error_text(None, str(err))) from None
    return menu


menu_cli = AppGroup("wechat-menu", help="The official account's custom menu.")


@menu_cli.command("publish")
def publish_command() -> None:
    """Publish 商城 / 我的推广 / 个人中心 (+ 生成海报) to WeChat."""
    try:
        menu = publish_menu()
    except MenuError as err:
        raise click.ClickException(f"菜单发布失败：{err.message}") from None
    names = "、".join(button["name"] for button in menu["button"])
    click.echo(f"菜单已发布：{names}")
