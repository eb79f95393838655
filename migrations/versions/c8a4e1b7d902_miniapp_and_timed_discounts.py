"""mini-program sign-in (users.wxa_openid, customer_tokens) and timed discounts

Plain ``op.add_column`` (never batch mode): on SQLite batch mode recreates the table and
loses the report-summary triggers of migration 439552e7cc3c.

Revision ID: c8a4e1b7d902
Revises: c5a1e9d3b7f2
Create Date: 2026-12-07 17:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c8a4e1b7d902"
down_revision = "c5a1e9d3b7f2"
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

    op.create_table(
        "timed_discounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("percent_off_bp", sa.Integer(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "mode IN ('percent', 'price')", name=op.f("ck_timed_discounts_mode_known")
        ),
        sa.CheckConstraint(
            "percent_off_bp IS NULL OR (percent_off_bp > 0 AND percent_off_bp < 10000)",
            name=op.f("ck_timed_discounts_percent_in_range"),
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_timed_discounts_window_forward")),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_timed_discounts_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timed_discounts")),
    )
    op.create_index(
        "ix_timed_discounts_product_window",
        "timed_discounts",
        ["product_id", "starts_at", "ends_at"],
        unique=False,
    )
    op.create_table(
        "timed_discount_prices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("discount_id", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.Integer(), nullable=False),
        sa.Column("price_fen", sa.Integer(), nullable=False),
        sa.CheckConstraint("price_fen > 0", name=op.f("ck_timed_discount_prices_price_positive")),
        sa.ForeignKeyConstraint(
            ["discount_id"],
            ["timed_discounts.id"],
            name=op.f("fk_timed_discount_prices_discount_id_timed_discounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sku_id"],
            ["skus.id"],
            name=op.f("fk_timed_discount_prices_sku_id_skus"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timed_discount_prices")),
        sa.UniqueConstraint(
            "discount_id", "sku_id", name=op.f("uq_timed_discount_prices_discount_id_sku_id")
        ),
    )
    op.create_index(
        op.f("ix_timed_discount_prices_discount_id"),
        "timed_discount_prices",
        ["discount_id"],
        unique=False,
    )
    op.create_table(
        "discount_product_settings",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("commission_on", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_discount_product_settings_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_discount_product_settings")),
    )
    # Plain add_column: batch mode would drop the report-summary triggers on order_lines.
    op.add_column(
        "order_lines",
        sa.Column("commission_exempt", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade():
    op.drop_column("order_lines", "commission_exempt")
    op.drop_table("discount_product_settings")
    op.drop_index(op.f("ix_timed_discount_prices_discount_id"), table_name="timed_discount_prices")
    op.drop_table("timed_discount_prices")
    op.drop_index("ix_timed_discounts_product_window", table_name="timed_discounts")
    op.drop_table("timed_discounts")
    op.drop_index(op.f("ix_customer_tokens_user_id"), table_name="customer_tokens")
    op.drop_table("customer_tokens")
    op.drop_index(op.f("ix_users_wxa_openid"), table_name="users")
    op.drop_column("users", "wxa_openid")
