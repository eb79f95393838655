"""Staff sign-in: passwords, lockout, safe ``next``, CSRF, sign-out, create-staff command."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.accounts.models import Staff
from app.admin.login_limits import ADDRESS_LOCK_SECONDS, ADDRESS_MAX_FAILURES, address_keys
from app.catalog.models import Category
from app.core.redis import get_redis
from app.extensions import db
from tests.support.admin import csrf_token, fresh_client, sign_in, text


@pytest.fixture
def client(app):
    """Overrides conftest's client: a fresh ``g`` per request (see FreshClient)."""
    return fresh_client(app)


def test_login_page_is_chinese_with_a_csrf_token(client):
    response = client.get("/admin/login")
    assert response.status_code == 200
    body = text(response)
    assert "员工登录" in body and "用户名" in body and "密码" in body
    assert 'name="csrf_token"' in body


def test_login_success_goes_to_next_and_signs_in(client, make):
    staff = make.staff("clerk", password="right-password")
    response = sign_in(client, "clerk", "right-password", next_path="/admin/products?q=x")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/products?q=x"
    assert client.get("/admin/").status_code == 200
    db.session.refresh(staff)
    assert staff.last_login_at is not None


def test_passwords_are_stored_hashed(make):
    staff = make.staff("clerk", password="right-password")
    assert "right-password" not in staff.password_hash
    assert staff.password_hash.startswith(("scrypt:", "pbkdf2:"))


def test_wrong_password_and_unknown_user_get_the_same_generic_error(client, make):
    make.staff("clerk", password="right-password")
    wrong = sign_in(client, "clerk", "wrong-password")
    unknown = sign_in(client, "nobody", "wrong-password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "用户名或密码错误" in text(response)
    assert client.get("/admin/").status_code == 302  # still not signed in


def test_repeated_failures_lock_the_username_from_that_ip(client, make):
    make.staff("clerk", password="right-password")
    for attempt in range(1, ADDRESS_MAX_FAILURES + 1):
        response = sign_in(client, "clerk", f"guess-{attempt}")
    assert response.status_code == 429
    assert "登录失败次数过多，请 15 分钟后再试" in text(response)
    ttl = get_redis().ttl(address_keys("clerk", "127.0.0.1")[1])
    assert 0 < ttl <= ADDRESS_LOCK_SECONDS
    # Even the right password is refused while locked.
    locked = sign_in(client, "clerk", "right-password")
    assert locked.status_code == 429
    assert client.get("/admin/").status_code == 302
    # Another address is not locked out by someone else's guesses.
    other = fresh_client(client.application)
    other.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    assert sign_in(other, "clerk", "right-password").status_code == 302


def test_a_success_clears_earlier_failures(client, make):
    make.staff("clerk", password="right-password")
    for _ in range(ADDRESS_MAX_FAILURES - 1):
        sign_in(client, "clerk", "nope")
    assert sign_in(client, "clerk", "right-password").status_code == 302
    assert get_redis().get(address_keys("clerk", "127.0.0.1")[0]) is None


def test_next_must_be_a_local_admin_path(client, make):
    make.staff("clerk", password="right-password")
    for target in (
        "https://evil.example/admin/",
        "//evil.example/admin/",
        "/\\evil.example",
        "/shop",
        "javascript:alert(1)",
    ):
        fresh = fresh_client(client.application)
        response = sign_in(fresh, "clerk", "right-password", next_path=target)
        assert response.status_code == 302
        assert response.headers["Location"] == "/admin/", target


def test_inactive_staff_cannot_sign_in(client, make):
    staff = make.staff("gone", password="right-password")
    staff.active = False
    db.session.commit()
    response = sign_in(client, "gone", "right-password")
    assert response.status_code == 403
    assert "已停用" in text(response)
    assert client.get("/admin/").status_code == 302


def test_csrf_is_enforced_on_login_and_on_admin_forms(client, make):
    make.staff("clerk", password="right-password")
    response = client.post("/admin/login", data={"username": "clerk", "password": "right-password"})
    assert response.status_code == 400
    assert "页面已过期" in text(response)
    assert client.get("/admin/").status_code == 302
    # Signed in, a form posted without (or with a forged) token changes nothing.
    assert sign_in(client, "clerk", "right-password").status_code == 302
    assert client.post("/admin/categories", data={"name": "女装"}).status_code == 400
    forged = client.post("/admin/categories", data={"name": "女装", "csrf_token": "forged"})
    assert forged.status_code == 400
    assert db.session.scalar(select(Category)) is None
    token = csrf_token(client, "/admin/categories")
    ok = client.post("/admin/categories", data={"name": "女装", "csrf_token": token})
    assert ok.status_code == 302
    assert db.session.scalar(select(Category.name)) == "女装"


def test_logout_is_a_post_and_ends_the_session(client, make):
    make.staff("clerk", password="right-password")
    sign_in(client, "clerk", "right-password")
    assert client.get("/admin/logout").status_code == 405
    token = csrf_token(client, "/admin/")
    response = client.post("/admin/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login"
    assert client.get("/admin/").status_code == 302


def test_signed_in_staff_visiting_login_goes_to_the_dashboard(client, make):
    make.staff("clerk", password="right-password")
    sign_in(client, "clerk", "right-password")
    response = client.get("/admin/login")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"


def test_a_customer_may_sign_in_as_staff_from_the_login_page(client, login_as, make):
    login_as(client, make.user())
    assert client.get("/admin/").status_code == 403
    make.staff("clerk", password="right-password")
    assert sign_in(client, "clerk", "right-password").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_create_staff_command(runner, app_ctx):
    result = runner.invoke(
        args=["create-staff", "boss", "--password", "owner-password", "--role", "owner"]
    )
    assert result.exit_code == 0, result.output
    assert "created staff boss (owner)" in result.output
    staff = db.session.scalar(select(Staff).where(Staff.username == "boss"))
    assert staff.role == "owner" and staff.active
    assert staff.check_password("owner-password")
    # Running it again resets the password instead of making a second account.
    again = runner.invoke(args=["create-staff", "boss", "--password", "new-password-1"])
    assert again.exit_code == 0 and "updated" in again.output
    db.session.expire_all()
    assert db.session.scalar(select(Staff).where(Staff.username == "boss")).check_password(
        "new-password-1"
    )
    short = runner.invoke(args=["create-staff", "shorty", "--password", "123"])
    assert short.exit_code != 0
    assert "密码至少 8 位" in short.output


def test_command_made_account_can_sign_in(runner, client, app_ctx):
    runner.invoke(args=["create-staff", "clerk2", "--password", "clerk-password"])
    assert sign_in(client, "clerk2", "clerk-password").status_code == 302
