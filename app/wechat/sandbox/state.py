"""In-memory state of the WeChat stand-in: fans, tokens, OAuth codes, call counts.

One ``SandboxState`` per stand-in app, guarded by one lock: the stand-in is served by a
threaded server, and tests hit it from several threads at once. Nothing is persisted;
restarting the stand-in is like WeChat forgetting every token (openids stay the same,
they are derived from the appid and the nickname).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

TOKEN_TTL = 7200  # seconds, like WeChat's access tokens and jsapi tickets
TOKEN_OVERLAP = 300  # an old base token keeps working 5 minutes after a new one is issued
CODE_TTL = 300  # OAuth codes live 5 minutes and are single-use
REFRESH_TTL = 30 * 86400  # OAuth refresh tokens: 30 days

DEFAULT_FANS = ("张小凡", "李雷", "韩梅梅")


def _digest_id(prefix: str, *parts: str, length: int = 28) -> str:
    """A stable WeChat-looking id (openids are 28 chars starting with 'o')."""
    raw = hashlib.sha256("\x1f".join(parts).encode()).digest()
    text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return (prefix + text)[:length]


def fan_openid(appid: str, nickname: str) -> str:
    """The openid the stand-in gives the fan called ``nickname`` under ``appid`` (stable, so
    a seed can make a shop user that signing in as this fan finds)."""
    return _digest_id("o", appid, nickname.strip())


def fan_unionid(nickname: str) -> str:
    """The unionid of the fan called ``nickname`` (when the stand-in gives unionids)."""
    return _digest_id("ou", "sandbox-open-platform", nickname.strip())


@dataclass
class Fan:
    """A test WeChat user who can sign in through the authorize page."""

    openid: str
    unionid: str
    nickname: str
    created_at: float


@dataclass
class Token:
    """Something issued with an expiry: a base token, a web token, a ticket."""

    value: str
    expires_at: float
    extra: dict = field(default_factory=dict)


@dataclass
class OAuthCode:
    """A code handed to redirect_uri after the fan chose (single-use, 5 minutes)."""

    code: str
    appid: str
    openid: str
    scope: str
    expires_at: float
    used: bool = False


class SandboxState:
    """Everything the stand-in remembers, behind one lock."""

    def __init__(
        self,
        appid: str,
        secret: str,
        clock: Callable[[], float] | None = None,
        fans: tuple[str, ...] = DEFAULT_FANS,
    ):
        self.appid = appid
        self.secret = secret
        self.clock = clock or time.time
        self.lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.fans: dict[str, Fan] = {}
        # base tokens by value; the current /cgi-bin/token and /cgi-bin/stable_token values
        self.base_tokens: dict[str, Token] = {}
        self.current_token: str | None = None
        self.current_stable_token: str | None = None
        self.codes: dict[str, OAuthCode] = {}
        self.web_tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.jsapi_ticket: Token | None = None
        for nickname in fans:
            self.fan_for_nickname(nickname)

    # --- bookkeeping ------------------------------------------------------------------

    def count(self, path: str) -> None:
        """Count one call to ``path`` (tests read the counts to see who called what)."""
        with self.lock:
            self.calls[path] += 1

    def now(self) -> float:
        return self.clock()

    # --- fans -------------------------------------------------------------------------

    def fan_for_nickname(self, nickname: str) -> Fan:
        """The fan called ``nickname``, created on first use with a stable openid."""
        nickname = nickname.strip()
        openid = fan_openid(self.appid, nickname)
        with self.lock:
            fan = self.fans.get(openid)
            if fan is None:
                fan = Fan(
                    openid=openid,
                    unionid=fan_unionid(nickname),
                    nickname=nickname,
                    created_at=self.now(),
                )
                self.fans[openid] = fan
            return fan

    def list_fans(self) -> list[Fan]:
        """Fans in the order they were created."""
        with self.lock:
            return sorted(self.fans.values(), key=lambda f: f.created_at)

    # --- base access token ------------------------------------------------------------

    def _issue_base_token(self) -> Token:
        token = Token(secrets.token_urlsafe(96)[:128], self.now() + TOKEN_TTL)
        self.base_tokens[token.value] = token
        return token

    def _retire(self, value: str | None) -> None:
        """An older token keeps working for a short overlap, as WeChat's do."""
        old = self.base_tokens.get(value or "")
        if old:
            old.expires_at = min(old.expires_at, self.now() + TOKEN_OVERLAP)

    def issue_token(self) -> Token:
        """``/cgi-bin/token``: a new token every time; the previous one fades out."""
        with self.lock:
            self._retire(self.current_token)
            token = self._issue_base_token()
            self.current_token = token.value
            return token

    def stable_token(self, force_refresh: bool) -> Token:
        """``/cgi-bin/stable_token``: the same token while it has over 5 minutes left."""
        with self.lock:
            current = self.base_tokens.get(self.current_stable_token or "")
            if current and not force_refresh and current.expires_at - self.now() > TOKEN_OVERLAP:
                return current
            self._retire(self.current_stable_token)
            token = self._issue_base_token()
            self.current_stable_token = token.value
            return token

    def check_base_token(self, value: str | None) -> int:
        """0 when ``value`` is a live base token, else WeChat's errcode (40001, 42001)."""
        with self.lock:
            token = self.base_tokens.get(value or "")
            if token is None:
                return 40001
            return 0 if token.expires_at > self.now() else 42001

    def expire_base_tokens(self) -> None:
        """Make every base token stale at once (tests of the refresh path)."""
        with self.lock:
            for token in self.base_tokens.values():
                token.expires_at = self.now() - 1

    def jsapi(self) -> Token:
        """The jsapi_ticket, the same one while valid."""
        with self.lock:
            if self.jsapi_ticket is None or self.jsapi_ticket.expires_at - self.now() <= 0:
                self.jsapi_ticket = Token(secrets.token_urlsafe(64)[:86], self.now() + TOKEN_TTL)
            return self.jsapi_ticket

    # --- OAuth ------------------------------------------------------------------------

    def issue_code(self, openid: str, scope: str) -> OAuthCode:
        """A fresh single-use code for ``openid``."""
        with self.lock:
            code = OAuthCode(
                code=secrets.token_hex(16),
                appid=self.appid,
                openid=openid,
                scope=scope,
                expires_at=self.now() + CODE_TTL,
            )
            self.codes[code.code] = code
            return code

    def redeem_code(self, value: str) -> tuple[int, OAuthCode | None]:
        """Use a code once: (0, code), or (40029 unknown/expired | 40163 used, None)."""
        with self.lock:
            code = self.codes.get(value or "")
            if code is None or code.expires_at <= self.now():
                return 40029, None
            if code.used:
                return 40163, None
            code.used = True
            return 0, code

    def issue_web_token(self, openid: str, scope: str) -> tuple[Token, Token]:
        """A web access token (7200 s) and its refresh token (30 days) for one fan."""
        with self.lock:
            extra = {"openid": openid, "scope": scope}
            access = Token(secrets.token_urlsafe(64)[:89], self.now() + TOKEN_TTL, extra)
            refresh = Token(secrets.token_urlsafe(64)[:89], self.now() + REFRESH_TTL, extra)
            self.web_tokens[access.value] = access
            self.refresh_tokens[refresh.value] = refresh
            return access, refresh

    def web_token(self, value: str | None) -> tuple[int, Token | None]:
        """Look up a web access token: (0, token), or (40001 / 42001, None)."""
        with self.lock:
            token = self.web_tokens.get(value or "")
            if token is None:
                return 40001, None
            if token.expires_at <= self.now():
                return 42001, None
            return 0, token

    def refresh_web_token(self, value: str | None) -> tuple[int, Token | None]:
        """Look up a refresh token: (0, token), or (40030 invalid / 42002 expired, None)."""
        with self.lock:
            token = self.refresh_tokens.get(value or "")
            if token is None:
                return 40030, None
            if token.expires_at <= self.now():
                return 42002, None
            return 0, token
