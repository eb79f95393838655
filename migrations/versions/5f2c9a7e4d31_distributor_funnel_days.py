"""promotion funnel: distributor_funnel_days and funnel_closed_days

- ``distributor_funnel_days``: per Beijing day, distributor and product (0 = the whole
  day) the visits counted in Redis and the bindings, paid orders, sales and commission
  read from the database, written by the periodic rollup (jobs/funnel.py).
- ``funnel_closed_days``: the days rolled up after they ended (read from the table alone).

Revision ID: 5f2c9a7e4d31
Revises: c4f2a9d7e18b
Create Date: 2026-12-07 11:20:00.000000

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "5f2c9a7e4d31"
down_revision = "c4f2a9d7e18b"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "distributor_funnel_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("distributor_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("visits", sa.BigInteger(), nullable=False),
        sa.Column("bindings", sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("sales_fen", sa.BigInteger(), nullable=False),
        sa.Column("commission_fen", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "distributor_id", "product_id", name=op.f("pk_distributor_funnel_days")
        ),
    )
    op.create_index(
        "ix_distributor_funnel_days_distributor_day",
        "distributor_funnel_days",
        ["distributor_id", "day"],
    )
    op.create_table(
        "funnel_closed_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_funnel_closed_days")),
    )


def downgrade():
    op.drop_table("funnel_closed_days")
    op.drop_index(
        "ix_distributor_funnel_days_distributor_day", table_name="distributor_funnel_days"
    )
    op.drop_table("distributor_funnel_days")
