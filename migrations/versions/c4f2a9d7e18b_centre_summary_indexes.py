"""centre summary: kept settled history, indexes

The distributor centre's home reads one distributor's figures (app/distribution/summary.py,
bench/centre.py: 100k customers, 1M ledger entries, 100k team members):

- ledger_settled_history: per distributor, what the entries settled before a month's
  start add up to (app/ledger/history.py); settled entries without ``settled_at`` (none are
  written so any more) get their ``created_at``, so every settled entry has one;
- ledger_entries (distributor_id, settled_at) INCLUDE the summed columns: what settled
  since then, index-only;
- ledger_entries (distributor_id, state) now INCLUDEs kind, amount_fen, created_at,
  withdrawal_id and settle_after: balances and 收益 in one index-only pass, and the pending
  entries by date from the index alone;
- bindings (distributor_id, expires_at): live customers counted index-only;
- order_attributions (distributor_id, level) now INCLUDEs team_sales_fen too: promoted
  orders counted index-only.

INCLUDE is PostgreSQL's; on SQLite the ledger and attribution indexes stay as they were.

Revision ID: c4f2a9d7e18b
Revises: 5c1d9e7a3f20
Create Date: 2026-12-07 11:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c4f2a9d7e18b"
down_revision = "5c1d9e7a3f20"
branch_labels = None
depends_on = None

LEDGER_INCLUDE = ["kind", "amount_fen", "created_at", "withdrawal_id", "settle_after"]


def upgrade():
    op.create_table(
        "ledger_settled_history",
        sa.Column("distributor_id", sa.Integer(), nullable=False),
        sa.Column("through_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_fen", sa.BigInteger(), nullable=False),
        sa.Column("income_fen", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["distributor_id"], ["distributors.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("distributor_id"),
    )
    op.execute(
        "UPDATE ledger_entries SET settled_at = created_at "
        "WHERE state IN ('settled', 'withdrawn') AND settled_at IS NULL"
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_distributor_state")
        batch_op.create_index(
            "ix_ledger_entries_distributor_state",
            ["distributor_id", "state"],
            unique=False,
            postgresql_include=LEDGER_INCLUDE,
        )
        batch_op.create_index(
            "ix_ledger_entries_distributor_settled_at",
            ["distributor_id", "settled_at"],
            unique=False,
            postgresql_include=["state", "kind", "amount_fen", "created_at", "withdrawal_id"],
        )
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bindings_distributor_expires", ["distributor_id", "expires_at"], unique=False
        )
    with op.batch_alter_table("order_attributions", schema=None) as batch_op:
        batch_op.drop_index("ix_order_attributions_distributor_level")
        batch_op.create_index(
            "ix_order_attributions_distributor_level",
            ["distributor_id", "level"],
            unique=False,
            postgresql_include=["order_id", "team_sales_fen"],
        )


def downgrade():
    with op.batch_alter_table("order_attributions", schema=None) as batch_op:
        batch_op.drop_index("ix_order_attributions_distributor_level")
        batch_op.create_index(
            "ix_order_attributions_distributor_level",
            ["distributor_id", "level"],
            unique=False,
            postgresql_include=["order_id"],
        )
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.drop_index("ix_bindings_distributor_expires")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_distributor_settled_at")
        batch_op.drop_index("ix_ledger_entries_distributor_state")
        batch_op.create_index(
            "ix_ledger_entries_distributor_state", ["distributor_id", "state"], unique=False
        )
    op.drop_table("ledger_settled_history")
