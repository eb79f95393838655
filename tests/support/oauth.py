"""Helpers for signing in through the WeChat stand-in's OAuth pages."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from tests.support.servers import WECHAT_UA


def start_login(client, query: str = "next=/my", ua: str = WECHAT_UA):
    """GET /login and return (response, authorize query as a dict, fragment)."""
    res = client.get(f"/login?{query}", headers={"User-Agent": ua})
    if res.status_code != 302:
        return res, None, None
    parts = urlsplit(res.headers["Location"])
    return res, {k: v[0] for k, v in parse_qs(parts.query).items()}, parts.fragment


def pick_fan(sandbox, authorize: dict, nickname: str, action: str = "allow") -> str:
    """Post the stand-in's pick-a-fan form over HTTP; return where it redirects."""
    form = {**authorize, "nickname": nickname, "action": action}
    res = requests.post(
        f"{sandbox.url}/connect/oauth2/authorize", data=form, allow_redirects=False, timeout=5
    )
    assert res.status_code == 302, res.text
    return res.headers["Location"]


def local(url: str) -> str:
    """Path and query of a URL on our site (the test client's cookies are host-bound)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
