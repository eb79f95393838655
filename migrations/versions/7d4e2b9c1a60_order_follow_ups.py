"""order_follow_ups: paid orders whose follow-up (earnings) committed

The worker's recovery pass looks for paid orders whose follow-up never committed (a worker
killed mid-job, a job lost between dequeue and registration, Redis down at the payment's
commit) and queues it again. Orders already paid count as done as of their payment, so the
pass does not redo history.

Revision ID: 7d4e2b9c1a60
Revises: a7c3e91d5f20
Create Date: 2026-12-07 01:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "7d4e2b9c1a60"
down_revision = "a7c3e91d5f20"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "order_follow_ups",
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_follow_ups_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_follow_ups")),
    )
    op.execute(
        "INSERT INTO order_follow_ups (order_id, done_at)"
        " SELECT id, paid_at FROM orders WHERE paid_at IS NOT NULL"
    )


def downgrade():
    op.drop_table("order_follow_ups")
