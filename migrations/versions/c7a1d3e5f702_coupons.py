"""coupons: coupon_templates, customer_coupons, orders.customer_coupon_id and coupon_fen

Revision ID: c7a1d3e5f702
Revises: c8a4e1b7d902
Create Date: 2026-12-07 17:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c7a1d3e5f702"
down_revision = "c8a4e1b7d902"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "coupon_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("threshold_fen", sa.Integer(), nullable=False),
        sa.Column("off_fen", sa.Integer(), nullable=False),
        sa.Column("off_bp", sa.Integer(), nullable=False),
        sa.Column("max_off_fen", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_ids", sa.JSON(), nullable=False),
        sa.Column("valid_mode", sa.String(length=8), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.Column("stock", sa.Integer(), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("per_customer", sa.Integer(), nullable=False),
        sa.Column("distributor_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("issued <= stock", name=op.f("ck_coupon_templates_issued_within_stock")),
        sa.CheckConstraint("issued >= 0", name=op.f("ck_coupon_templates_issued_not_negative")),
        sa.CheckConstraint(
            "per_customer >= 1", name=op.f("ck_coupon_templates_per_customer_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_templates")),
    )
    op.create_table(
        "customer_coupons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("distributor_id", sa.Integer(), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["distributor_id"],
            ["distributors.id"],
            name=op.f("fk_customer_coupons_distributor_id_distributors"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["coupon_templates.id"],
            name=op.f("fk_customer_coupons_template_id_coupon_templates"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_customer_coupons_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_coupons")),
        sa.UniqueConstraint(
            "template_id",
            "user_id",
            "seq",
            name=op.f("uq_customer_coupons_template_id_user_id_seq"),
        ),
    )
    op.create_index(op.f("ix_customer_coupons_template_id"), "customer_coupons", ["template_id"])
    op.create_index("ix_customer_coupons_user_status", "customer_coupons", ["user_id", "status"])
    # Plain add_column (no batch mode: it would drop the report-summary triggers on SQLite).
    op.add_column("orders", sa.Column("customer_coupon_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_orders_customer_coupon_id"), "orders", ["customer_coupon_id"])
    op.add_column(
        "orders", sa.Column("coupon_fen", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade():
    op.drop_index(op.f("ix_orders_customer_coupon_id"), table_name="orders")
    op.drop_column("orders", "coupon_fen")
    op.drop_column("orders", "customer_coupon_id")
    op.drop_index("ix_customer_coupons_user_status", table_name="customer_coupons")
    op.drop_index(op.f("ix_customer_coupons_template_id"), table_name="customer_coupons")
    op.drop_table("customer_coupons")
    op.drop_table("coupon_templates")
