"""Errors shown to people (Chinese pages) or to programs (JSON with a code).

Every path under /api answers errors as ``{"error": {"code": ..., "message": ...}}``;
every other path renders templates/errors/error.html. Nothing leaks a traceback.
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from app.extensions import db


class ApiError(Exception):
    """An error a JSON endpoint returns: HTTP status, snake_case code, Chinese message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: object | None = None,
        link: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.link = link  # a page that helps the person, e.g. their unpaid orders

    def to_response(self):
        body: dict = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        if self.link is not None:
            body["link"] = self.link
        return jsonify(error=body), self.status


# Chinese titles for the HTTP errors people can meet, and the JSON code for each.
HTTP_ERRORS = {
    400: ("bad_request", "请求有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "没有权限访问"),
    404: ("not_found", "页面不存在"),
    405: ("method_not_allowed", "不支持该请求方式"),
    413: ("payload_too_large", "上传的内容太大"),
    414: ("uri_too_long", "请求地址过长"),
    429: ("too_many_requests", "请求太频繁，请稍后再试"),
    500: ("internal_error", "服务器开小差了，请稍后再试"),
    503: ("busy", "系统繁忙"),
}


def wants_json() -> bool:
    """Whether the current request is an API call that should get JSON errors."""
    return request.path.startswith("/api/") or request.path.startswith("/pay/")


def error_response(status: int, message: str | None = None, code: str | None = None):
    """Render an error as JSON for API paths, else as a Chinese page."""
    default_code, title = HTTP_ERRORS.get(status, ("error", "出错了"))
    if wants_json():
        return ApiError(status, code or default_code, message or title).to_response()
    return render_template("errors/error.html", status=status, title=title, message=message), status


def register_error_handlers(app: Flask) -> None:
    """Install handlers so no request ends in a bare traceback page."""

    @app.errorhandler(ApiError)
    def handle_api_error(err: ApiError):
        return err.to_response()

    @app.errorhandler(CSRFError)
    def handle_csrf(err: CSRFError):
        return error_response(400, "页面已过期，请刷新后重试", code="csrf_failed")

    @app.errorhandler(HTTPException)
    def handle_http(err: HTTPException):
        status = err.code or 500
        # Werkzeug's default descriptions are English; show only messages we wrote.
        description = err.description if err.description != type(err).description else None
        body, status = error_response(status, description)
        # Keep Werkzeug's own headers, e.g. 405's Allow (RFC 9110), but not its content type.
        headers = [(k, v) for k, v in err.get_headers() if k.lower() != "content-type"]
        return body, status, headers

    @app.errorhandler(OperationalError)
    @app.errorhandler(RedisError)
    def handle_busy(err: Exception):
        # A lock held too long (lock_timeout, SQLite busy), a deadlock PostgreSQL broke,
        # the database or Redis out of reach: the open transaction rolls back, so say so
        # and let people (and WeChat, which retries) try again. Redis calls that follow a
        # commit (enqueues) catch their own errors, so they never end up here.
        try:
            db.session.rollback()
        except Exception:  # the connection itself is gone: the pool drops it
            app.logger.warning("rollback failed after %s", type(err).__name__)
        app.logger.warning(
            "busy on %s %s: %s: %s",
            request.method,
            request.path,
            type(err).__name__,
            str(getattr(err, "orig", err))[:200],
        )
        body, status = error_response(503, "系统繁忙，请稍后重试", code="busy")
        return body, status, {"Retry-After": "2"}

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500)
