"""centre summary indexes

The distributor centre's home reads one distributor's figures (app/distribution/summary.py,
bench/centre.py: 100k customers, 1M ledger entries, 100k team members):

- ledger_entries (distributor_id, state) now INCLUDEs kind, amount_fen, created_at,
  withdrawal_id and settle_after: balances and 收益 in one index-only pass, and the pending
  entries by date from the index alone;
- bindings (distributor_id, expires_at): live customers counted index-only;
- order_attributions (distributor_id, level) now INCLUDEs team_sales_fen too: promoted
  orders counted index-only.

INCLUDE is PostgreSQL's; on SQLite the ledger and attribution indexes stay as they were.

Revision ID: c4f2a9d7e18b
Revises: 3b8e5d71c2a4
Create Date: 2026-12-07 11:30:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "c4f2a9d7e18b"
down_revision = "3b8e5d71c2a4"
branch_labels = None
depends_on = None

LEDGER_INCLUDE = ["kind", "amount_fen", "created_at", "withdrawal_id", "settle_after"]


def upgrade():
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_distributor_state")
        batch_op.create_index(
            "ix_ledger_entries_distributor_state",
            ["distributor_id", "state"],
            unique=False,
            postgresql_include=LEDGER_INCLUDE,
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
        batch_op.drop_index("ix_ledger_entries_distributor_state")
        batch_op.create_index(
            "ix_ledger_entries_distributor_state", ["distributor_id", "state"], unique=False
        )
