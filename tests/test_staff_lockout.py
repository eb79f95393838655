"""The staff login lockout cannot be used to lock the owner out: failures count per
(account, client address) and, much more slowly, per account; behind a trusted proxy the
client's address comes from X-Forwarded-For (ProxyFix), and without one that header is
ignored. Every lock that starts is in the audit log."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from app.admin.login_limits import (
    ACCOUNT_FREE_FAILURES,
    ACCOUNT_MAX_LOCK_SECONDS,
    ADDRESS_MAX_FAILURES,
    account_keys,
    account_lock_seconds,
    address_keys,
)
from app.core.models import AuditLog
from app.core.redis import get_redis
from app.extensions import db
from config import config_for
from tests.support.admin import fresh_client, sign_in, text
from tests.support.apps import second_app_running

ATTACKER = "203.0.113.5"
OWNER_HOME = "198.51.100.7"
OWNER_TRAVELLING = "198.51.100.99"


@pytest.fixture
def proxied_app(app) -> Iterator:
    """The same app (database, Redis) as deployed behind one proxy: TRUSTED_PROXIES=1."""
    with second_app_running(app, TRUSTED_PROXIES=1) as behind:
        yield behind


@pytest.fixture
def owner(make):
    return make.staff("boss", password="owner-password", role="owner")


def from_address(app, address: str):
    """A browser whose requests reach the app through the proxy, from ``address``."""
    client = fresh_client(app)
    client.environ_base["HTTP_X_FORWARDED_FOR"] = address
    return client


def locks() -> list[AuditLog]:
    db.session.expire_all()
    query = select(AuditLog).where(AuditLog.action == "staff.login_lock").order_by(AuditLog.id)
    return list(db.session.scalars(query))


def test_guessing_from_one_address_does_not_lock_the_owner_out(proxied_app, owner):
    attacker = from_address(proxied_app, ATTACKER)
    for attempt in range(ADDRESS_MAX_FAILURES - 1):
        assert sign_in(attacker, "boss", f"guess-{attempt}").status_code == 401
    locked = sign_in(attacker, "boss", "guess-last")
    assert locked.status_code == 429
    assert "登录失败次数过多，请 15 分钟后再试" in text(locked)
    assert int(locked.headers["Retry-After"]) == 15 * 60
    # Still locked for the attacker, even with the right password...
    assert sign_in(attacker, "boss", "owner-password").status_code == 429
    # ...while the owner, from home, signs in at once.
    home = from_address(proxied_app, OWNER_HOME)
    assert sign_in(home, "boss", "owner-password").status_code == 302
    assert home.get("/admin/").status_code == 200

    (row,) = locks()
    assert row.actor == f"ip:{ATTACKER}" and row.subject == "staff"
    assert row.subject_id == str(owner.id)
    assert row.after == {
        "username": "boss",
        "ip": ATTACKER,
        "scope": "address",
        "failures": ADDRESS_MAX_FAILURES,
        "lock_seconds": 15 * 60,
    }


def test_the_session_records_the_forwarded_address(proxied_app, owner):
    home = from_address(proxied_app, OWNER_HOME)
    assert sign_in(home, "boss", "owner-password").status_code == 302
    assert OWNER_HOME in text(home.get("/admin/account"))


def test_without_trusted_proxies_the_forwarded_header_is_ignored(app, owner):
    # TRUSTED_PROXIES=0 (development, tests): X-Forwarded-For is the client's to invent,
    # so rotating it neither spreads the guesses over addresses nor forges the owner's.
    for attempt in range(ADDRESS_MAX_FAILURES):
        response = sign_in(from_address(app, f"10.9.0.{attempt}"), "boss", f"guess-{attempt}")
    assert response.status_code == 429
    assert sign_in(from_address(app, OWNER_HOME), "boss", "owner-password").status_code == 429
    (row,) = locks()
    assert row.after["ip"] == "127.0.0.1"
    # The real other address (the socket's) is not locked.
    elsewhere = fresh_client(app)
    elsewhere.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    assert sign_in(elsewhere, "boss", "owner-password").status_code == 302


def _fail_from_many_addresses(app, count: int) -> None:
    """``count`` failures for "boss", spread so no single address reaches its lock."""
    per_address = ADDRESS_MAX_FAILURES - 1
    for n in range(count):
        client = from_address(app, f"192.0.2.{n // per_address + 1}")
        assert sign_in(client, "boss", f"guess-{n}").status_code in (401, 429)


def _wait_out(key: str) -> None:
    """Let a lock in Redis run out now instead of waiting its seconds."""
    get_redis().pexpire(key, 1)
    time.sleep(0.01)


def test_many_addresses_meet_a_capped_doubling_backoff_then_the_owner_gets_in(proxied_app, owner):
    home = from_address(proxied_app, OWNER_HOME)
    assert sign_in(home, "boss", "owner-password").status_code == 302  # home becomes known
    _fail_from_many_addresses(proxied_app, ACCOUNT_FREE_FAILURES)
    assert locks() == []  # the free allowance: no lock yet

    _fail_from_many_addresses(proxied_app, 1)  # one more: the account waits 30 s
    travel = from_address(proxied_app, OWNER_TRAVELLING)
    blocked = sign_in(travel, "boss", "owner-password")
    assert blocked.status_code == 429
    assert "该账号近期登录失败次数过多，已暂时锁定，请 30 秒后再试" in text(blocked)
    assert 0 < int(blocked.headers["Retry-After"]) <= 30
    # Attempts during the lock are refused unchecked and do not stretch it.
    counter = account_keys("boss")[0]
    failures = int(get_redis().get(counter))
    assert sign_in(from_address(proxied_app, "192.0.2.200"), "boss", "x").status_code == 429
    assert int(get_redis().get(counter)) == failures
    # The owner's usual address is not held by the account's backoff at all.
    assert (
        sign_in(from_address(proxied_app, OWNER_HOME), "boss", "owner-password").status_code == 302
    )

    _wait_out(account_keys("boss")[1])
    assert sign_in(from_address(proxied_app, "192.0.2.201"), "boss", "guess").status_code == 429
    again = sign_in(travel, "boss", "owner-password")
    assert again.status_code == 429 and "请 1 分钟后再试" in text(again)  # doubled: 60 s

    _wait_out(account_keys("boss")[1])
    assert sign_in(travel, "boss", "owner-password").status_code == 302  # after the wait
    assert travel.get("/admin/").status_code == 200
    # The owner signing in does not hand the guessers a fresh allowance.
    assert int(get_redis().get(counter)) == ACCOUNT_FREE_FAILURES + 2

    rows = [r.after for r in locks() if r.after["scope"] == "account"]
    assert [r["lock_seconds"] for r in rows] == [30, 60]
    assert [r["failures"] for r in rows] == [ACCOUNT_FREE_FAILURES + 1, ACCOUNT_FREE_FAILURES + 2]


def test_the_account_backoff_doubles_up_to_its_cap():
    waits = [account_lock_seconds(ACCOUNT_FREE_FAILURES + n) for n in range(0, 9)]
    assert waits == [0, 30, 60, 120, 240, 480, 900, 900, 900]
    assert account_lock_seconds(10**6) == ACCOUNT_MAX_LOCK_SECONDS


def test_unknown_usernames_lock_the_same_way(app_ctx, proxied_app):
    attacker = from_address(proxied_app, ATTACKER)
    for attempt in range(ADDRESS_MAX_FAILURES):
        response = sign_in(attacker, "nobody", f"guess-{attempt}")
    assert response.status_code == 429  # the answers never tell which accounts exist
    (row,) = locks()
    assert row.subject_id == "" and row.after["username"] == "nobody"
    assert get_redis().ttl(address_keys("nobody", ATTACKER)[1]) > 0


def test_trusted_proxies_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    assert config_for("test")["TRUSTED_PROXIES"] == 0  # development and tests trust none
    monkeypatch.setenv("TRUSTED_PROXIES", "1")
    assert config_for("test")["TRUSTED_PROXIES"] == 1
    for bad in ("one", "-1", "99"):
        monkeypatch.setenv("TRUSTED_PROXIES", bad)
        with pytest.raises(RuntimeError, match="TRUSTED_PROXIES"):
            config_for("test")
