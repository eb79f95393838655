"""WeChat API clients bound to the app's configuration.

The same code runs against WeChat and against the local stand-in: only the origins
(``WECHAT_API_BASE``, ``WECHAT_OPEN_BASE``, ``WECHAT_MP_BASE``) change, the paths stay
exactly WeChat's (interfaces.md).

The base access token is shared by every process through Redis, and only one process
refreshes it at a time (a Redis lock). wechatpy keeps the token's expiry in the process
and lets every worker refetch at once when it goes stale (wechat-protocol.md §7, §9);
WeChat's ``/cgi-bin/token`` also invalidates the previous token on each fetch, so a
refresh storm logs everybody out. We use ``/cgi-bin/stable_token`` instead, which
returns the same token while it is valid.

The HTTP connection is kept: a client is made per app context (cheap), but its
``requests.Session`` (the connection pool) is one per thread and process
(``kept_http_session``), so a worker sending thousands of template messages opens one
HTTPS connection to WeChat and reuses it (keep-alive), instead of a TCP and TLS handshake
per message. The session keeps no cookies; the origin still comes from the config on
every call (a pool per host and port).
"""

from __future__ import annotations

import logging
import os
import threading
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from flask import current_app, g
from redis import Redis
from wechatpy import WeChatClient as _WeChatClient
from wechatpy import WeChatOAuth as _WeChatOAuth
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

from app.core.metrics import count_wechat_call
from app.core.redis import get_redis

logger = logging.getLogger(__name__)

# Seconds before WeChat's expiry at which we stop using a token: stable_token renews
# 5 minutes early too, so this never asks for a token WeChat would not renew yet.
TOKEN_SAFETY_MARGIN = 300
HTTP_TIMEOUT = 10  # seconds; WeChat answers in well under a second when it answers at all
# invalid credential, invalid access_token, access_token expired: refresh and retry once
TOKEN_ERRORS = (40001, 40014, 42001)
TICKET_SAFETY_MARGIN = 300  # the jsapi_ticket is renewed 5 minutes before WeChat's expiry


def _errcode(result: dict) -> int:
    try:
        return int(result.get("errcode") or 0)
    except (TypeError, ValueError):
        return -1


# Origins wechatpy writes into some of its URLs; each is swapped for the configured one.
_WECHAT_API_ORIGINS = (
    "https://api.weixin.qq.com",
    "http://api.weixin.qq.com",
    "https://file.api.weixin.qq.com",
)
_WECHAT_MP_ORIGINS = ("https://mp.weixin.qq.com", "http://mp.weixin.qq.com")


