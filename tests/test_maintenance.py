"""Housekeeping: old push dedupe rows and finished outbox rows are pruned, nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.accounts.models import StaffSession
from app.core.time import utcnow
from app.extensions import db
from app.wechat.models import OutboundMessage, WechatMessageSeen
from jobs.maintenance import run_pruning
from tests.support import factories

pytestmark = pytest.mark.postgresql  # date-bounded DELETEs


def _seen(key: str, age: timedelta) -> None:
    db.session.add(
        WechatMessageSeen(dedupe_key=key, openid="o_x", kind="text", received_at=utcnow() - age)
    )


def _outbox(key: str, status: str, age: timedelta) -> None:
    db.session.add(
        OutboundMessage(
            dedupe_key=key,
            kind="order_paid",
            openid="o_x",
            status=status,
            created_at=utcnow() - age,
        )
    )


def _staff_session(staff_id: int, key: str, age: timedelta) -> None:
    began = utcnow() - age
    db.session.add(
        StaffSession(
            token_hash=StaffSession.hash(key),
            staff_id=staff_id,
            created_at=began,
            last_seen_at=began,
            ended_at=began + timedelta(hours=1),
            ended_reason="logout",
        )
    )


def test_pruning_keeps_recent_and_pending_rows(app_ctx):
    for i in range(5):
        _seen(f"msg:old{i}", timedelta(days=8))
    _seen("msg:recent", timedelta(days=6))
    for i in range(3):
        _outbox(f"old-sent-{i}", "sent", timedelta(days=91))
    _outbox("old-failed", "failed", timedelta(days=91))
    _outbox("old-pending", "pending", timedelta(days=91))  # still to send: kept
    _outbox("recent-sent", "sent", timedelta(days=30))
    clerk = factories.staff("clerk")
    db.session.flush()
    for i in range(3):
        _staff_session(clerk.id, f"old-{i}", timedelta(days=31))
    _staff_session(clerk.id, "recent", timedelta(days=29))
    db.session.commit()

    assert run_pruning(batch=2) == {"seen": 5, "outbox": 4, "staff_sessions": 3}
    db.session.rollback()
    assert db.session.scalars(select(WechatMessageSeen.dedupe_key)).all() == ["msg:recent"]
    assert sorted(db.session.scalars(select(OutboundMessage.dedupe_key))) == [
        "old-pending",
        "recent-sent",
    ]
    assert db.session.scalars(select(StaffSession.token_hash)).all() == [
        StaffSession.hash("recent")
    ]
    assert run_pruning() == {"seen": 0, "outbox": 0, "staff_sessions": 0}
