"""Housekeeping: old push dedupe rows and finished outbox rows are pruned, nothing else."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.core.time import utcnow
from app.extensions import db
from app.wechat.models import OutboundMessage, WechatMessageSeen
from jobs.maintenance import run_pruning


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


def test_pruning_keeps_recent_and_pending_rows(app_ctx):
    for i in range(5):
        _seen(f"msg:old{i}", timedelta(days=8))
    _seen("msg:recent", timedelta(days=6))
    for i in range(3):
        _outbox(f"old-sent-{i}", "sent", timedelta(days=91))
    _outbox("old-failed", "failed", timedelta(days=91))
    _outbox("old-pending", "pending", timedelta(days=91))  # still to send: kept
    _outbox("recent-sent", "sent", timedelta(days=30))
    db.session.commit()

    assert run_pruning(batch=2) == {"seen": 5, "outbox": 4}  # several batches
    db.session.rollback()
    assert db.session.scalars(select(WechatMessageSeen.dedupe_key)).all() == ["msg:recent"]
    assert sorted(db.session.scalars(select(OutboundMessage.dedupe_key))) == [
        "old-pending",
        "recent-sent",
    ]
    assert run_pruning() == {"seen": 0, "outbox": 0}
