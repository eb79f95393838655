"""Staff accounts page: owner only; add, deactivate, reactivate."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.accounts.models import Staff
from app.extensions import db
from tests.support.admin import fresh_client, post, sign_in, text


@pytest.fixture
def client(app):
    """Overrides conftest's client: a fresh ``g`` per request (see FreshClient)."""
    return fresh_client(app)


@pytest.fixture
def owner(make):
    return make.staff("boss", role="owner")


@pytest.fixture
def owner_client(client, login_as, owner):
    login_as(client, owner)
    return client


def test_owner_adds_a_staff_account_that_can_sign_in(app, owner_client):
    page = text(owner_client.get("/admin/staff"))
    assert "员工账号" in page and "boss" in page
    data = {"username": "clerk", "password": "clerk-pass-1", "role": "staff"}
    response = post(owner_client, "/admin/staff", data)
    assert response.status_code == 302
    clerk = db.session.scalar(select(Staff).where(Staff.username == "clerk"))
    assert clerk.role == "staff" and clerk.active
    assert clerk.password_hash != "clerk-pass-1" and clerk.check_password("clerk-pass-1")
    other = fresh_client(app)
    assert sign_in(other, "clerk", "clerk-pass-1").status_code == 302
    # A plain clerk sees no staff menu and cannot open the page.
    assert "员工账号" not in text(other.get("/admin/"))
    assert other.get("/admin/staff").status_code == 403


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "boss", "password": "whatever-1"}, "用户名“boss”已存在"),
        ({"username": "ab", "password": "whatever-1"}, "用户名需为 3-64 位"),
        ({"username": "new", "password": "short"}, "密码至少 8 位"),
        ({"username": "new", "password": ""}, "请输入密码"),
        ({"username": "new", "password": "whatever-1", "role": "god"}, "不是有效的选择"),
    ],
)
def test_bad_staff_input_is_refused(owner_client, owner, data, message):
    response = post(owner_client, "/admin/staff", {"role": "staff", **data})
    assert response.status_code == 422
    assert message in text(response)
    assert db.session.scalar(select(func.count(Staff.id))) == 1
    db.session.refresh(owner)
    assert owner.check_password("password123")  # an existing account is never overwritten


def test_owner_deactivates_and_reactivates_staff(app, owner_client, make):
    clerk = make.staff("clerk", password="clerk-pass-1")
    clerk_client = fresh_client(app)
    assert sign_in(clerk_client, "clerk", "clerk-pass-1").status_code == 302

    response = post(owner_client, f"/admin/staff/{clerk.id}/active", {"active": "0"})
    assert response.status_code == 302
    db.session.refresh(clerk)
    assert not clerk.active
    # The clerk's open session ended with the deactivation, and signing in again is refused.
    replay = clerk_client.get("/admin/")
    assert replay.status_code == 302 and replay.headers["Location"].startswith("/admin/login")
    assert sign_in(clerk_client, "clerk", "clerk-pass-1").status_code == 403

    post(owner_client, f"/admin/staff/{clerk.id}/active", {"active": "1"})
    db.session.refresh(clerk)
    assert clerk.active
    # Reactivating does not bring the old session back: a new sign-in is needed.
    assert clerk_client.get("/admin/").status_code == 302
    assert sign_in(clerk_client, "clerk", "clerk-pass-1").status_code == 302


def test_owner_cannot_lock_themself_out(owner_client, owner):
    response = post(owner_client, f"/admin/staff/{owner.id}/active", {"active": "0"})
    assert response.status_code == 422
    assert "不能停用自己的账号" in text(response)
    db.session.refresh(owner)
    assert owner.active


def test_last_active_owner_cannot_be_deactivated(client, login_as, make):
    first = make.staff("boss1", role="owner")
    second = make.staff("boss2", role="owner")
    login_as(client, first)
    assert post(client, f"/admin/staff/{second.id}/active", {"active": "0"}).status_code == 302
    second.active = True
    first.active = False
    db.session.commit()
    login_as(client, second)
    # boss1 is already inactive; boss2 is the only active owner and may not go.
    response = post(client, f"/admin/staff/{second.id}/active", {"active": "0"})
    assert response.status_code == 422


def test_plain_staff_cannot_manage_accounts(client, login_as, make, owner):
    login_as(client, make.staff("clerk"))
    assert client.get("/admin/staff").status_code == 403
    response = post(
        client, "/admin/staff", {"username": "mole", "password": "mole-pass-1", "role": "owner"}
    )
    assert response.status_code == 403
    response = post(client, f"/admin/staff/{owner.id}/active", {"active": "0"})
    assert response.status_code == 403
    db.session.refresh(owner)
    assert owner.active
    assert db.session.scalar(select(Staff).where(Staff.username == "mole")) is None
