"""The local WeChat stand-in: a separate small Flask app with WeChat's real paths.

The shop reaches it only through the origin variables (``WECHAT_API_BASE``,
``WECHAT_OPEN_BASE``, ...), with the same client code as in production. Each WeChat area
is a module with its own blueprint (``token``, ``oauth``; later Pay, QR codes, messages),
all sharing one ``SandboxState`` (``state.py``).

Settings (``create_sandbox_app(config)``):

- ``SANDBOX_APPID`` / ``SANDBOX_SECRET``: the account's credentials (default: config.py's
  SANDBOX_APPID / SANDBOX_SECRET, which the shop uses by default too);
- ``SANDBOX_MINIAPP_APPID`` / ``SANDBOX_MINIAPP_SECRET``: the mini-program's (miniapp.py);
- ``SANDBOX_TOKEN``, ``SANDBOX_AES_KEY``, ``SANDBOX_MCHID``, ``SANDBOX_APIV3_KEY``: likewise,
  for the message server and Pay (later issues); with ``SANDBOX_AES_KEY`` set (the
  default) pushes to the shop are encrypted (safe mode), with None they are plaintext;
- ``PUBLIC_BASE_URL``: the stand-in's own origin (avatar URLs);
- ``SHOP_BASE_URL``: the shop's origin, for links and for calling the shop back;
- ``SANDBOX_OAUTH_DOMAINS``: if set, the hosts redirect_uri may point at (网页授权域名);
- ``SANDBOX_UNIONID``: whether fans have a unionid (default True);
- ``SANDBOX_CLOCK``: a ``time.time``-like callable (tests of expiry);
- ``SANDBOX_FANS``: nicknames of the fans listed from the start (default ``DEFAULT_FANS``;
  ``flask wechat-sandbox`` adds the shop's ``WECHAT_SANDBOX_EXTRA_FANS``: the demo shop's
  agents, merchants and customer under ``flask --app wsgi``).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request

import config as shop_config
from app.wechat.sandbox.state import DEFAULT_FANS, SandboxState

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


def create_sandbox_app(config: dict | None = None) -> Flask:
    """Build the stand-in app from ``config`` (see the module docstring)."""
    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=None)
    app.config.update(
        SANDBOX_APPID=shop_config.SANDBOX_APPID,
        SANDBOX_SECRET=shop_config.SANDBOX_SECRET,
        SANDBOX_TOKEN=shop_config.SANDBOX_TOKEN,
        SANDBOX_AES_KEY=shop_config.SANDBOX_AES_KEY,
        SANDBOX_MCHID=shop_config.SANDBOX_MCHID,
        SANDBOX_APIV3_KEY=shop_config.SANDBOX_APIV3_KEY,
        SANDBOX_MINIAPP_APPID=shop_config.SANDBOX_MINIAPP_APPID,
        SANDBOX_MINIAPP_SECRET=shop_config.SANDBOX_MINIAPP_SECRET,
        PUBLIC_BASE_URL=shop_config.SANDBOX_ORIGIN,
        SHOP_BASE_URL=None,
        SANDBOX_OAUTH_DOMAINS=None,
        SANDBOX_UNIONID=True,
        SANDBOX_CLOCK=None,
        SANDBOX_FANS=DEFAULT_FANS,
    )
    app.config.update(config or {})
    app.extensions["wechat_sandbox"] = SandboxState(
        app.config["SANDBOX_APPID"],
        app.config["SANDBOX_SECRET"],
        clock=app.config["SANDBOX_CLOCK"],
        fans=tuple(app.config["SANDBOX_FANS"]),
    )

    # Factory wiring: the stand-in's blueprints load only when a sandbox app is built; at the
    # top, importing any sandbox module (this package runs first) would load them all.
    from app.wechat.sandbox import (
        fans,
        kuaidi100,
        messages,
        miniapp,
        oauth,
        pay,
        token,
        tools,
        transfer,
    )

    for module in (token, oauth, tools):
        app.register_blueprint(module.bp)
    pay.init_pay(app)  # Pay APIv3, its keys and notices (see pay.py)
    transfer.init_transfer(app)  # 商家转账 transfer bills (see transfer.py)
    fans.init_fans(app)  # QR codes, user info, the act-as-a-fan page (see fans.py)
    miniapp.init_miniapp(app)  # the mini-program: wx.login, jscode2session, wxacode
    messages.init_messages(app)  # menu, template/custom messages, media, log (messages.py)
    kuaidi100.init_kuaidi100(app)  # 快递100's /poll/query.do (see kuaidi100.py)

    @app.before_request
    def _count_call():
        app.extensions["wechat_sandbox"].count(request.path)

    @app.errorhandler(404)
    def _not_found(_err):
        # WeChat answers unknown API paths with a JSON error, not an HTML page.
        return {"errcode": 404, "errmsg": "invalid url"}, 404

    return app


def run_sandbox(shop_app: Flask, host: str = "127.0.0.1", port: int = 5001) -> None:
    """Serve the stand-in (threaded, werkzeug) with ``shop_app``'s WeChat credentials.

    Both sides must agree on appid, secret and keys, so the stand-in takes them from the
    shop's configuration rather than from its own defaults.
    """
    from werkzeug.serving import run_simple

    cfg = shop_app.config
    # Links the stand-in hands out (avatars) must be reachable: never 0.0.0.0.
    public_host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104
    origin = f"http://{public_host}:{port}"
    sandbox = create_sandbox_app(
        {
            "SANDBOX_APPID": cfg.get("WECHAT_APPID") or shop_config.SANDBOX_APPID,
            "SANDBOX_SECRET": cfg.get("WECHAT_SECRET") or shop_config.SANDBOX_SECRET,
            "SANDBOX_TOKEN": cfg.get("WECHAT_TOKEN") or shop_config.SANDBOX_TOKEN,
            # None when the shop runs plain mode: the stand-in then pushes plaintext.
            "SANDBOX_AES_KEY": cfg.get("WECHAT_AES_KEY") or None,
            "SANDBOX_MCHID": cfg.get("WECHAT_PAY_MCHID") or shop_config.SANDBOX_MCHID,
            "SANDBOX_APIV3_KEY": cfg.get("WECHAT_PAY_APIV3_KEY") or shop_config.SANDBOX_APIV3_KEY,
            "SANDBOX_MINIAPP_APPID": cfg.get("WECHAT_MINIAPP_APPID")
            or shop_config.SANDBOX_MINIAPP_APPID,
            "SANDBOX_MINIAPP_SECRET": cfg.get("WECHAT_MINIAPP_SECRET")
            or shop_config.SANDBOX_MINIAPP_SECRET,
            "PUBLIC_BASE_URL": origin,
            "SHOP_BASE_URL": cfg.get("PUBLIC_BASE_URL"),
            # Fans the shop adds, e.g. the demo shop's agents, merchants and customer
            # (demo/cli.py): sign in as them.
            "SANDBOX_FANS": (*DEFAULT_FANS, *cfg.get("WECHAT_SANDBOX_EXTRA_FANS", ())),
        }
    )
    print(f"WeChat stand-in on {origin}/ (appid {sandbox.config['SANDBOX_APPID']})")
    for key in ("WECHAT_API_BASE", "WECHAT_OPEN_BASE"):
        if (cfg.get(key) or "").rstrip("/") != origin:
            print(f"warning: the shop's {key} is {cfg.get(key)!r}, not this stand-in ({origin})")
    run_simple(host, port, sandbox, threaded=True, use_reloader=False, use_debugger=False)
