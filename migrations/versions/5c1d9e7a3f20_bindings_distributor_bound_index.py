"""bindings: index (distributor_id, bound_at) for 我的客户

A distributor's customer list pages through their bindings newest first; with 100k
customers the single-column index on distributor_id made every page sort them all. The
composite index serves both that and every lookup by distributor_id, so it replaces it.

Revision ID: 5c1d9e7a3f20
Revises: 3b8e5d71c2a4
Create Date: 2026-12-07 11:30:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "5c1d9e7a3f20"
down_revision = "3b8e5d71c2a4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bindings_distributor_bound", ["distributor_id", "bound_at"], unique=False
        )
        batch_op.drop_index("ix_bindings_distributor_id")


def downgrade():
    with op.batch_alter_table("bindings", schema=None) as batch_op:
        batch_op.create_index("ix_bindings_distributor_id", ["distributor_id"], unique=False)
        batch_op.drop_index("ix_bindings_distributor_bound")
