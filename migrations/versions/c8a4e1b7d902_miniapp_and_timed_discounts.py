"""mini-program sign-in (users.wxa_openid, customer_tokens) and timed discounts

Plain ``op.add_column`` (never batch mode): on SQLite batch mode recreates the table and
loses the report-summary triggers of migration 439552e7cc3c.

Revision ID: c8a4e1b7d902
Revises: 5f2c9a7e4d31
Create Date: 2026-12-07 17:10:00.000000

"""

import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = "c8a4e1b7d902"
down_revision = "5f2c9a7e4d31"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("wxa_openid", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_users_wxa_openid"), "users", ["wxa_openid"], unique=True)
    op.create_table(
        "customer_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("access_hash", sa.String(length=64), nullable=False),
        sa.Column("refresh_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refresh_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_customer_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_tokens")),
        sa.UniqueConstraint("access_hash", name=op.f("uq_customer_tokens_access_hash")),
        sa.UniqueConstraint("refresh_hash", name=op.f("uq_customer_tokens_refresh_hash")),
    )
    op.create_index(
        op.f("ix_customer_tokens_user_id"), "customer_tokens", ["user_id"], unique=False
    )


def downgrade():
    op.drop_index(op.f("ix_customer_tokens_user_id"), table_name="customer_tokens")
    op.drop_table("customer_tokens")
    op.drop_index(op.f("ix_users_wxa_openid"), table_name="users")
    op.drop_column("users", "wxa_openid")
