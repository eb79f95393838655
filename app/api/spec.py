"""The one SpecTree instance: it validates every JSON endpoint and writes the OpenAPI document.

Each view is decorated with ``@spec.validate(...)`` and names its pydantic models; the same
models validate the request and describe it in ``GET /api/v1/openapi.json``, so the document
cannot drift from what the code accepts. Validation errors leave here as our own error shape
(``ApiError`` → ``{"error": {"code": "validation_error", "message", "details"}}``) through
spectree's documented ``before`` hook.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import ValidationError
from spectree import SecurityScheme, SpecTree
from spectree.models import InType, SecureType, SecuritySchemeData

from app.api.schemas import ErrorResponse
from app.core.errors import ApiError

BEARER = "bearerAuth"
COOKIE = "cookieSession"

# Chinese text for the pydantic error types a client can meet; anything else is "格式不正确".
_ERROR_TEXT = {
    "missing": "必填",
    "extra_forbidden": "不允许的字段",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "string_type": "应为字符串",
    "dict_type": "应为 JSON 对象",
    "model_type": "应为 JSON 对象",
    "model_attributes_type": "应为 JSON 对象",
    "list_type": "应为数组",
    "greater_than_equal": "不能小于 {ge}",
    "greater_than": "应大于 {gt}",
    "less_than_equal": "不能大于 {le}",
    "less_than": "应小于 {lt}",
    "string_too_short": "至少 {min_length} 个字",
    "string_too_long": "最多 {max_length} 个字",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "string_pattern_mismatch": "含有不允许的字符",
    "string_unicode": "不是有效的文本",
    "value_error": "{error}",
}


def field_errors(err: ValidationError) -> list[dict[str, str]]:
    """Turn a pydantic error into ``[{"field", "code", "message"}]`` with Chinese messages."""
    details = []
    for item in err.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in item["loc"]) or "body"
        template = _ERROR_TEXT.get(item["type"], "格式不正确")
        try:  # value_error's ctx holds the exception a validator raised, with our Chinese text
            text = template.format(**(item.get("ctx") or {}))
        except (KeyError, IndexError):  # a ctx without the number we wanted to show
            text = "格式不正确"
        details.append({"field": path, "code": item["type"], "message": f"{path} {text}"})
    return details


def raise_validation_error(req, resp, req_validation_error, instance, model_adapter) -> None:
    """spectree ``before`` hook: a request that failed validation becomes an ApiError (422).

    spectree calls this after validating and before the view; raising here skips its own
    response (a bare list of pydantic errors) in favour of the app's error handler.
    """
    if req_validation_error is None:
        return
    details = field_errors(req_validation_error)
    summary = "参数不正确：" + details[0]["message"]
    if len(details) > 1:
        summary += f"（共 {len(details)} 处）"
    raise ApiError(422, "validation_error", summary, details)


class _UniqueNames:
    """Component names are the models' class names, and two models may not share one.

    Plain names read well in the document a mini-program developer opens; the check keeps
    a second model with the same name from silently replacing the first.
    """

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def __call__(self, model: Any) -> str:
        name = getattr(model, "__name__", None) or str(model)
        known = self.seen.setdefault(name, model)
        if known is not model:
            raise RuntimeError(f"two API models are both called {name!r}; rename one")
        return name


class LazySpecTree(SpecTree):
    """A SpecTree that writes each model's JSON schema when the document is first asked for.

    spectree turns every model named by a ``validate`` decorator into its JSON schema at
    import time: 0.6-0.8 s of CPU (hundreds of pydantic schemas) paid by every process
    that builds the app (each gunicorn worker, ``flask worker``, every CLI command and each
    test process), though only ``GET /api/v1/openapi.json`` reads them. Validation itself
    uses the model classes, never these schemas. The decorators still record each model
    (and its component name, checked at once by ``_UniqueNames``) in order; the schemas are
    made in that same order on first use, so the document is the same as spectree's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pending: list[tuple[Any, Any]] = []
        # Two first requests for the document at once (threaded server): the second waits
        # for the first's document instead of writing one from half the schemas.
        self._pending_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _add_model(self, model: Any, mode: Any = "validation") -> str:
        self._pending.append((model, mode))
        return self.naming_strategy(model)

    def _generate_spec(self) -> dict[str, Any]:
        with self._pending_lock:
            if hasattr(self, "_spec"):  # written while this thread waited: never twice
                return self._spec
            pending, self._pending = self._pending, []
            for model, mode in pending:
                super()._add_model(model=model, mode=mode)
            return super()._generate_spec()


