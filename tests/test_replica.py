"""DATABASE_REPLICA_URL: report pages and CSV exports read from the replica, nothing else.

The replica here is the test database itself under a second engine (as a streaming
replica with no lag would be): the pages must work the same, and the statements must be
seen on the replica's engine, not on the primary's.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event

from app.core.replica import REPLICA_BIND
from app.extensions import db
from tests.support.admin import fresh_client, login_staff
from tests.support.aftersale import paid_order
from tests.support.apps import second_app_running

ARGS = "from=2025-03-01&to=2025-03-10&grain=day"

# Reports' SQL through a second engine: the engines read aggregates differently.
pytestmark = pytest.mark.postgresql


@pytest.fixture
def replica_app(app):
    """The app under test again, with the test database named as its replica too."""
    binds = {REPLICA_BIND: app.config["SQLALCHEMY_DATABASE_URI"]}
    with second_app_running(app, SQLALCHEMY_BINDS=binds) as second:
        yield second


def statements_on(app_, bind):
    """A list that fills with the SELECTs each engine of ``app_`` runs (bind key: list)."""
    seen = []
    with app_.app_context():
        engine = db.engines[bind]

    def count(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return seen, lambda: event.remove(engine, "before_cursor_execute", count)


def test_reports_and_exports_read_the_replica(replica_app, make):
    order = paid_order(make)
    number = order.number
    owner = make.staff("boss", role="owner")
    client = fresh_client(replica_app)
    login_staff(client, owner)
    replica, stop_replica = statements_on(replica_app, REPLICA_BIND)
    primary, stop_primary = statements_on(replica_app, None)
    try:
        for path in (
            f"/admin/reports?{ARGS}",
            f"/admin/reports/export?report=sales&{ARGS}",
            "/admin/orders/export.csv",
            "/admin/distribution/ledger/export.csv",
        ):
            before_replica, before_primary = len(replica), len(primary)
            response = client.get(path)
            response.get_data()  # a streamed export reads as it is sent
            response.close()
            assert response.status_code == 200, path
            assert len(replica) > before_replica, f"{path} read nothing from the replica"
            # The primary only answers the staff check (before the view), never the report.
            report_reads = [s for s in primary[before_primary:] if "staff" not in s.lower()]
            assert report_reads == [], (path, report_reads[:3])
        export = client.get("/admin/orders/export.csv")
        assert number in export.get_data(as_text=True)
        export.close()
        # Every other page reads the primary only.
        before = len(replica)
        assert client.get("/admin/orders").status_code == 200
        assert client.get("/admin/").status_code == 200
        assert len(replica) == before
    finally:
        stop_replica()
        stop_primary()


def test_without_a_replica_the_same_pages_read_the_primary(app, make):
    owner = make.staff("boss", role="owner")
    client = fresh_client(app)
    login_staff(client, owner)
    with app.app_context():
        assert REPLICA_BIND not in db.engines
    assert client.get(f"/admin/reports?{ARGS}").status_code == 200
    export = client.get("/admin/orders/export.csv")
    assert export.status_code == 200 and export.get_data(as_text=True).startswith("\ufeff")
    export.close()


def test_the_variable_becomes_the_replica_bind(monkeypatch):
    import config

    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgresql+psycopg://reader@replica/shop")
    assert config.Config.from_env()["SQLALCHEMY_BINDS"] == {
        REPLICA_BIND: "postgresql+psycopg://reader@replica/shop"
    }
    monkeypatch.delenv("DATABASE_REPLICA_URL")
    assert config.Config.from_env()["SQLALCHEMY_BINDS"] == {}
