"""Open API token scopes, expiry, revocation and last use, through the real doors: tokens
made by ``flask create-api-token``, ended by ``flask revoke-api-token``, used over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.accounts.models import ApiToken
from app.core.models import AuditLog
from app.core.time import utcnow
from app.extensions import db


def create(runner, name: str, *options: str) -> str:
    result = runner.invoke(args=["create-api-token", name, *options])
    assert result.exit_code == 0, result.output
    secret = result.output.strip()
    assert secret.startswith("sk_")
    return secret


def token_row(secret: str) -> ApiToken:
    db.session.expire_all()
    return db.session.scalar(select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(secret)))


def call(client, secret: str, method: str, path: str, **kwargs):
    headers = {"Authorization": f"Bearer {secret}"}
    return client.open(f"/api/v1/admin{path}", method=method, headers=headers, **kwargs)


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


# One request of each kind: a read, an ordinary write, an owner-only setting.
READ = ("GET", "/products", None)
WRITE = ("POST", "/distribution/grades", {"name": "银牌"})
OWNER = ("PUT", "/distribution/settings", {"levels": 2})
OWNER_WRITES = (
    ("PUT", "/distribution/settings", {"levels": 2}),
    ("PUT", "/cloud/settings", {"agents_enabled": True}),
)


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        ("read", {"read"}),
        ("write", {"read", "write"}),
        ("owner", {"read", "write", "owner"}),
    ],
)
def test_each_scope_allows_its_requests_and_refuses_the_rest(
    app_ctx, client, runner, scope, allowed
):
    secret = create(runner, f"erp-{scope}", "--scope", scope)
    for kind, (method, path, body) in {"read": READ, "write": WRITE, "owner": OWNER}.items():
        response = call(client, secret, method, path, json=body)
        if kind in allowed:
            assert response.status_code in (200, 201), (kind, response.get_data(as_text=True))
        else:
            error = error_of(response, 403, "insufficient_scope")
            assert kind in error["message"]
            assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    if scope != "owner":
        for method, path, body in OWNER_WRITES:
            error_of(call(client, secret, method, path, json=body), 403, "insufficient_scope")
    # A refused write changed nothing.
    if scope == "read":
        assert call(client, secret, *READ[:2]).status_code == 200
        assert call(client, secret, "GET", "/distribution/grades").get_json()["items"] == []


def test_default_scope_is_write_and_owner_settings_stay_closed(app_ctx, client, runner):
    secret = create(runner, "erp")
    assert token_row(secret).scope == "write"
    assert call(client, secret, *WRITE[:2], json=WRITE[2]).status_code == 201
    error_of(call(client, secret, *OWNER[:2], json=OWNER[2]), 403, "insufficient_scope")
    # Reading the owner's settings is a read.
    assert call(client, secret, "GET", "/distribution/settings").status_code == 200


def test_expired_token_is_refused_with_its_own_code(app_ctx, client, runner):
    secret = create(runner, "short", "--expires-days", "1")
    row = token_row(secret)
    assert timedelta(hours=23) < row.expires_at - utcnow() <= timedelta(days=1)
    assert call(client, secret, *READ[:2]).status_code == 200
    row.expires_at = utcnow() - timedelta(seconds=1)  # a day later
    db.session.commit()
    response = call(client, secret, *READ[:2])
    error_of(response, 401, "token_expired")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # A new token may take the expired one's name.
    create(runner, "short")


def test_revoke_command_ends_the_token_at_once(app_ctx, client, runner):
    secret = create(runner, "erp", "--scope", "owner")
    other = create(runner, "shop-sync")
    assert call(client, secret, *READ[:2]).status_code == 200
    result = runner.invoke(args=["revoke-api-token", "erp"])
    assert result.exit_code == 0, result.output
    error_of(call(client, secret, *READ[:2]), 401, "token_revoked")
    error_of(call(client, secret, *OWNER[:2], json=OWNER[2]), 401, "token_revoked")
    assert call(client, other, *READ[:2]).status_code == 200  # only that one
    # Revoking again, or an unknown name, says so.
    assert runner.invoke(args=["revoke-api-token", "erp"]).exit_code != 0
    assert runner.invoke(args=["revoke-api-token", "nobody"]).exit_code != 0
    logged = db.session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    assert [(a.actor, a.action) for a in logged] == [
        ("cli", "api_token.create"),
        ("cli", "api_token.create"),
        ("cli", "api_token.revoke"),
    ]
    assert all("token_hash" not in a.after for a in logged)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["create-api-token", "x", "--scope", "admin"], "--scope"),
        (["create-api-token", "x", "--expires-days", "0"], "--expires-days"),
        (["create-api-token", "x", "--expires-days", "99999"], "--expires-days"),
    ],
)
def test_create_refuses_bad_options(app_ctx, runner, args, named):
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert f"Invalid value for '{named}'" in result.output
    assert db.session.scalar(select(ApiToken)) is None


@pytest.mark.postgresql  # unique constraints
def test_a_live_name_cannot_be_taken_twice(app_ctx, runner):
    create(runner, "erp")
    result = runner.invoke(args=["create-api-token", "erp", "--scope", "owner"])
    assert result.exit_code != 0
    assert "erp" in result.output
    runner.invoke(args=["revoke-api-token", "erp"])
    create(runner, "erp", "--scope", "owner")  # after revocation it is free


@pytest.mark.postgresql  # conditional update
def test_last_used_is_written_at_most_once_a_minute(app_ctx, client, runner):
    secret = create(runner, "erp", "--scope", "read")
    assert token_row(secret).last_used_at is None
    assert call(client, secret, *READ[:2]).status_code == 200
    first = token_row(secret).last_used_at
    assert first is not None and utcnow() - first < timedelta(seconds=30)
    assert call(client, secret, *READ[:2]).status_code == 200
    assert token_row(secret).last_used_at == first  # within the minute: no write
    row = token_row(secret)
    row.last_used_at = utcnow() - timedelta(minutes=2)
    db.session.commit()
    # A call refused for its scope still counts as a use (the token was shown).
    error_of(call(client, secret, *WRITE[:2], json=WRITE[2]), 403, "insufficient_scope")
    assert utcnow() - token_row(secret).last_used_at < timedelta(seconds=30)


def test_document_tells_each_operations_scope_and_refusals(client):
    document = client.get("/api/v1/openapi.json").get_json()
    admin = {
        (path, method): operation
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/admin/")
        for method, operation in operations.items()
    }
    assert len(admin) > 40
    for (path, method), operation in admin.items():
        assert {"401", "403"} <= set(operation["responses"]), (path, method)
        expected = "read" if method == "get" else "write"
        if (path, method) in {
            ("/api/v1/admin/distribution/settings", "put"),
            ("/api/v1/admin/cloud/settings", "put"),
            ("/api/v1/admin/agents/product-rates", "put"),
        }:
            expected = "owner"
        assert operation["x-token-scope"] == expected, (path, method)
    assert (
        "insufficient_scope"
        in document["components"]["securitySchemes"]["bearerAuth"]["description"]
    )


def test_tokens_made_before_scopes_keep_working_as_owner_tokens(redis_url, tmp_path):
    """The migration: a token row written before scopes existed upgrades to ``owner``, so
    an integration keeps every power it had (owner settings included) until replaced."""
    from pathlib import Path

    from flask_migrate import upgrade

    from app import create_app

    migrations = str(Path(__file__).resolve().parent.parent / "migrations")
    old = create_app(
        {
            "ENV_NAME": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'old.db'}",
            "REDIS_URL": redis_url,
        }
    )
    secret = "sk_made_before_scopes"
    with old.app_context():
        upgrade(directory=migrations, revision="439552e7cc3c")  # the schema before scopes
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO api_tokens (name, token_hash, created_at) VALUES (?, ?, ?)",
                ("erp", ApiToken.hash(secret), "2026-01-01 00:00:00"),
            )
        upgrade(directory=migrations)
        assert db.session.scalar(select(ApiToken.scope)) == "owner"
        db.session.remove()
    client = old.test_client()
    response = call(client, secret, *OWNER[:2], json=OWNER[2])
    assert response.status_code == 200, response.get_data(as_text=True)
    with old.app_context():
        db.session.remove()
        db.engine.dispose()
