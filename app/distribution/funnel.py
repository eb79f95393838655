"""Counting the visits a distributor's links, posters and QR codes bring (推广效果).

A *visit* is a visitor on a Beijing day arriving through a distributor's code: an H5 page
view carrying ``?ref=CODE`` (``count_page_view``, called by ``referral.capture_ref``) or
a scan of the distributor's WeChat QR code (``count_scan``, called by the WeChat message
handler). Each visitor counts once per distributor and day, however many pages they
open; a product page also counts once per visitor for that product.

Who the visitor is: the signed-in customer (``u<user id>``), else a first-party cookie
(``fv``, a random id set on the first visit: ``c<id>``), else, for a scan by someone
without an account yet, the WeChat openid (``o<openid>``). When an anonymous visitor
signs in, what the cookie was counted in moves to the customer (``merge_on_sign_in``),
so opening a shared link, signing in and coming back stays one visit.

Counting must not slow the page (bench/funnel.py): it is one Redis call (a Lua script
adding the visitor to sets and refreshing their TTL), no database, no lookup of the code.
Unknown codes are counted too and dropped by the rollup, which maps codes to
distributors. Redis sets rather than HyperLogLogs: exact for the small numbers a
distributor sees, and a visitor can be moved at sign-in. The keys live
``FUNNEL_REDIS_DAYS`` days (default 3); the periodic rollup (jobs/funnel.py) copies each
day's counts into the database long before that. Redis not answering never breaks a page:
the visit is simply not counted.

Keys (``D`` is the Beijing day as YYYYMMDD):

- ``funnel:codes:D``: the codes that had visits on day D;
- ``funnel:v:D:CODE``: the visitors of CODE on day D;
- ``funnel:p:D:CODE``: the product ids whose pages CODE's visitors opened;
- ``funnel:v:D:CODE:PID``: the visitors of that product page;
- ``funnel:c:D:COOKIE``: the visitor sets an anonymous cookie was added to (for the
  move at sign-in).
"""

from __future__ import annotations

import logging
import secrets
from datetime import date

import redis
from flask import after_this_request, current_app, has_request_context, request
from flask_login import current_user

from app.core.redis import get_redis
from app.core.time import shop_today

log = logging.getLogger(__name__)

COOKIE = "fv"
COOKIE_MAX_AGE = 400 * 86400  # the longest browsers keep a cookie
TTL_DAYS = 3
PRODUCT_ENDPOINT = "shop.product"
_COOKIE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")

# KEYS: [1] visitors of the code's day, [2] codes of the day, then optionally
# [3] product page visitors and [4] products of the code's day (ARGV[4] == '1'), then
# optionally the anonymous cookie's record (ARGV[5] == '1', always the last key).
# ARGV: [1] visitor, [2] code, [3] product id, [4] product?, [5] record?, [6] TTL seconds.
_COUNT = """
local ttl = tonumber(ARGV[6])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ttl)
if ARGV[4] == '1' then
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ttl)
  redis.call('SADD', KEYS[4], ARGV[3])
  redis.call('EXPIRE', KEYS[4], ttl)
end
if ARGV[5] == '1' then
  local record = KEYS[#KEYS]
  redis.call('SADD', record, KEYS[1])
  if ARGV[4] == '1' then redis.call('SADD', record, KEYS[3]) end
  redis.call('EXPIRE', record, ttl)
end
return 1
"""


def day_key(day: date) -> str:
    """The day as the keys spell it: YYYYMMDD."""
    return day.strftime("%Y%m%d")


def visitors_key(day: date, code: str, product_id: int | None = None) -> str:
    """The set of visitors of ``code`` on ``day`` (of one product page when given)."""
    base = f"funnel:v:{day_key(day)}:{code}"
    return f"{base}:{product_id}" if product_id else base


def codes_key(day: date) -> str:
    return f"funnel:codes:{day_key(day)}"


def products_key(day: date, code: str) -> str:
    return f"funnel:p:{day_key(day)}:{code}"


def cookie_key(day: date, cookie: str) -> str:
    return f"funnel:c:{day_key(day)}:{cookie}"


def _ttl() -> int:
    return int(current_app.config.get("FUNNEL_REDIS_DAYS", TTL_DAYS)) * 86400


def _script(client: redis.Redis):
    """The counting script, registered once per app (EVALSHA, reloaded if Redis lost it)."""
    extensions = current_app.extensions
    script = extensions.get("funnel_count_script")
    if script is None:
        script = extensions["funnel_count_script"] = client.register_script(_COUNT)
    return script


