"""unpaid order cap, per-product purchase limit, 15-minute pay window

``shop_settings.max_unpaid_orders`` (default 3): how many unpaid orders one customer may
hold at a time. ``products.purchase_limit`` (0 = none): 限购 N per customer. The pay
window's default drops from 30 to 15 minutes; a shop still at the old default moves to
the new one (a shop that chose another value keeps it).

Revision ID: a7c31e5d9f02
Revises: a7c3e91d5b20
Create Date: 2026-12-07 01:40:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7c31e5d9f02"
down_revision = "a7c3e91d5b20"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("shop_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("max_unpaid_orders", sa.Integer(), nullable=False, server_default="3")
        )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purchase_limit", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute("UPDATE shop_settings SET pay_timeout_minutes = 15 WHERE pay_timeout_minutes = 30")


def downgrade():
    op.execute("UPDATE shop_settings SET pay_timeout_minutes = 30 WHERE pay_timeout_minutes = 15")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("purchase_limit")
    with op.batch_alter_table("shop_settings", schema=None) as batch_op:
        batch_op.drop_column("max_unpaid_orders")