spec = LazySpecTree(
    "flask",
    mode="strict",  # document only the views decorated here, never the HTML pages
    title="分销商城 JSON API",
    description=(
        "顾客端（小程序 / H5，会话 Cookie）与商家 Open API（Bearer 令牌，"
        "`flask create-api-token` 生成）。金额均为整数，单位分，字段名以 `_fen` 结尾。"
        '错误：4xx 与 `{"error": {"code", "message"}}`（繁忙时 503）。'
        "整数字段也接受小数部分为零的写法（如 `1.0`），`1.5` 则为 422。"
    ),
    version="1",
    openapi_version="3.1.0",
    page_templates={},  # spectree's doc pages load Swagger UI from a CDN: not here
    security_schemes=[
        SecurityScheme(
            name=BEARER,
            data=SecuritySchemeData(
                type=SecureType.HTTP,
                scheme="bearer",
                description="商家 Open API 令牌：Authorization: Bearer sk_...",
            ),
        ),
        SecurityScheme(
            name=COOKIE,
            data=SecuritySchemeData(
                type=SecureType.API_KEY,
                name="session",
                field_in=InType.COOKIE,
                description="微信网页授权登录后的会话 Cookie（写操作还需 X-CSRFToken 头）",
            ),
        ),
    ],
    before=raise_validation_error,
    validation_error_status=422,
    validation_error_model=ErrorResponse,
    naming_strategy=_UniqueNames(),
    nested_naming_strategy=lambda _parent, child: child,
)


WRITE_METHODS = ("post", "put", "patch", "delete")
ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
# Answers any route can give besides those its own decorator names: they come from the
# checks every request passes (blueprints.py, core/errors.py), not from the view.
EVERY_ROUTE = {
    "414": "请求地址（路径加查询串）过长",
    "422": "参数不正确（含路径、查询串）",
    "503": "数据库或 Redis 暂时繁忙，请按 Retry-After 稍后重试",
}
WRITES = {
    "400": "请求体不是有效的 JSON 对象；会话 Cookie 调用缺少或带错 X-CSRFToken",
    "401": "未登录（顾客端）或令牌无效（Open API）；匿名写操作先得到 401",
    "413": "请求体过大",
    "415": "请求体不是 application/json",
}
WITH_ID = {"404": "路径中的编号不存在（或不属于当前用户）"}
BEARER_ROUTE = {"401": "缺少、未知或已撤销的 API 令牌"}
BEARER_WRITE = {"403": "令牌的权限范围不允许此操作"}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3 document of every endpoint decorated with ``spec.validate``, with
    every status each route can answer (``declare_common_statuses``)."""
    document = spec.spec
    declare_common_statuses(document)
    return document


def declare_common_statuses(document: dict[str, Any]) -> None:
    """Add to each operation the statuses the shared checks can answer (idempotent).

    Lists past their last page answer 200 with no items, never 404 (see ``PageQuery``).
    """
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = dict(EVERY_ROUTE)
            if method in WRITE_METHODS:
                statuses.update(WRITES)
            if "{" in path:
                statuses.update(WITH_ID)
            schemes = {name for entry in operation.get("security") or [] for name in entry}
            if BEARER in schemes:
                statuses.update(BEARER_ROUTE)
                if method in WRITE_METHODS:
                    statuses.update(BEARER_WRITE)
            responses = operation["responses"]
            for status, description in statuses.items():
                responses.setdefault(status, {"description": description, "content": ERROR_REF})
