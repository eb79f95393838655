"""``core.sql.insert_rows_chunked``: many rows in few statements, ``DO NOTHING`` on the
key, in the order given; on PostgreSQL through one JSON parameter
(``insert_rows_json``), on SQLite through cached multi-row ``VALUES``. Both must write
the same rows: text with quotes and Chinese, NULLs, naive and aware times, repeats of a
key within the call and keys already in the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from app.core import sql
from app.core.sql import insert_rows_chunked
from app.extensions import db
from app.wechat.models import OutboundMessage

pytestmark = pytest.mark.postgresql  # engine-specific SQL

COLUMNS = (
    "dedupe_key",
    "kind",
    "openid",
    "payload",
    "status",
    "attempts",
    "last_error",
    "created_at",
)
TABLE = OutboundMessage.__table__
RETURNING = (TABLE.c.id, TABLE.c.dedupe_key)


def row(key: str, **values) -> dict:
    return {
        "dedupe_key": key,
        "kind": "commission_earned",
        "openid": "o" + key,
        "payload": '{"text": "佣金 ¥1.00, \\"quoted\\" \' {braces} \\\\ back"}',
        "status": "pending",
        "attempts": 0,
        "last_error": "",
        "created_at": datetime(2026, 12, 7, 15, 0, tzinfo=UTC),
        **values,
    }


@pytest.mark.parametrize("per_statement", [64, 2])
def test_rows_written_once_in_the_order_given(app_ctx, monkeypatch, per_statement):
    monkeypatch.setattr(sql, "ROWS_PER_INSERT", per_statement)  # SQLite: several chunks
    insert_rows_chunked(TABLE, COLUMNS, [row("k2", openid="before")], conflict=("dedupe_key",))
    beijing = timezone(timedelta(hours=8))
    rows = [
        row("k1", created_at=datetime(2026, 12, 7, 16, 30)),  # naive: taken as UTC
        row("k2"),  # in the table already
        row("k3", created_at=datetime(2026, 12, 8, 0, 30, tzinfo=beijing), last_error="错误"),
        row("k1", openid="repeat"),  # a repeat of a key earlier in the call
        row("k4", attempts=7),
    ]
    written = insert_rows_chunked(
        TABLE, COLUMNS, rows, conflict=("dedupe_key",), returning=RETURNING
    )
    assert [key for _id, key in written] == ["k1", "k3", "k4"]
    ids = [message_id for message_id, _key in written]
    assert ids == sorted(ids)  # ids follow the order given
    db.session.commit()

    found = {r.dedupe_key: r for r in db.session.scalars(select(OutboundMessage)).all()}
    assert sorted(found) == ["k1", "k2", "k3", "k4"]
    assert found["k1"].openid == "ok1" and found["k2"].openid == "before"
    assert found["k1"].created_at == datetime(2026, 12, 7, 16, 30, tzinfo=UTC)
    assert found["k3"].created_at == datetime(2026, 12, 7, 16, 30, tzinfo=UTC)
    assert found["k3"].last_error == "错误" and found["k4"].attempts == 7
    assert found["k4"].payload == rows[0]["payload"]
    assert insert_rows_chunked(TABLE, COLUMNS, [], conflict=("dedupe_key",)) == []
