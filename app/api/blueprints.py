"""The two API blueprints and the checks every request on them passes first.

``bp`` (``/api/v1``) is the customer side: the session cookie after WeChat OAuth. Every
write needs a signed-in customer (401 first, so an anonymous caller learns to sign in) and
then the ``X-CSRFToken`` header: CSRFProtect's app-wide check is turned off for ``bp`` (in
register_api) and run here, after the sign-in check.
``admin_bp`` (``/api/v1/admin``) is the merchant Open API: a bearer token, never a
cookie, so it is CSRF-exempt (in register_api) and every request must show a live token
whose scope covers it: ``read`` for GET, ``write`` for other methods, ``owner`` for the
views marked ``@requires_scope("owner")`` (the Open API twins of owner-only admin pages).

On both, a path and query longer than ``MAX_URI_LENGTH`` bytes answers 414 before anything
else (below gunicorn's own request-line limit of 4094, so clients get the JSON answer).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from flask import Blueprint, current_app, g, request
from flask_login import current_user
from sqlalchemy import select

from app.accounts.models import API_SCOPES, ApiToken
from app.accounts.tokens import SCOPE_LABELS
from app.api.spec import BEARER, spec
from app.core.errors import ApiError
from app.core.time import utcnow
from app.extensions import csrf, db

bp = Blueprint("api", __name__, url_prefix="/api/v1")
admin_bp = Blueprint("api_admin", __name__, url_prefix="/api/v1/admin")

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_URI_LENGTH = 4000
MAX_TOKEN_LENGTH = 256
# last_used_at is for the merchant's "is this token still used?" question; minute
# precision is plenty and spares a write on every call of a busy integration.
TOUCH_INTERVAL = timedelta(minutes=1)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SCOPE_ATTR = "_api_scope"
PATH_ARG = re.compile(r"<(?:[^:<>]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
BEARER_DESCRIPTION = (
    "商家 Open API 令牌：Authorization: Bearer sk_...（`flask create-api-token 名称 "
    "--scope read|write|owner [--expires-days N]` 或后台 /admin/api-tokens 创建）。"
    "权限：read 仅 GET；write 还可进行写操作（店主专属设置除外）；owner 全部。"
    "每个操作所需权限见 x-token-scope。401 错误码：invalid_token、token_revoked、"
    "token_expired；403：insufficient_scope。"
)
REFUSED_401 = (
    "缺少令牌，或令牌无效（invalid_token）、已撤销（token_revoked）、已过期（token_expired）"
)
REFUSED_403 = "令牌权限不足（insufficient_scope）"


class InvalidToken(ApiError):
    """401 for a missing, unknown, revoked or expired bearer token, with the RFC 6750
    header; ``code`` tells the integration which (``token_revoked``, ``token_expired``)."""

    def __init__(self, message: str, given: bool, code: str = "invalid_token"):
        super().__init__(401, code, message)
        challenge = 'Bearer realm="api"'
        if given:
            challenge += ', error="invalid_token"'
        self.challenge = challenge

    def to_response(self):
        body, status = super().to_response()
        return body, status, {"WWW-Authenticate": self.challenge}


class InsufficientScope(ApiError):
    """403 for a live token whose scope does not cover the request (RFC 6750 §3.1)."""

    def __init__(self, needed: str):
        super().__init__(
            403,
            "insufficient_scope",
            f"API 令牌权限不足：此操作需要 {needed} 权限（{SCOPE_LABELS[needed]}）",
        )
        self.challenge = f'Bearer realm="api", error="insufficient_scope", scope="{needed}"'

    def to_response(self):
        body, status = super().to_response()
        return body, status, {"WWW-Authenticate": self.challenge}


def refuse_long_uri() -> None:
    """414 for a path and query string longer than ``MAX_URI_LENGTH`` bytes."""
    length = len(request.path.encode("utf-8")) + len(request.query_string)
    if length > MAX_URI_LENGTH:
        raise ApiError(414, "uri_too_long", f"请求地址过长（不能超过 {MAX_URI_LENGTH} 字节）")


PUBLIC_ATTR = "_api_public_write"


def public_write(view: Callable) -> Callable:
    """Mark a customer-side write that needs no sign-in (the mini-program's sign-in,
    refresh and sign-out doors, which carry their own credential in the body)."""
    setattr(view, PUBLIC_ATTR, True)
    return view


def require_customer_for_writes() -> None:
    """A write on the customer side needs a signed-in customer, then a valid CSRF token.

    Sign-in comes first: an anonymous POST answers 401 ("请先登录"), not a CSRF error
    that would send a client looking for a token it cannot get without signing in.
    A request carrying ``Authorization: Bearer`` (a mini-program) needs no CSRF token: a
    page on another site cannot add that header without a CORS preflight we never allow.
    """
    if request.method not in WRITE_METHODS:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, PUBLIC_ATTR, False):
        return
    person = current_user
    if not person.is_authenticated or getattr(person, "is_staff", False):
        raise ApiError(401, "unauthorized", "请先登录")
    scheme = request.headers.get("Authorization", "").strip().partition(" ")[0]
    if scheme.lower() != "bearer":
        csrf.protect()


def require_json_object() -> None:
    """A request body must be a JSON object sent as application/json.

    An endpoint whose spectree metadata names a JSON model needs one; elsewhere a body is
    optional, but when sent it follows the same rule. spectree itself reads bodies with
    ``get_json(silent=True) or {}``, which would quietly turn broken JSON, a form post or
    a missing body into an empty object; this check answers them instead.
    """
    if request.method not in BODY_METHODS:
        return
    has_body = bool(request.get_data(cache=True))
    if not has_body and not _expects_json_body():
        return
    if not has_body:
        raise ApiError(400, "invalid_json", "缺少 JSON 请求体")
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "请求体需为 JSON（Content-Type: application/json）"
        )
    try:
        payload = request.get_json(silent=True)
    except RecursionError:  # absurdly deep nesting: json raises this, not ValueError
        payload = None
    if payload is None:
        raise ApiError(400, "invalid_json", "请求体不是有效的 JSON")
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", "请求体需为 JSON 对象")


def _expects_json_body() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    metadata = spec.get_function_metadata(view) if view is not None else None
    return bool(metadata and metadata.json)


def requires_scope(scope: str) -> Callable[[Callable], Callable]:
    """Mark an Open API view as needing ``scope`` (``owner`` for the owner's settings).

    Without a mark a view needs ``read`` for GET and ``write`` for any other method;
    ``require_api_token`` reads the mark before the view (or its body) is touched.
    """
    if scope not in API_SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def mark(view: Callable) -> Callable:
        setattr(view, SCOPE_ATTR, scope)
        return view

    return mark


def needed_scope() -> str:
    """The scope the current Open API request needs."""
    view = current_app.view_functions.get(request.endpoint or "")
    marked = getattr(view, SCOPE_ATTR, None) if view is not None else None
    if marked is not None:
        return marked
    return "read" if request.method in READ_METHODS else "write"


def require_api_token() -> None:
    """Find the live ApiToken named by ``Authorization: Bearer sk_...`` or answer 401;
    answer 403 when its scope does not cover the request."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise InvalidToken("缺少 API 令牌（Authorization: Bearer ...）", given=bool(header))
    token = None
    if len(secret) <= MAX_TOKEN_LENGTH:
        token = db.session.scalar(
            select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(secret))
        )
    if token is None:
        raise InvalidToken("API 令牌无效", given=True)
    if token.revoked_at is not None:
        raise InvalidToken("API 令牌已撤销", given=True, code="token_revoked")
    now = utcnow()
    if token.expired(now):
        raise InvalidToken("API 令牌已过期，请让店主重新创建", given=True, code="token_expired")
    last = token.last_used_at
    if last is None or now - last >= TOUCH_INTERVAL:
        token.last_used_at = now
        db.session.commit()  # an edge of its own: the call is recorded even if it then fails
    g.api_token = token
    needed = needed_scope()
    if not token.allows(needed):
        raise InsufficientScope(needed)