def count(
    code: str,
    visitor: str,
    product_id: int | None = None,
    cookie: str | None = None,
    day: date | None = None,
) -> bool:
    """Add ``visitor`` to ``code``'s visitors of ``day`` (and of the product page).

    ``cookie``: the anonymous visitor's cookie id, recorded for ``merge_on_sign_in``.
    False when Redis did not answer (the visit is lost, the page is not).
    """
    day = day or shop_today()
    keys = [visitors_key(day, code), codes_key(day)]
    if product_id:
        keys += [visitors_key(day, code, product_id), products_key(day, code)]
    if cookie:
        keys.append(cookie_key(day, cookie))
    args = [visitor, code, product_id or 0, "1" if product_id else "0", "1" if cookie else "0"]
    try:
        client = get_redis()
        _script(client)(keys=keys, args=[*args, _ttl()], client=client)
    except (redis.RedisError, OSError) as exc:
        log.warning("funnel: visit of %s not counted: %s", code, exc)
        return False
    return True


def _cookie_id() -> str | None:
    raw = request.cookies.get(COOKIE)
    if raw and 8 <= len(raw) <= 32 and set(raw) <= _COOKIE_CHARS:
        return raw
    return None


def _set_cookie(value: str) -> None:
    """Send the visitor cookie with this response (the page body may come from the
    fragment cache; headers are the response's own)."""

    @after_this_request
    def _send(response):
        response.set_cookie(
            COOKIE,
            value,
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )
        return response


def count_page_view(code: str) -> None:
    """Count this H5 GET carrying ``?ref=CODE`` (code already checked for shape).

    Staff previewing the shop are not counted. An anonymous visitor without the cookie
    gets one with this response. ``FUNNEL_COUNTING = False`` turns counting off (the
    benchmark's baseline; an escape hatch should Redis struggle).
    """
    if not current_app.config.get("FUNNEL_COUNTING", True):
        return
    person = current_user
    product_id = None
    if request.endpoint == PRODUCT_ENDPOINT and request.view_args:
        product_id = request.view_args.get("product_id")
    if person.is_authenticated:
        if getattr(person, "is_staff", False):
            return
        count(code, f"u{person.id}", product_id)
        return
    cookie = _cookie_id()
    if cookie is None:
        cookie = secrets.token_urlsafe(12)
        _set_cookie(cookie)
    count(code, f"c{cookie}", product_id, cookie=cookie)


def count_scan(code: str, user_id: int | None, openid: str) -> bool:
    """Count a scan of ``code``'s QR code (a WeChat subscribe or SCAN event)."""
    return count(code, f"u{user_id}" if user_id else f"o{openid}")


def merge_on_sign_in(user_id: int) -> None:
    """Move today's visits counted under this browser's cookie to the customer who just
    signed in, so the same person is not counted twice. Never raises."""
    if not has_request_context():
        return
    cookie = _cookie_id()
    if cookie is None:
        return
    record = cookie_key(shop_today(), cookie)
    try:
        client = get_redis()
        keys = [k.decode() if isinstance(k, bytes) else k for k in client.smembers(record)]
        if not keys:
            return
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.srem(key, f"c{cookie}")
            pipe.sadd(key, f"u{user_id}")
        pipe.delete(record)
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("funnel: visits of cookie not moved to user %s: %s", user_id, exc)


def day_visits(day: date, codes: list[str] | None = None) -> dict[str, dict[int, int]]:
    """Visitors counted in Redis on ``day``: ``{code: {0: whole day, product id: n}}``.

    Every code seen that day when ``codes`` is None. Empty when Redis has nothing (or
    does not answer: the caller keeps what the database has).
    """
    try:
        client = get_redis()
        if codes is None:
            codes = sorted(c.decode() for c in client.smembers(codes_key(day)))
        if not codes:
            return {}
        pipe = client.pipeline(transaction=False)
        for code in codes:
            pipe.scard(visitors_key(day, code))
            pipe.smembers(products_key(day, code))
        first = pipe.execute()
        out: dict[str, dict[int, int]] = {}
        wanted: list[tuple[str, int]] = []
        for i, code in enumerate(codes):
            whole, products = first[2 * i], first[2 * i + 1]
            if whole:
                out[code] = {0: int(whole)}
            wanted += [(code, int(p)) for p in products]
        if wanted:
            for code, product_id in wanted:
                pipe.scard(visitors_key(day, code, product_id))
            for (code, product_id), n in zip(wanted, pipe.execute(), strict=True):
                if n:
                    out.setdefault(code, {0: 0})[product_id] = int(n)
        return out
    except (redis.RedisError, OSError) as exc:
        log.warning("funnel: visits of %s unavailable: %s", day, exc)
        return {}
