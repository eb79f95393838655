"""ledger: entry state history, CHECKs on kind and state, task_id, settle_after written

- ``ledger_entry_changes``: one row per state change of a ledger entry.
- ``ledger_entries``: CHECK constraints on ``kind`` and ``state``; ``task_id`` (FK to
  tasks) for task rewards, backfilled from the display field ``rule_source``
  ("task:<id>"); ``settle_after`` backfilled for pending entries of completed orders
  (completed_at + the shop's settlement hold).

Revision ID: 3b8e5d71c2a4
Revises: 7d4e2b9c1a60
Create Date: 2026-12-07 04:40:00.000000

"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "3b8e5d71c2a4"
down_revision = "7d4e2b9c1a60"
branch_labels = None
depends_on = None

KINDS = (
    "level_1",
    "level_2",
    "level_3",
    "region_dividend",
    "price_difference",
    "task_reward",
    "invite_reward",
    "withdrawal",
    "reversal",
)
STATES = ("pending", "settled", "withdrawn", "reversed")


def _one_of(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _sqlite_triggers() -> list[str]:
    """The triggers on ledger_entries (the reports' change counters, 439552e7cc3c): SQLite's
    batch mode rebuilds the table, which drops them, so they are made again after it."""
    if op.get_bind().dialect.name != "sqlite":
        return []
    return list(
        op.get_bind()
        .execute(
            sa.text(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger'"
                " AND tbl_name = 'ledger_entries' AND sql IS NOT NULL ORDER BY name"
            )
        )
        .scalars()
    )


def _restore(triggers: list[str]) -> None:
    for sql in triggers:
        op.execute(sql)


def upgrade():
    op.create_table(
        "ledger_entry_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=12), nullable=False),
        sa.Column("to_state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            _one_of("from_state", STATES),
            name=op.f("ck_ledger_entry_changes_from_state_known"),
        ),
        sa.CheckConstraint(
            _one_of("to_state", STATES), name=op.f("ck_ledger_entry_changes_to_state_known")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_ledger_entry_changes_entry_id_ledger_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entry_changes")),
    )
    with op.batch_alter_table("ledger_entry_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_entry_changes_entry_id"), ["entry_id"], unique=False
        )

    triggers = _sqlite_triggers()
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_ledger_entries_task_id_tasks"), "tasks", ["task_id"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_ledger_entries_task_id"), ["task_id"], unique=False)
        batch_op.create_check_constraint(
            op.f("ck_ledger_entries_kind_known"), _one_of("kind", KINDS)
        )
        batch_op.create_check_constraint(
            op.f("ck_ledger_entries_state_known"), _one_of("state", STATES)
        )
    _restore(triggers)

    # Task rewards said which task they pay for only in rule_source ("task:<id>").
    op.execute(
        "UPDATE ledger_entries SET task_id = CAST(SUBSTR(rule_source, 6) AS INTEGER)"
        " WHERE kind = 'task_reward' AND rule_source LIKE 'task:%'"
        " AND EXISTS (SELECT 1 FROM tasks"
        "   WHERE tasks.id = CAST(SUBSTR(ledger_entries.rule_source, 6) AS INTEGER))"
    )

    # settle_after of what is still pending on a completed order: completed_at + hold.
    bind = op.get_bind()
    hold = bind.execute(
        sa.text("SELECT settlement_hold_days FROM distribution_settings WHERE id = 1")
    ).scalar()
    hold = 7 if hold is None else int(hold)
    rows = bind.execute(
        sa.text(
            "SELECT e.id, o.completed_at FROM ledger_entries e JOIN orders o ON o.id = e.order_id"
            " WHERE e.state = 'pending' AND o.status = 'completed'"
            " AND o.completed_at IS NOT NULL"
        ).columns(sa.column("id", sa.Integer), sa.column("completed_at", sa.DateTime(True)))
    ).all()
    if rows:
        bind.execute(
            sa.text("UPDATE ledger_entries SET settle_after = :at WHERE id = :id").bindparams(
                sa.bindparam("at", type_=sa.DateTime(timezone=True))
            ),
            [{"id": row.id, "at": row.completed_at + timedelta(days=hold)} for row in rows],
        )


def downgrade():
    triggers = _sqlite_triggers()
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ledger_entries_state_known"), type_="check")
        batch_op.drop_constraint(op.f("ck_ledger_entries_kind_known"), type_="check")
        batch_op.drop_index(batch_op.f("ix_ledger_entries_task_id"))
        batch_op.drop_constraint(batch_op.f("fk_ledger_entries_task_id_tasks"), type_="foreignkey")
        batch_op.drop_column("task_id")
    _restore(triggers)
    with op.batch_alter_table("ledger_entry_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entry_changes_entry_id"))
    op.drop_table("ledger_entry_changes")