def document_token_scopes(document: dict) -> dict:
    """Add to the OpenAPI ``document`` what the bearer token check can answer on every
    Open API operation (401 and 403, with their codes) and the scope each one needs
    (``x-token-scope``), read from the same marks ``require_api_token`` reads."""
    scheme = document.get("components", {}).get("securitySchemes", {}).get(BEARER)
    if scheme is not None:
        scheme["description"] = BEARER_DESCRIPTION
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for rule in current_app.url_map.iter_rules():
        if not rule.endpoint.startswith(admin_bp.name + "."):
            continue
        path = PATH_ARG.sub(r"{\1}", rule.rule)
        view = current_app.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = document.get("paths", {}).get(path, {}).get(method.lower())
            if operation is None:
                continue
            marked = getattr(view, SCOPE_ATTR, None)
            operation["x-token-scope"] = marked or ("read" if method in READ_METHODS else "write")
            responses = operation.setdefault("responses", {})
            for status, text in (("401", REFUSED_401), ("403", REFUSED_403)):
                responses.setdefault(
                    status,
                    {"description": text, "content": {"application/json": {"schema": error_ref}}},
                )
    return document


def token_has_owner_rights() -> bool:
    """Whether the calling Open API token acts with the shop owner's rights (owner-only
    settings, rates above the shop default): only a token of scope ``owner``."""
    return g.api_token.allows("owner")


admin_bp.before_request(refuse_long_uri)
admin_bp.before_request(require_api_token)  # auth first: no token, no body parsing
admin_bp.before_request(require_json_object)
bp.before_request(refuse_long_uri)
bp.before_request(require_customer_for_writes)
bp.before_request(require_json_object)
