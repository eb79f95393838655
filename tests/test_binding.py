"""Binding rules (app/distribution/binding.py) on the real database."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.core.time import utcnow
from app.distribution.binding import (
    bind,
    current_binding,
    extend_protection,
    on_first_payment,
    record_ref,
)
from app.distribution.distributors import create_distributor, get_distribution_settings
from app.distribution.models import Binding, BindingEvent
from app.extensions import db

pytestmark = pytest.mark.postgresql  # binding rules: conditional updates, closure-table SQL


@pytest.fixture
def shop(make):
    settings = get_distribution_settings()
    settings.bind_mode = "first_visit"
    settings.protection_days = 15
    settings.binding_days = 0
    db.session.commit()
    return settings


def _distributor(make, parent=None):
    d = create_distributor(make.user().id, parent)
    db.session.commit()
    return d


def _actions(user_id):
    return [
        e.action
        for e in db.session.scalars(
            select(BindingEvent).where(BindingEvent.user_id == user_id).order_by(BindingEvent.id)
        )
    ]


def test_first_visit_binds_and_first_touch_wins_while_protected(make, shop):
    alice, bob = _distributor(make), _distributor(make)
    fan = make.user()
    record_ref(fan.id, alice, "link")
    record_ref(fan.id, bob, "link")
    db.session.commit()
    assert current_binding(fan.id).distributor_id == alice.id
    assert _actions(fan.id) == ["bind"]


def test_after_protection_a_new_link_takes_over(make, shop):
    alice, bob = _distributor(make), _distributor(make)
    fan = make.user()
    start = utcnow()
    record_ref(fan.id, alice, "link", now=start)
    record_ref(fan.id, bob, "qr", now=start + timedelta(days=16))
    db.session.commit()
    binding = current_binding(fan.id, start + timedelta(days=16))
    assert binding.distributor_id == bob.id and binding.source == "qr"
    assert _actions(fan.id) == ["bind", "rebind"]


def test_protection_zero_latest_link_wins(make, shop):
    shop.protection_days = 0
    alice, bob = _distributor(make), _distributor(make)
    fan = make.user()
    record_ref(fan.id, alice, "link")
    record_ref(fan.id, bob, "link")
    assert current_binding(fan.id).distributor_id == bob.id


def test_binding_lapses_after_validity(make, shop):
    shop.binding_days = 30
    shop.protection_days = 60  # protection cannot outlive the binding itself
    alice, bob = _distributor(make), _distributor(make)
    fan = make.user()
    start = utcnow()
    record_ref(fan.id, alice, "link", now=start)
    assert current_binding(fan.id, start + timedelta(days=31)) is None
    record_ref(fan.id, bob, "link", now=start + timedelta(days=31))
    db.session.commit()
    assert current_binding(fan.id, start + timedelta(days=31)).distributor_id == bob.id
    assert _actions(fan.id) == ["bind", "lapse", "rebind"]


def test_nobody_binds_to_themself(make, shop):
    alice = _distributor(make)
    record_ref(alice.user_id, alice, "link")
    assert current_binding(alice.user_id) is None


def test_distributor_never_binds_below_own_descendant(make, shop):
    top = _distributor(make)
    child = _distributor(make, parent=top)
    record_ref(top.user_id, child, "link")
    assert current_binding(top.user_id) is None


def test_first_payment_mode_binds_the_last_ref_on_payment(make, shop):
    shop.bind_mode = "first_payment"
    alice, bob = _distributor(make), _distributor(make)
    fan = make.user()
    record_ref(fan.id, alice, "link")
    record_ref(fan.id, bob, "qr")
    assert current_binding(fan.id) is None
    on_first_payment(fan.id)
    db.session.commit()
    binding = current_binding(fan.id)
    assert binding.distributor_id == bob.id and binding.source == "qr"


def test_paid_order_extends_protection(make, shop):
    alice = _distributor(make)
    fan = make.user()
    start = utcnow()
    record_ref(fan.id, alice, "link", now=start)
    extend_protection(fan.id, now=start + timedelta(days=10))
    db.session.commit()
    binding = current_binding(fan.id)
    protected = binding.protected_until.replace(tzinfo=None)
    assert protected >= (start + timedelta(days=29)).replace(tzinfo=None)


def test_extension_adds_to_one_a_concurrent_job_committed(make, shop):
    """Two jobs of one customer's orders each add their days: a job holding a stale copy
    of the binding adds to what the other committed instead of overwriting it."""
    alice = _distributor(make)
    fan = make.user()
    start = utcnow()
    record_ref(fan.id, alice, "link", now=start)
    db.session.commit()
    stale = current_binding(fan.id)  # this session now holds the protection as it was
    days = get_distribution_settings().protection_extend_days
    assert days > 0
    other_job_set = start + timedelta(days=40)
    with db.engine.begin() as conn:  # the other job, on its own connection, commits first
        conn.execute(
            update(Binding).where(Binding.id == stale.id).values(protected_until=other_job_set)
        )
    extend_protection(fan.id, now=start + timedelta(days=10))
    db.session.commit()
    db.session.expire_all()
    protected = current_binding(fan.id).protected_until.replace(tzinfo=None)
    assert protected == (other_job_set + timedelta(days=days)).replace(tzinfo=None)
    assert _actions(fan.id).count("extend") == 1


def test_staff_force_rebinds_inside_protection(make, shop):
    alice, bob = _distributor(make), _distributor(make)
    fan = make.user()
    record_ref(fan.id, alice, "link")
    bind(fan.id, bob, "staff", actor="staff:1", force=True)
    db.session.commit()
    assert current_binding(fan.id).distributor_id == bob.id
    assert _actions(fan.id) == ["bind", "rebind"]


def test_first_binding_insert_is_a_no_op_for_a_customer_already_bound(make, shop):
    """The race guard of ``bind``: when a concurrent first touch inserted first, the
    ON CONFLICT insert returns nothing (and ``bind`` re-reads the winner's row)."""
    from app.distribution.binding import _FIRST_BINDING

    first, second = _distributor(make), _distributor(make)
    customer = make.user()
    row = {
        "user_id": customer.id,
        "source": "qr",
        "bound_at": utcnow(),
        "expires_at": None,
        "protected_until": None,
    }
    won = db.session.scalar(_FIRST_BINDING, {**row, "distributor_id": first.id})
    assert won is not None and won.distributor_id == first.id and won.source == "qr"
    lost = db.session.scalar(_FIRST_BINDING, {**row, "distributor_id": second.id})
    assert lost is None
    db.session.commit()
    assert current_binding(customer.id).distributor_id == first.id
