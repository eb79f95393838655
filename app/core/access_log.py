"""Access logs that never write the query strings of WeChat's and WeChat Pay's requests.

The message server's query (``/wechat?signature=&timestamp=&nonce=``) signs a push for
five minutes, the OAuth callback's (``/login/callback?code=``) signs a customer in, and
the Pay paths (``/pay/...``) are WeChat's too: a log line with them is a credential in a
file that many people and tools read. For these paths the access log keeps the path and
drops the query, in gunicorn's log (``RedactingLogger``, named in gunicorn.conf.py) and in
the werkzeug server that ``flask run`` and the tests use (``install_werkzeug_redaction``).
A Referer pointing at one of these URLs is shortened the same way.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

from gunicorn.glogging import Logger

# Paths whose query strings are credentials (exact paths, and prefixes ending in "/").
SENSITIVE_PATHS = ("/wechat", "/login/callback")
SENSITIVE_PREFIXES = ("/pay/",)
# The request target in a request line: "GET <target> HTTP/1.1" (maybe ANSI-coloured).
_REQUEST_LINE = re.compile(r"(?P<target>\S+)(?P<version> HTTP/\d(?:\.\d)?)")


def is_sensitive(path: str) -> bool:
    """Whether ``path`` (no query) is one whose query must never be logged."""
    path = path.rstrip("/") or "/"
    return path in SENSITIVE_PATHS or any(
        path.startswith(prefix) or path + "/" == prefix for prefix in SENSITIVE_PREFIXES
    )


def redact_target(target: str) -> str:
    """A request target (``/path?query`` or an absolute URL) without the query when its
    path is sensitive; any other target unchanged."""
    if "?" not in target:
        return target
    parts = urlsplit(target)
    if not is_sensitive(parts.path):
        return target
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def redact_request_line(line: str) -> str:
    """``GET /wechat?signature=... HTTP/1.1`` → ``GET /wechat HTTP/1.1``."""
    return _REQUEST_LINE.sub(
        lambda m: redact_target(m.group("target")) + m.group("version"), line, count=1
    )


class RedactingLogger(Logger):
    """gunicorn's logger, with the queries of sensitive paths left out of every atom that
    carries them (``%(r)s``, ``%(q)s``, ``%(f)s``, ``%({raw_uri}e)s`` ...)."""

    def atoms(self, resp, req, environ, request_time):
        """gunicorn's atoms, redacted (see the module docstring)."""
        atoms = super().atoms(resp, req, environ, request_time)
        if is_sensitive(environ.get("PATH_INFO") or ""):
            atoms["r"] = redact_request_line(atoms["r"])
            atoms["q"] = ""
            for name in ("{raw_uri}e", "{request_uri}e"):
                if name in atoms:
                    atoms[name] = redact_target(str(atoms[name]))
            if "{query_string}e" in atoms:
                atoms["{query_string}e"] = ""
        for name in ("f", "{referer}i", "{http_referer}e"):
            if isinstance(atoms.get(name), str):
                atoms[name] = redact_target(atoms[name])
        return atoms


class WerkzeugRedactionFilter(logging.Filter):
    """Redacts the request line werkzeug's server logs (``"%s" %s %s``, line first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's request line argument; never drops a record."""
        args = record.args
        if isinstance(args, tuple) and args and isinstance(args[0], str):
            record.args = (redact_request_line(args[0]), *args[1:])
        return True


def install_werkzeug_redaction() -> None:
    """Put the filter on the ``werkzeug`` logger once per process (``flask run``, the
    stand-in and the tests' servers all log through it)."""
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, WerkzeugRedactionFilter) for f in logger.filters):
        logger.addFilter(WerkzeugRedactionFilter())
