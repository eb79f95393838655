"""The single settings rows (shop, distribution, cloud, incentives, risk): created with
their defaults on first use, race-safe (``app.core.sql.single_row``).

Two workers meeting an empty settings table at once (the risk check's first run on a
sale day did) must both go on with the one row, not fail the second on the unique key.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from sqlalchemy import delete, func, select, text

from app.cloud.agents import get_cloud_settings
from app.cloud.models import CloudSettings
from app.distribution.distributors import get_distribution_settings
from app.distribution.models import DistributionSettings
from app.extensions import db
from app.incentives.invites import get_incentive_settings
from app.incentives.models import IncentiveSettings
from app.orders.models import ShopSettings
from app.orders.services import get_settings
from app.risk.models import RiskSettings
from app.risk.signals import get_risk_settings

pytestmark = [
    pytest.mark.postgresql,  # once-only under concurrency (row locks)
    # pg_locks shows when the second worker waits for the first one's row; SQLite takes
    # one writer at a time and has no such view.
    pytest.mark.skipif(os.environ.get("TEST_DB") != "postgresql", reason="PostgreSQL only"),
]

GETTERS = [
    (ShopSettings, get_settings),
    (DistributionSettings, get_distribution_settings),
    (CloudSettings, get_cloud_settings),
    (IncentiveSettings, get_incentive_settings),
    (RiskSettings, get_risk_settings),
]


def wait_for_a_lock_wait(seconds: float = 30) -> None:
    """Until another connection waits for a lock this test's transaction holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with db.engine.connect() as probe:
            waiting = probe.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError("the second worker never waited for the first one's row")


@pytest.mark.parametrize("model, getter", GETTERS, ids=lambda v: getattr(v, "__name__", ""))
def test_a_second_worker_meeting_an_uncommitted_first_row_gets_it(app, app_ctx, model, getter):
    db.session.execute(delete(model))
    db.session.commit()
    outcome: dict = {}

    def second_worker():
        with app.app_context():
            try:
                row = getter()  # waits for the first transaction's key
                outcome["id"] = row.id
                db.session.commit()
            except Exception as exc:  # the failure this test is about
                outcome["error"] = repr(exc)
                db.session.rollback()
            finally:
                db.session.remove()

    with app.app_context():  # the first worker (its own session and memo)
        assert getter().id == 1  # inserted, not committed: the row is this transaction's
        worker = threading.Thread(target=second_worker)
        worker.start()
        wait_for_a_lock_wait()
        db.session.commit()
        db.session.remove()
    worker.join(60)
    assert not worker.is_alive()
    assert outcome == {"id": 1}
    assert db.session.scalar(select(func.count()).select_from(model)) == 1
