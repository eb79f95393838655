"""Access logs leave out the queries of /wechat, /pay/* and the OAuth callback: gunicorn
started with gunicorn.conf.py, gunicorn's own logger class fed a request, and the
werkzeug server that ``flask run`` and the tests use."""

from __future__ import annotations

import logging
import os
import re
import runpy
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from gunicorn.config import Config

from tests.support import wechat as wx

ROOT = Path(__file__).resolve().parent.parent
SECRET_QUERIES = {
    "/wechat": "signature=5ec2e7a1b0&timestamp=1700000000&nonce=998877&openid=o_logged",
    "/pay/notify": "signature=5ec2e7a1b0&timestamp=1700000000",
    "/login/callback": "code=0a1SeCrEtCoDe&state=st8",
}
LEAKS = ("5ec2e7a1b0", "998877", "o_logged", "0a1SeCrEtCoDe", "st8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_with_the_production_config_logs_paths_without_their_queries(tmp_path, redis_url):
    log = tmp_path / "access.log"
    port = free_port()
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}",
        "REDIS_URL": redis_url,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_ACCESSLOG": str(log),
        "WEB_CONCURRENCY": "1",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"]
    errors = tmp_path / "gunicorn.err"
    with errors.open("wb") as stderr:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stderr, stderr=stderr)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:
            try:
                requests.get(f"{base}/no-such-page?kept=visible", timeout=10)
                break
            except requests.RequestException:
                assert server.poll() is None, errors.read_text()
                assert time.time() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        for path, query in SECRET_QUERIES.items():
            requests.get(f"{base}{path}?{query}", timeout=5)
        requests.post(f"{base}/pay/refund-notify?{SECRET_QUERIES['/pay/notify']}", timeout=5)
        deadline = time.time() + 10
        while log.read_text().count("\n") < 5 and time.time() < deadline:
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=20)
    text = log.read_text()
    for path in (*SECRET_QUERIES, "/pay/refund-notify"):
        assert f" {path} HTTP/1.1" in text
    assert "/no-such-page?kept=visible" in text  # other queries are still logged
    assert not [leak for leak in LEAKS if leak in text], text


def fake_request(path: str, query: str, referer: str = "-"):
    """What gunicorn hands its logger: the WSGI environ and request/response objects."""
    raw_uri = f"{path}?{query}" if query else path
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": raw_uri,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": referer,
        "HTTP_USER_AGENT": "MicroMessenger",
    }
    request = SimpleNamespace(headers=[("REFERER", referer), ("USER-AGENT", "MicroMessenger")])
    response = SimpleNamespace(status="200 OK", sent=7, headers=[("Content-Type", "text/plain")])
    return response, request, environ


@pytest.fixture
def gunicorn_logger(tmp_path):
    """gunicorn's logger as gunicorn.conf.py configures it, writing every atom that can
    carry a query (request line, query, referer, environ) to a file."""
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("logger_class", settings["logger_class"])
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", EVERY_ATOM)
    logger = cfg.logger_class(cfg)
    yield logger, tmp_path / "access.log"
    for handler in (*logger.access_log.handlers, *logger.error_log.handlers):
        handler.close()


EVERY_ATOM = "%(r)s|%(U)s|%(q)s|%(f)s|%({referer}i)s|%({raw_uri}e)s|%({query_string}e)s"


@pytest.mark.parametrize("path", [*SECRET_QUERIES, "/pay/refund-notify", "/wechat/"])
def test_gunicorn_logger_redacts_every_atom_carrying_the_query(gunicorn_logger, path):
    logger, log = gunicorn_logger
    query = SECRET_QUERIES.get(path.rstrip("/"), SECRET_QUERIES["/pay/notify"])
    logger.access(*fake_request(path, query), timedelta(milliseconds=3))
    line = log.read_text().strip()
    assert line.startswith(f"GET {path} HTTP/1.1|{path}||")
    assert not [leak for leak in LEAKS if leak in line], line


def test_gunicorn_logger_shortens_a_referer_to_the_oauth_callback(gunicorn_logger):
    logger, log = gunicorn_logger
    referer = f"https://shop.example.cn/login/callback?{SECRET_QUERIES['/login/callback']}"
    logger.access(*fake_request("/static/app.css", "v=3", referer), timedelta(0))
    line = log.read_text().strip()
    assert line.startswith("GET /static/app.css?v=3 HTTP/1.1|/static/app.css|v=3|")
    assert "https://shop.example.cn/login/callback|" in line
    assert "0a1SeCrEtCoDe" not in line


def test_the_werkzeug_server_logs_the_wechat_path_without_its_query(live_server, caplog):
    query, body = wx.signed(wx.subscribe("o_logged"))
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        wx.send(live_server.url, query, body)
        requests.get(f"{live_server.url}/login/callback?code=0a1SeCrEtCoDe&state=st8", timeout=5)
        requests.get(f"{live_server.url}/no-such-page?kept=visible", timeout=5)
        deadline = time.time() + 5
        while len(caplog.records) < 3 and time.time() < deadline:
            time.sleep(0.05)
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(lines))  # werkzeug colours by status
    assert '"POST /wechat HTTP/1.1" 200' in text
    assert '"GET /login/callback HTTP/1.1"' in text
    assert "/no-such-page?kept=visible" in text
    assert query["signature"] not in text and query["nonce"] not in text
    assert "0a1SeCrEtCoDe" not in text and "o_logged" not in text
