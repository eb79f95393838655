"""The application factory. The only module-level app object lives in wsgi.py."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.extensions import csrf, db, login_manager, migrate


def create_app(config: str | dict[str, Any] | None = None) -> Flask:
    """Build the Flask app.

    ``config`` is an environment name ("development", "test", "production"), a dict of
    settings (merged over the test or development defaults by the caller), or None to
    follow ``APP_ENV``.
    """
    from config import INSTANCE_DIR, config_for

    app = Flask(
        __name__,
        template_folder="../templates",
        static_folder="../static",
        instance_path=str(INSTANCE_DIR),
    )
    if isinstance(config, dict):
        base = config_for(config.get("ENV_NAME", "test"))
        base.update(config)
        app.config.from_mapping(base)
    else:
        app.config.from_mapping(config_for(config))

    trust_proxies(app)
    # Factory wiring (see below): request ids, request log lines and latency, first of all
    # the before_request hooks so every request has its id.
    from app.core.observe import register_observability

    register_observability(app)
    register_extensions(app)
    register_blueprints(app)
    register_template_helpers(app)
    register_commands(app)
    # Factory wiring: this file runs on every ``app.*`` import; areas load when an app is built.
    from app.core.errors import register_error_handlers

    register_error_handlers(app)
    # Factory wiring (see above).
    from app.core.access_log import install_werkzeug_redaction

    install_werkzeug_redaction()  # flask run / the stand-in: no signed queries in the log
    # Factory wiring (see above).
    from app.core.security_headers import register_security_headers

    register_security_headers(app)
    # Factory wiring (see above).
    from app.wechat.listeners import connect_listeners

    connect_listeners()  # WeChat notices hear the shop's events (app/signals.py); once
    # Factory wiring (see above).
    from app.earnings.listeners import connect_listeners as connect_pipeline

    connect_pipeline()  # placing and completing an order reach attribution and the ledger
    # Factory wiring (see above).
    from app.coupons.listeners import connect_listeners as connect_coupons

    connect_coupons()  # a cancelled unpaid order gives its coupon back
    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the extension singletons to ``app``."""
    from app import models  # noqa: F401  (every table known before migrations or queries)

    _bound_lock_waits(app)
    db.init_app(app)
    with app.app_context():
        _tune_sqlite(app)
    migrate.init_app(app, db, render_as_batch=True)  # batch mode: SQLite can alter tables
    csrf.init_app(app)
    login_manager.init_app(app)
    # Factory wiring: the login loader needs the models; load them when an app is built.
    from app.accounts.loading import configure_login, refresh_staff_session

    configure_login(login_manager)
    app.before_request(refresh_staff_session)


def trust_proxies(app: Flask) -> None:
    """Behind ``TRUSTED_PROXIES`` reverse proxies, take the client's address, scheme and
    host from their X-Forwarded-* headers (the last N entries, which our own proxies
    wrote). With 0, the default, those headers are ignored: anyone can send them."""
    count = int(app.config.get("TRUSTED_PROXIES") or 0)
    if count > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def register_blueprints(app: Flask) -> None:
    """Mount each area's blueprint."""
    # Factory wiring: the views (and all they import) load only when an app is built.
    from app.accounts.views import bp as accounts_bp
    from app.admin import bp as admin_bp
    from app.api import register_api
    from app.cloud.views_agent import bp as agent_bp
    from app.cloud.views_merchant import bp as merchant_bp
    from app.core.views import bp as core_bp
    from app.coupons.views import bp as coupons_bp
    from app.distribution import funnel_views, views_products  # noqa: F401  (centre routes)
    from app.distribution.referral import bp as referral_bp
    from app.distribution.views import bp as distribution_bp
    from app.incentives.views import bp as incentives_bp
    from app.ops.views import bp as ops_bp
    from app.orders.views import bp as orders_bp
    from app.payments.views import bp as payments_bp
    from app.posters.views import bp as posters_bp
    from app.shop.aftersale import bp as aftersale_bp
    from app.shop.views import bp as shop_bp
    from app.wechat.views import bp as wechat_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(ops_bp)  # /readyz, /metrics
    app.register_blueprint(referral_bp)  # ?ref=CODE on any page, before the cached ones
    app.register_blueprint(distribution_bp)
    app.register_blueprint(incentives_bp)
    app.register_blueprint(agent_bp)
    app.register_blueprint(merchant_bp)
    app.register_blueprint(posters_bp)
    app.register_blueprint(shop_bp)
    app.register_blueprint(orders_bp)
    app.register_blueprint(aftersale_bp)  # 售后 and 查看物流 (customer pages)
    app.register_blueprint(coupons_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(wechat_bp)
    app.register_blueprint(payments_bp)
    register_api(app)


def register_template_helpers(app: Flask) -> None:
    """Filters and globals every template can use."""
    # Factory wiring: loaded when an app is built, not on every ``app.*`` import.
    from app.core.money import format_yuan
    from app.distribution.rules import format_bp

    app.add_template_filter(format_yuan, "yuan")
    app.add_template_filter(format_bp, "percent_bp")  # 250 → 2.5%


def register_commands(app: Flask) -> None:
    """Attach the CLI commands of interfaces.md (``flask --app wsgi ...``)."""
    # Factory wiring: the commands import jobs and every area; only an app needs them.
    from app.cli import register

    register(app)


def _bound_lock_waits(app: Flask) -> None:
    """PostgreSQL: every connection stops waiting for a lock after ``DB_LOCK_TIMEOUT_MS``
    (a startup option, so it holds from the first statement; SQLite: ``_tune_sqlite``)."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = dict(options.get("connect_args") or {})
    lock_timeout = f"-c lock_timeout={int(app.config['DB_LOCK_TIMEOUT_MS'])}"
    connect_args["options"] = f"{connect_args.get('options', '')} {lock_timeout}".strip()
    options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _tune_sqlite(app: Flask) -> None:
    """SQLite only (development and tests): foreign keys, WAL, and waiting for locks.

    pysqlite keeps its own transaction handling (it begins at the first write). Its one
    quirk: a savepoint opened before any write commits when released. SQLAlchemy's recipe
    that emits BEGIN itself fixes that but makes concurrent requests fail with "database
    is locked" when a read transaction later writes, which is worse for development. So
    once-only writes use unique keys with INSERT ... ON CONFLICT or conditional UPDATEs,
    which behave the same on SQLite and PostgreSQL (production).
    """
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    @event.listens_for(db.engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(app.config['DB_LOCK_TIMEOUT_MS'])}")
        if app.config["SQLALCHEMY_DATABASE_URI"] != "sqlite://":
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            # In WAL mode NORMAL still never corrupts the file; it only skips the disk sync
            # on each commit (4-7 ms here), which serialised every writer behind it.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