class WeChatClient(_WeChatClient):
    """wechatpy's official-account client with configurable origins and a shared token.

    ``api_base`` replaces ``https://api.weixin.qq.com`` (and ``mp_base`` replaces
    ``https://mp.weixin.qq.com``) in every request, including the URLs wechatpy hard-codes.
    """

    def __init__(
        self,
        appid: str,
        secret: str,
        *,
        redis: Redis,
        api_base: str,
        mp_base: str | None = None,
        timeout: float = HTTP_TIMEOUT,
    ):
        super().__init__(
            appid,
            secret,
            session=RedisStorage(redis, prefix="wechat"),
            timeout=timeout,
        )
        self.redis = redis
        self._refused_token: str | None = None
        self._retrying = threading.local()
        self.api_base = api_base.rstrip("/")
        self.mp_base = (mp_base or self.api_base).rstrip("/")
        # Per instance: the class attribute stays WeChat's for anyone else using wechatpy.
        self.API_BASE_URL = f"{self.api_base}/cgi-bin/"

    # --- origins ----------------------------------------------------------------------

    def rewrite_url(self, url: str) -> str:
        """Return ``url`` with WeChat's origin replaced by the configured one."""
        for origin in _WECHAT_API_ORIGINS:
            if url.startswith(origin):
                return self.api_base + url[len(origin) :]
        for origin in _WECHAT_MP_ORIGINS:
            if url.startswith(origin):
                return self.mp_base + url[len(origin) :]
        return url

    def _request(self, method, url_or_endpoint, **kwargs):
        if url_or_endpoint.startswith(("http://", "https://")):
            url_or_endpoint = self.rewrite_url(url_or_endpoint)
        if kwargs.get("api_base_url"):
            kwargs["api_base_url"] = self.rewrite_url(kwargs["api_base_url"])
        try:
            result = super()._request(method, url_or_endpoint, **kwargs)
        except WeChatClientException:
            count_wechat_call("mp", "error")
            raise
        except requests.RequestException:
            count_wechat_call("mp", "unreachable")
            raise
        count_wechat_call("mp", "ok")
        return result

    # --- the shared access token ------------------------------------------------------

    @property
    def lock_key(self) -> str:
        """Redis key of the lock held by whoever is refreshing this account's token."""
        return f"wechat:{self.appid}_access_token:lock"

    @property
    def access_token(self) -> str:
        """The account's access token: from Redis, or fetched by one process at a time."""
        token = self.session.get(self.access_token_key)
        if token:
            return token
        return self._refresh(stale=None)

    def fetch_access_token(self) -> dict[str, Any]:
        """Refresh the token after WeChat refused it (wechatpy calls this on 40001/42001).

        The stale token is the one the refused request carried, not what Redis holds now:
        when 20 callers are refused at once, the first refreshes and the other 19 find a
        different token in Redis and reuse it (no stampede, no forced refresh).
        """
        stale = self._refused_token or self.session.get(self.access_token_key)
        self._refused_token = None
        token = self._refresh(stale=stale)
        return {"access_token": token}

    def _handle_result(self, res, method=None, url=None, result_processor=None, **kwargs):
        # Remember which token WeChat refused before wechatpy asks for a new one, and
        # allow one refresh per request: a token refused right after a refresh is an
        # account problem (secret changed, IP not whitelisted), not a stale token.
        result = res if isinstance(res, dict) else self._decode_result(res)
        if isinstance(result, dict) and _errcode(result) in TOKEN_ERRORS:
            params = kwargs.get("params") or {}
            refused = params.get("access_token") if isinstance(params, dict) else None
            if getattr(self._retrying, "active", False):
                raise WeChatClientException(_errcode(result), result.get("errmsg", ""), client=self)
            self._refused_token = refused
            self._retrying.active = True
            try:
                return super()._handle_result(res, method, url, result_processor, **kwargs)
            finally:
                self._retrying.active = False
        return super()._handle_result(res, method, url, result_processor, **kwargs)

    def _refresh(self, stale: str | None) -> str:
        """Fetch a token under the Redis lock; waiters reuse what the holder stored."""
        wait = HTTP_TIMEOUT * 3  # the holder gives up on WeChat well before this
        with self.redis.lock(self.lock_key, timeout=wait, blocking_timeout=wait):
            # Somebody may have refreshed while we waited for the lock.
            token = self.session.get(self.access_token_key)
            if token and token != stale:
                return token
            result = self._stable_token(force_refresh=False)
            if stale and result["access_token"] == stale:
                # WeChat still calls it valid but refused it (e.g. someone used
                # /cgi-bin/token elsewhere): force a new one. Limited to 20 a day.
                result = self._stable_token(force_refresh=True)
            token = result["access_token"]
            expires_in = int(result.get("expires_in", 7200))
            self.session.set(
                self.access_token_key, token, max(expires_in - TOKEN_SAFETY_MARGIN, 60)
            )
            return token

    def check_credentials(self) -> dict[str, Any]:
        """Ask WeChat for the token now, cache or not (``flask doctor``); raises
        ``WeChatClientException`` when the appid and secret are refused."""
        return self._stable_token(force_refresh=False)

    def _stable_token(self, force_refresh: bool) -> dict[str, Any]:
        """POST /cgi-bin/stable_token and return its JSON, raising on an errcode."""
        logger.info("fetching WeChat stable access token (force_refresh=%s)", force_refresh)
        try:
            res = self._http.post(
                f"{self.api_base}/cgi-bin/stable_token",
                json={
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret,
                    "force_refresh": force_refresh,
                },
                timeout=self.timeout,
            )
            res.raise_for_status()
            result = res.json()
        except (requests.RequestException, ValueError) as exc:
            count_wechat_call("mp", "unreachable")
            raise WeChatClientException(None, f"stable_token failed: {exc}", client=self) from exc
        count_wechat_call("mp", "error" if result.get("errcode") else "ok")
        if result.get("errcode"):
            raise WeChatClientException(
                result["errcode"], result.get("errmsg", ""), client=self, response=res
            )
        if not result.get("access_token"):
            raise WeChatClientException(None, "stable_token returned no access_token", client=self)
        return result

    # --- the shared JS-SDK ticket ----------------------------------------------------------

    @property
    def jsapi_ticket_key(self) -> str:
        """Redis key of the cached jsapi_ticket (survives restarts, shared by processes)."""
        return f"wechat:{self.appid}_jsapi_ticket"

    def get_jsapi_ticket(self) -> str:
        """The JS-SDK jsapi_ticket: from Redis, or fetched by one process at a time.

        Like the access token: 7200 s, daily quota, and every process shares one
        (wechat-protocol.md §3). The lock's waiters reuse what the holder stored.
        """
        ticket = self.redis.get(self.jsapi_ticket_key)
        if ticket:
            return ticket.decode()
        lock_key = f"{self.jsapi_ticket_key}:lock"
        wait = HTTP_TIMEOUT * 3
        with self.redis.lock(lock_key, timeout=wait, blocking_timeout=wait):
            ticket = self.redis.get(self.jsapi_ticket_key)
            if ticket:
                return ticket.decode()
            result = self.get("ticket/getticket", params={"type": "jsapi"})
            value = result.get("ticket") if isinstance(result, dict) else None
            if not value:
                raise WeChatClientException(None, "getticket returned no ticket", client=self)
            expires_in = int(result.get("expires_in", 7200))
            self.redis.set(
                self.jsapi_ticket_key, value, ex=max(expires_in - TICKET_SAFETY_MARGIN, 60)
            )
            return value

    def drop_jsapi_ticket(self) -> None:
        """Forget the cached ticket (WeChat said it is invalid: 40097/42001 on a signature)."""
        self.redis.delete(self.jsapi_ticket_key)


