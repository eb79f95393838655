"""/admin/api-tokens (owner only): list tokens, make one showing its secret exactly once,
revoke one; the tokens made there work on the Open API with their scope, and the page's
changes are in the audit log."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.accounts.models import ApiToken
from app.core.models import AuditLog
from app.extensions import db
from tests.support.admin import fresh_client, post, text

SECRET_RE = re.compile(r"sk_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def client(app):
    """Overrides conftest's client: a fresh ``g`` per request (see FreshClient)."""
    return fresh_client(app)


@pytest.fixture
def owner(make):
    return make.staff("boss", role="owner")


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def test_only_the_owner_opens_the_page(app, client, login_as, make):
    assert client.get("/admin/api-tokens").status_code == 302  # to the login page
    login_as(client, make.staff("clerk", role="staff"))
    assert client.get("/admin/api-tokens").status_code == 403
    refused = client.post("/admin/api-tokens", data={"name": "x", "scope": "owner"})
    assert refused.status_code in (400, 403)
    assert db.session.scalar(select(ApiToken)) is None


def test_owner_makes_a_token_sees_it_once_and_it_works_with_its_scope(
    app, client, login_as, owner, runner
):
    login_as(client, owner)
    assert "还没有令牌" in text(client.get("/admin/api-tokens"))
    made = post(
        client,
        "/admin/api-tokens",
        {"name": "ERP 同步", "scope": "read", "expires_days": "30"},
        token_from="/admin/api-tokens",
    )
    assert made.status_code == 200
    assert made.headers["Cache-Control"] == "no-store"
    secrets = set(SECRET_RE.findall(text(made)))
    assert len(secrets) == 1
    secret = secrets.pop()

    # Never shown again: not on the list, not in the audit log.
    listing = text(client.get("/admin/api-tokens"))
    assert secret not in listing and not SECRET_RE.search(listing)
    assert "ERP 同步" in listing and "read" in listing and "从未使用" in listing
    token = db.session.scalar(select(ApiToken))
    assert token.scope == "read" and token.expires_at is not None
    assert token.token_hash == ApiToken.hash(secret)

    # It works for reads only.
    api = app.test_client()  # its own app context per request, as a server gives
    assert api.get("/api/v1/admin/products", headers=bearer(secret)).status_code == 200
    refused = api.post(
        "/api/v1/admin/distribution/grades", json={"name": "金"}, headers=bearer(secret)
    )
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "insufficient_scope"
    db.session.expire_all()  # the page shares this test's session (see FreshClient)
    assert "从未使用" not in text(client.get("/admin/api-tokens"))  # last use shown

    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "api_token.create"))
    assert entry.actor == f"staff:{owner.id}" and entry.subject == "api_token"
    assert entry.subject_id == str(token.id)
    assert entry.after["scope"] == "read" and "token_hash" not in entry.after
    assert secret not in str(entry.after)


@pytest.mark.parametrize(
    "data",
    [
        {"name": "", "scope": "write"},
        {"name": "x", "scope": "admin"},
        {"name": "x", "scope": "write", "expires_days": "0"},
        {"name": "x", "scope": "write", "expires_days": "9" * 40},
        {"name": "x", "scope": "write", "expires_days": "abc"},
        {"name": "长" * 65, "scope": "write"},
    ],
)
def test_bad_input_is_refused_with_a_reason(client, login_as, owner, data):
    login_as(client, owner)
    response = post(client, "/admin/api-tokens", data, token_from="/admin/api-tokens")
    assert response.status_code == 422
    assert 'role="alert"' in text(response)
    assert not SECRET_RE.search(text(response))
    assert db.session.scalar(select(ApiToken)) is None
    assert db.session.scalar(select(AuditLog)) is None


def test_revoke_button_ends_a_cli_token(app, client, login_as, owner, runner):
    secret = runner.invoke(args=["create-api-token", "erp", "--scope", "owner"]).output.strip()
    api = app.test_client()  # its own app context per request, as a server gives
    assert api.get("/api/v1/admin/orders", headers=bearer(secret)).status_code == 200
    token = db.session.scalar(select(ApiToken))
    login_as(client, owner)
    assert "erp" in text(client.get("/admin/api-tokens"))
    done = post(client, f"/admin/api-tokens/{token.id}/revoke", token_from="/admin/api-tokens")
    assert done.status_code == 302
    refused = api.get("/api/v1/admin/orders", headers=bearer(secret))
    assert refused.status_code == 401
    assert refused.get_json()["error"]["code"] == "token_revoked"
    assert "已撤销" in text(client.get("/admin/api-tokens"))
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "api_token.revoke"))
    assert entry.actor == f"staff:{owner.id}" and entry.subject_id == str(token.id)
    assert entry.before == {"revoked_at": None} and entry.after["revoked_at"]
    # Twice changes nothing more; an id past any row is a 404.
    post(client, f"/admin/api-tokens/{token.id}/revoke", token_from="/admin/api-tokens")
    assert (
        len(db.session.scalars(select(AuditLog).where(AuditLog.action == "api_token.revoke")).all())
        == 1
    )
    missing = post(client, f"/admin/api-tokens/{10**20}/revoke", token_from="/admin/api-tokens")
    assert missing.status_code == 404
