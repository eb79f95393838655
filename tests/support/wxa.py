"""Helpers for the mini-program tests: ``wx.login`` at the stand-in, then our real door."""

from __future__ import annotations

import requests


def wx_login_code(sandbox, nickname: str) -> dict:
    """What ``wx.login()`` gives the fan called ``nickname`` inside the mini-program:
    ``{"code", "openid", "unionid"}`` (openid and unionid are for the test to compare)."""
    res = requests.post(f"{sandbox.url}/_sandbox/wxa/login", json={"nickname": nickname}, timeout=5)
    res.raise_for_status()
    return res.json()


def wxa_sign_in(client, sandbox, nickname: str, ref: str | None = None) -> dict:
    """Sign in through ``POST /api/v1/auth/wxa-login``; the token answer (asserted 200)."""
    body = {"code": wx_login_code(sandbox, nickname)["code"]}
    if ref:
        body["ref"] = ref
    res = client.post("/api/v1/auth/wxa-login", json=body)
    assert res.status_code == 200, res.json
    return res.json


def bearer(tokens: dict) -> dict:
    """The header a mini-program sends with every call."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def sandbox_calls(sandbox, path: str) -> int:
    """How often the stand-in answered ``path``."""
    return requests.get(f"{sandbox.url}/_sandbox/calls", timeout=5).json()["calls"].get(path, 0)
