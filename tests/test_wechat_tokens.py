"""The shared access token and jsapi_ticket: one fetch for many callers, kept in Redis."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from app.core.redis import redis_for
from app.wechat.clients import (
    TICKET_SAFETY_MARGIN,
    TOKEN_SAFETY_MARGIN,
    get_jsapi_ticket,
    get_wechat_client,
)

CALLERS = 20


def calls(sandbox) -> dict[str, int]:
    return requests.get(f"{sandbox.url}/_sandbox/calls", timeout=5).json()["calls"]


def concurrently(app, work) -> list:
    """Run ``work`` in 20 threads, each with its own app context (like 20 requests)."""
    barrier = threading.Barrier(CALLERS)

    def one(_):
        with app.app_context():
            barrier.wait()
            return work()

    with ThreadPoolExecutor(CALLERS) as pool:
        return list(pool.map(one, range(CALLERS)))


def stand_in(sandbox):
    return sandbox.server.app.extensions["wechat_sandbox"]


def assert_kept_for(app, key: str, seconds_left: float, margin: int) -> None:
    """Redis keeps ``key`` for what WeChat said was left, less the safety margin.

    The stand-in lives for the whole test session and hands out the same token or ticket
    while it is valid, so what is left depends on when the session first asked for it:
    the expected TTL comes from the stand-in, not from a fixed 7200.
    """
    ttl = redis_for(app).ttl(key)
    expected = round(seconds_left) - margin
    assert expected - 60 <= ttl <= expected + 1, (ttl, expected)


def test_twenty_concurrent_callers_fetch_the_token_once(app, sandbox):
    before = calls(sandbox)
    tokens = concurrently(app, lambda: get_wechat_client().access_token)
    after = calls(sandbox)
    assert len(set(tokens)) == 1
    assert after["/cgi-bin/stable_token"] == before.get("/cgi-bin/stable_token", 0) + 1
    # never the clobbering endpoint (the stand-in's counters live for the whole session)
    assert after.get("/cgi-bin/token", 0) == before.get("/cgi-bin/token", 0)


def test_token_survives_a_restart_because_it_lives_in_redis(app, sandbox):
    with app.app_context():
        token = get_wechat_client().access_token
    before = calls(sandbox)["/cgi-bin/stable_token"]
    with app.app_context():  # a new process would build a new client the same way
        assert get_wechat_client().access_token == token
    assert calls(sandbox)["/cgi-bin/stable_token"] == before
    state = stand_in(sandbox)
    left = state.base_tokens[token].expires_at - state.now()
    key = f"wechat:{app.config['WECHAT_APPID']}_access_token"
    assert_kept_for(app, key, left, TOKEN_SAFETY_MARGIN)


def test_expired_token_is_refreshed_once_under_twenty_concurrent_callers(app, sandbox):
    """WeChat says 42001 to everyone at once: one refresh, no forced refresh, all succeed."""
    fan = stand_in(sandbox).fan_for_nickname("李雷")
    with app.app_context():
        assert get_wechat_client().access_token
    stand_in(sandbox).expire_base_tokens()
    before = calls(sandbox)["/cgi-bin/stable_token"]
    results = concurrently(app, lambda: get_wechat_client().user.get(fan.openid))
    assert all(r["openid"] == fan.openid for r in results)
    assert calls(sandbox)["/cgi-bin/stable_token"] == before + 1


def test_token_refused_while_wechat_still_calls_it_valid_is_force_refreshed(app, sandbox):
    """Someone used /cgi-bin/token elsewhere: WeChat says 40001; stable_token is forced."""
    with app.app_context():
        client = get_wechat_client()
        client.session.set(client.access_token_key, "a-token-wechat-no-longer-knows", 7000)
        fan = stand_in(sandbox).fan_for_nickname("韩梅梅")
        assert client.user.get(fan.openid)["openid"] == fan.openid
        assert client.session.get(client.access_token_key) != "a-token-wechat-no-longer-knows"


def test_twenty_concurrent_callers_fetch_the_jsapi_ticket_once(app, sandbox):
    before = calls(sandbox).get("/cgi-bin/ticket/getticket", 0)
    tickets = concurrently(app, get_jsapi_ticket)
    assert len(set(tickets)) == 1 and tickets[0] == stand_in(sandbox).jsapi().value
    assert calls(sandbox)["/cgi-bin/ticket/getticket"] == before + 1
    with app.app_context():
        assert get_jsapi_ticket() == tickets[0]  # from Redis
    assert calls(sandbox)["/cgi-bin/ticket/getticket"] == before + 1
    state = stand_in(sandbox)
    left = state.jsapi().expires_at - state.now()
    key = f"wechat:{app.config['WECHAT_APPID']}_jsapi_ticket"
    assert_kept_for(app, key, left, TICKET_SAFETY_MARGIN)
