"""Real HTTP servers for the tests: free ports, a WSGI app served from a thread, the user
agents of WeChat and a desktop browser, and a test client with a fresh app context."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from werkzeug.serving import make_server
from werkzeug.test import run_wsgi_app
from werkzeug.wsgi import get_current_url

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323d) "
    "NetType/WIFI Language/zh_CN"
)
# A second person's phone: the risk checks (app/risk/) treat one address with one browser
# string as one device, so a buyer and their distributor in one test need two.
WECHAT_ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A; wv) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Version/4.0 Chrome/126.0 Mobile Safari/537.36 MicroMessenger/8.0.49.2600 "
    "NetType/WIFI Language/zh_CN"
)
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """A WSGI app served over real HTTP on 127.0.0.1 from a background thread."""

    def __init__(self, wsgi_app, port: int | None = None):
        self.port = port or free_port()
        self.server = make_server("127.0.0.1", self.port, wsgi_app, threaded=True)
        # The serving loop looks for ``stop`` this often: werkzeug's 0.5 s default made
        # every test with a live server wait a quarter of a second on average at its end.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()


class QuickCookieJar:
    """A test-client mixin: the cookie jar reads the request's host and path without
    decoding its query string.

    Werkzeug's client builds the whole current URL (``get_current_url``, which unquotes
    the query string and quotes it again) twice per request, only to match cookies by host
    and path. For the bad-input sweep's ~200 kB junk query strings that was about two
    thirds of each request's CPU. The app still receives, parses and answers the very same
    request: only the client's own bookkeeping skips the query string.
    """

    def run_wsgi_app(self, environ, buffered: bool = False):
        query = environ.get("QUERY_STRING")
        if not query or self._cookies is None:
            return super().run_wsgi_app(environ, buffered=buffered)
        bare = {**environ, "QUERY_STRING": ""}
        self._add_cookies_to_wsgi(bare)
        if "HTTP_COOKIE" in bare:
            environ["HTTP_COOKIE"] = bare["HTTP_COOKIE"]
        else:
            environ.pop("HTTP_COOKIE", None)
        rv = run_wsgi_app(self.application, environ, buffered=buffered)
        url = urlsplit(get_current_url(bare))
        self._update_cookies_from_response(
            url.hostname or "localhost", url.path, rv[2].getlist("Set-Cookie")
        )
        return rv


class FreshContextClient(QuickCookieJar, FlaskClient):
    """A test client whose every request runs in its own app context.

    Without this, a request made while the test holds an app context (the ``make`` and
    ``app_ctx`` fixtures) reuses that context: ``g`` (Flask-Login's user, Flask-WTF's CSRF
    token) and the database session leak from one request into the next, which no real
    request ever sees.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)