class WeChatOAuth(_WeChatOAuth):
    """wechatpy's web OAuth client with configurable origins and a request timeout."""

    def __init__(
        self,
        app_id: str,
        secret: str,
        redirect_uri: str,
        *,
        api_base: str,
        open_base: str,
        scope: str = "snsapi_base",
        state: str = "",
        timeout: float = HTTP_TIMEOUT,
    ):
        super().__init__(app_id, secret, redirect_uri, scope=scope, state=state)
        self.API_BASE_URL = f"{api_base.rstrip('/')}/"
        self.OAUTH_BASE_URL = f"{open_base.rstrip('/')}/connect/"
        self.timeout = timeout

    def _request(self, method, url_or_endpoint, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super()._request(method, url_or_endpoint, **kwargs)


_kept = threading.local()


def kept_http_session() -> requests.Session:
    """This thread's ``requests.Session`` for WeChat's APIs, made once per thread and
    process (a forked child makes its own: sockets are never shared across a fork).

    Threads never share one (``requests.Session`` is not documented as thread-safe); the
    web threads, each worker's job thread and its ticker have one each. Cookies are
    refused: WeChat's APIs use none, and nothing of one call may leak into the next.
    """
    session = getattr(_kept, "session", None)
    if session is None or _kept.pid != os.getpid():
        session = requests.Session()
        session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        _kept.session, _kept.pid = session, os.getpid()
    return session


def client_for_context(key: str, appid_setting: str, secret_setting: str) -> WeChatClient:
    """An API client for the app id and secret named by two settings, made once per app
    context and kept on ``g`` under ``key`` (the official account, the mini-program)."""
    client = g.get(key)
    if client is None:
        config = current_app.config
        client = WeChatClient(
            config[appid_setting],
            config[secret_setting],
            redis=get_redis(),
            api_base=config["WECHAT_API_BASE"],
            mp_base=config.get("WECHAT_MP_BASE"),
        )
        client._http = kept_http_session()  # keep-alive across app contexts (jobs)
        setattr(g, key, client)
    return client


def get_wechat_client() -> WeChatClient:
    """The official-account API client for the current app (one per app context)."""
    return client_for_context("_wechat_client", "WECHAT_APPID", "WECHAT_SECRET")


def get_oauth(redirect_uri: str = "", scope: str = "snsapi_base", state: str = "") -> WeChatOAuth:
    """A web OAuth client for the current app's official account."""
    config = current_app.config
    return WeChatOAuth(
        config["WECHAT_APPID"],
        config["WECHAT_SECRET"],
        redirect_uri,
        api_base=config["WECHAT_API_BASE"],
        open_base=config["WECHAT_OPEN_BASE"],
        scope=scope,
        state=state,
    )


def get_jsapi_ticket() -> str:
    """The current app's JS-SDK jsapi_ticket (cached in Redis, one locked refresher)."""
    return get_wechat_client().get_jsapi_ticket()
