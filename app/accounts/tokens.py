"""Open API tokens: issue, revoke, list. They flush; the caller (CLI, admin page) commits.

The secret is returned once, by ``create_token``; only its SHA-256 is stored, so nobody
(the owner included) can read it again. A token's name says which integration holds it;
two live tokens may not share a name, so ``revoke-api-token NAME`` ends exactly one
integration's access.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select

from app.accounts.models import API_SCOPES, ApiToken
from app.core.time import utcnow
from app.extensions import db

# The default scope of a new token, when none is asked for: what an integration usually
# does (products, stock, shipping, refunds, approvals) is a write, so ``read`` would make
# the plain command useless to most; the owner's shop-wide money settings still need
# ``owner`` asked for by name, so a token made without thinking cannot change them.
DEFAULT_SCOPE = "write"
MAX_NAME = 64
MAX_EXPIRES_DAYS = 3650

SCOPE_LABELS = {
    "read": "只读（仅查询）",
    "write": "读写（店主专属设置除外）",
    "owner": "店主（含分销、代理分红等店主设置）",
}


class TokenError(ValueError):
    """A token request that cannot be carried out (message in Chinese)."""


def live_condition(now=None):
    """SQL: the token is neither revoked nor expired at ``now``."""
    now = now or utcnow()
    return (
        ApiToken.revoked_at.is_(None),
        or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now),
    )


def create_token(
    name: str, scope: str = DEFAULT_SCOPE, expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """A new token named ``name`` with ``scope``, expiring after ``expires_days`` days
    (None: never). Returns the row (flushed) and the secret, which is never shown again."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or "\x00" in name:
        raise TokenError(f"令牌名称需为 1-{MAX_NAME} 个字符")
    if scope not in API_SCOPES:
        raise TokenError("权限只能是 read、write 或 owner")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise TokenError(f"有效天数需在 1 到 {MAX_EXPIRES_DAYS} 之间")
    taken = db.session.scalar(
        select(ApiToken.id).where(ApiToken.name == name, *live_condition()).limit(1)
    )
    if taken is not None:
        raise TokenError(f"已有名为“{name}”的有效令牌，请换一个名称或先撤销它")
    now = utcnow()
    expires_at = now + timedelta(days=expires_days) if expires_days else None
    row, secret = ApiToken.issue(name, scope, expires_at)
    db.session.flush()
    return row, secret


def revoke_token(token: ApiToken) -> bool:
    """End ``token`` now; False when it was already revoked."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    db.session.flush()
    return True


def revoke_tokens_named(name: str) -> list[ApiToken]:
    """Revoke every unrevoked token called ``name`` (expired ones too, for the record)."""
    rows = list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.name == name.strip(), ApiToken.revoked_at.is_(None))
        )
    )
    for row in rows:
        revoke_token(row)
    return rows


def all_tokens() -> list[ApiToken]:
    """Every token, newest first (revoked and expired ones included)."""
    return list(db.session.scalars(select(ApiToken).order_by(ApiToken.id.desc())))
