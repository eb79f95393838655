"""Failed staff sign-ins, limited in Redis so guessing is slow and nobody can lock the
owner out.

Two counters, keyed by the lower-cased username (known or not, so the answers never tell
which accounts exist):

- per (account, client address): after ``ADDRESS_MAX_FAILURES`` failures within
  ``ADDRESS_LOCK_SECONDS``, that address may not try that account for
  ``ADDRESS_LOCK_SECONDS``. Someone guessing from their own address locks only themself
  out; the owner's address stays open.
- per account, from every address together: ``ACCOUNT_FREE_FAILURES`` failures (counted
  until ``ACCOUNT_WINDOW_SECONDS`` pass without one) cost nothing more; each further
  failure locks the account for twice the wait of the one before, from
  ``ACCOUNT_FIRST_LOCK_SECONDS`` up to ``ACCOUNT_MAX_LOCK_SECONDS``. This bounds guessing
  spread over many addresses; the right password gets in again once the (capped) wait is
  over. An address the account signed in from within ``KNOWN_ADDRESS_SECONDS`` is not
  held by this lock (only by its own address lock): an attacker striking each time the
  wait ends could otherwise keep the owner out for good, and cannot make an address
  known without the password.

While a lock holds, attempts are refused before the password is checked and are not
counted, so hammering the door does not extend the wait. A successful sign-in clears its
address's counter and marks the address known; the account counter is left to run out,
so the owner signing in does not hand an attacker a fresh allowance. Each lock, when it
starts, is written to the audit log.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from app.core.audit import record
from app.core.redis import get_redis

ADDRESS_MAX_FAILURES = 5
ADDRESS_LOCK_SECONDS = 15 * 60
ACCOUNT_FREE_FAILURES = 20
ACCOUNT_WINDOW_SECONDS = 60 * 60
ACCOUNT_FIRST_LOCK_SECONDS = 30
ACCOUNT_MAX_LOCK_SECONDS = 15 * 60
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600

LOCK_ACTION = "staff.login_lock"


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _name(username: str) -> str:
    return (username or "").strip().lower()


def address_keys(username: str, ip: str) -> tuple[str, str]:
    """Redis keys of (failure counter, lock) for ``username`` from ``ip``."""
    digest = _digest(_name(username), ip)
    return f"admin:login:addr-failures:{digest}", f"admin:login:addr-lock:{digest}"


def account_keys(username: str) -> tuple[str, str]:
    """Redis keys of (failure counter, lock) for ``username`` from every address."""
    digest = _digest(_name(username))
    return f"admin:login:acct-failures:{digest}", f"admin:login:acct-lock:{digest}"


def known_address_key(username: str, ip: str) -> str:
    """Redis key marking that ``username`` signed in from ``ip`` recently."""
    return f"admin:login:known:{_digest(_name(username), ip)}"


@dataclass(frozen=True)
class Lock:
    """A sign-in refusal: which counter holds it and how many seconds remain."""

    scope: str  # "address" or "account"
    seconds: int

    @property
    def message(self) -> str:
        """The refusal in Chinese, saying how long to wait."""
        wait = wait_text(self.seconds)
        if self.scope == "account":
            return f"该账号近期登录失败次数过多，已暂时锁定，请 {wait}后再试"
        return f"登录失败次数过多，请 {wait}后再试"


def wait_text(seconds: int) -> str:
    """A wait in Chinese: "45 秒" under a minute, else whole minutes rounded up."""
    if seconds < 60:
        return f"{max(seconds, 1)} 秒"
    return f"{math.ceil(seconds / 60)} 分钟"


def _remaining(key: str) -> int:
    millis = get_redis().pttl(key)
    return math.ceil(millis / 1000) if millis and millis > 0 else 0


def current_lock(username: str, ip: str) -> Lock | None:
    """The lock that refuses ``username`` from ``ip`` right now (the longer one), or None."""
    address = _remaining(address_keys(username, ip)[1])
    account = _remaining(account_keys(username)[1])
    if account and get_redis().exists(known_address_key(username, ip)):
        account = 0  # an address this account signed in from is not held by the backoff
    if not address and not account:
        return None
    return Lock("account", account) if account > address else Lock("address", address)


def account_lock_seconds(failures: int) -> int:
    """How long the account locks after its ``failures``-th failure (0: not at all)."""
    over = failures - ACCOUNT_FREE_FAILURES
    if over <= 0:
        return 0
    # Beyond the cap the exponent no longer matters; bounded so it never grows huge.
    return min(ACCOUNT_FIRST_LOCK_SECONDS * 2 ** min(over - 1, 32), ACCOUNT_MAX_LOCK_SECONDS)


def record_failure(username: str, ip: str, staff_id: int | None = None) -> Lock | None:
    """Count one failed sign-in; start (and audit) the locks it earns.

    Returns the lock now in force, if this failure started one. Flushes the audit rows;
    the caller commits.
    """
    redis = get_redis()
    addr_count_key, addr_lock_key = address_keys(username, ip)
    acct_count_key, acct_lock_key = account_keys(username)
    pipe = redis.pipeline()
    pipe.set(addr_count_key, 0, ex=ADDRESS_LOCK_SECONDS, nx=True)  # a window from the first
    pipe.incr(addr_count_key)
    pipe.incr(acct_count_key)
    pipe.expire(acct_count_key, ACCOUNT_WINDOW_SECONDS)  # forgotten after an hour of quiet
    _, addr_failures, acct_failures, _ = pipe.execute()

    started: list[Lock] = []
    if int(addr_failures) >= ADDRESS_MAX_FAILURES:
        redis.set(addr_lock_key, 1, ex=ADDRESS_LOCK_SECONDS)
        redis.delete(addr_count_key)  # after the lock, a fresh allowance
        started.append(Lock("address", ADDRESS_LOCK_SECONDS))
        _audit(username, ip, staff_id, "address", int(addr_failures), ADDRESS_LOCK_SECONDS)
    wait = account_lock_seconds(int(acct_failures))
    if wait:
        redis.set(acct_lock_key, 1, ex=wait)
        started.append(Lock("account", wait))
        _audit(username, ip, staff_id, "account", int(acct_failures), wait)
    return max(started, key=lambda lock: lock.seconds) if started else None


def record_success(username: str, ip: str) -> None:
    """``username`` signed in from ``ip``: forget that address's failures and know it."""
    pipe = get_redis().pipeline()
    pipe.delete(address_keys(username, ip)[0])
    pipe.set(known_address_key(username, ip), 1, ex=KNOWN_ADDRESS_SECONDS)
    pipe.execute()


def _audit(
    username: str, ip: str, staff_id: int | None, scope: str, failures: int, seconds: int
) -> None:
    record(
        f"ip:{ip}",
        LOCK_ACTION,
        "staff",
        staff_id if staff_id is not None else "",
        None,
        {
            "username": _name(username)[:64],
            "ip": ip,
            "scope": scope,
            "failures": failures,
            "lock_seconds": seconds,
        },
    )
