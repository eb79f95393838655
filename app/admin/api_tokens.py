"""Open API 令牌 (owner only): list every token, make one (its secret shown once, on the
answer to the form, never again), revoke one. Both changes are audited."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.accounts import tokens as svc
from app.accounts.models import API_SCOPES, ApiToken
from app.admin import bp
from app.admin.decorators import owner_required
from app.core.audit import audited, created, row
from app.core.params import bounded_int
from app.core.time import utcnow
from app.extensions import db


def _render(
    error: str | None = None,
    status: int = 200,
    secret: str | None = None,
    made: ApiToken | None = None,
    typed: dict | None = None,
):
    response = render_template(
        "admin/api_tokens.html",
        tokens=svc.all_tokens(),
        now=utcnow(),
        scopes=API_SCOPES,
        scope_labels=svc.SCOPE_LABELS,
        default_scope=svc.DEFAULT_SCOPE,
        max_days=svc.MAX_EXPIRES_DAYS,
        error=error,
        secret=secret,
        made=made,
        typed=typed or {},
    )
    # The page that shows a secret must not be kept by the browser or a proxy.
    return response, status, {"Cache-Control": "no-store"}


@bp.get("/api-tokens")
@owner_required
def api_tokens():
    """Every Open API token: name, scope, created, expires, last used, revoked."""
    return _render()


@bp.post("/api-tokens")
@owner_required
@audited("api_token.create", created(ApiToken, "api_token"))
def api_token_create():
    """Make a token and show its secret on this answer only."""
    form = request.form
    typed = {key: (form.get(key) or "")[:100] for key in ("name", "scope", "expires_days")}
    raw_days = typed["expires_days"].strip()
    days = bounded_int(raw_days, svc.MAX_EXPIRES_DAYS) if raw_days else None
    try:
        if raw_days and days is None:
            raise svc.TokenError(
                f"有效天数需为 1 到 {svc.MAX_EXPIRES_DAYS} 之间的整数，或留空表示长期有效"
            )
        token, secret = svc.create_token(typed["name"], typed["scope"], days)
    except svc.TokenError as exc:
        db.session.rollback()
        return _render(str(exc), 422, typed=typed)
    db.session.commit()
    return _render(secret=secret, made=token)


@bp.post("/api-tokens/<int:token_id>/revoke")
@owner_required
@audited("api_token.revoke", row(ApiToken, "token_id", "api_token"))
def api_token_revoke(token_id: int):
    """End a token at once; its row stays in the list, marked revoked."""
    token = db.get_or_404(ApiToken, token_id)
    if svc.revoke_token(token):
        db.session.commit()
        flash(f"已撤销令牌“{token.name}”，使用它的集成将立即无法访问", "success")
    else:
        flash(f"令牌“{token.name}”已经撤销过了", "error")
    return redirect(url_for("admin.api_tokens"))
