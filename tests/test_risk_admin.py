"""The risk pages of the admin: the queue (evidence side by side, release and reject
through the form), a person's linked accounts, and the settings' validation."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.ledger.kinds import REVERSED
from app.risk.signals import get_risk_settings
from jobs.risk import check_paid_orders
from tests.support.admin import post, text
from tests.support.ledger import entries
from tests.support.risk import audits, holds, ring

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


@pytest.fixture
def staff_client(client, login_as, make):
    login_as(client, make.staff("clerk"))
    return client


def test_the_queue_shows_the_evidence_and_decides_once(staff_client, make):
    empty = text(staff_client.get("/admin/risk"))
    assert "没有待审核的订单" in empty
    _seller, orders = ring(make)
    check_paid_orders([o.id for o in orders])
    body = text(staff_client.get("/admin/risk"))
    assert "多个买家共用同一收货信息" in body and "13912345678" in body
    assert body.count("驳回并冲回") == 3 and "共用收货信息的买家" in body
    first, second = holds()[0], holds()[1]

    done = post(staff_client, f"/admin/risk/holds/{first.id}", {"decision": "release"})
    assert done.status_code == 302
    assert holds(id=first.id)[0].state == "released"
    refused = post(staff_client, f"/admin/risk/holds/{second.id}", {"decision": "reject"})
    assert refused.status_code == 302 and holds(id=second.id)[0].state == "held"
    assert "驳回须填写原因" in text(staff_client.get("/admin/risk"))
    post(staff_client, f"/admin/risk/holds/{second.id}", {"decision": "reject", "note": "刷单"})
    assert holds(id=second.id)[0].state == "rejected"
    assert {e.state for e in entries(order_id=second.order_id)} == {REVERSED}
    again = post(staff_client, f"/admin/risk/holds/{second.id}", {"decision": "release"})
    assert again.status_code == 302 and holds(id=second.id)[0].state == "rejected"
    assert [a.action for a in audits()] == ["risk.release", "risk.reject"]
    assert "刷单" in text(staff_client.get("/admin/risk?state=rejected"))
    assert staff_client.get("/admin/risk?state=nonsense").status_code == 200
    assert staff_client.get(f"/admin/risk/holds/{2**31}").status_code == 405
    assert post(staff_client, f"/admin/risk/holds/{2**31}", {}).status_code == 404


def test_a_person_page_links_the_accounts_of_a_ring(staff_client, make):
    _seller, orders = ring(make)
    check_paid_orders([o.id for o in orders])
    body = text(staff_client.get(f"/admin/risk/people/{orders[0].user_id}"))
    assert "环1" in body and "环2" in body and "收货电话相同" in body and "收货地址相同" in body
    assert orders[0].number in body and "bind" in body
    assert staff_client.get(f"/admin/risk/people/{2**31}").status_code == 404
    lonely = make.user(nickname="独行客")
    page = text(staff_client.get(f"/admin/risk/people/{lonely.id}"))
    assert "没有共用电话" in page and "还没有订单" in page


def test_settings_save_and_refuse_bad_numbers(staff_client):
    page = staff_client.get("/admin/risk/settings")
    assert page.status_code == 200 and "信号开关" in text(page)
    fields = {
        "ring_min_buyers": "4",
        "refund_rate_min_orders": "10",
        "refund_rate_factor_pct": "300",
        "refund_rate_floor_bp": "2000",
        "binding_burst_per_hour": "50",
        "binding_ip_per_hour": "10",
        "threshold_window_hours": "72",
        "shared_receiver_on": "1",
    }
    assert post(staff_client, "/admin/risk/settings", fields).status_code == 302
    db.session.rollback()
    settings = get_risk_settings()
    assert settings.ring_min_buyers == 4 and settings.shared_receiver_on
    assert not settings.receiver_ring_on  # unchecked
    assert [a.action for a in audits()] == ["risk.settings"]
    for bad in ("1", "abc", "９", "99999999", ""):
        refused = post(staff_client, "/admin/risk/settings", {**fields, "ring_min_buyers": bad})
        assert refused.status_code == 400 and "须为 2-1000 的整数" in text(refused)
    db.session.rollback()
    assert get_risk_settings().ring_min_buyers == 4
