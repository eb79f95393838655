"""product page settings, staged product images, order_lines.product_id index

- ``product_page_settings``: the owner's service promises shown on every product page.
- ``staged_images``: images uploaded on the new-product form before its first save.
- ``ix_order_lines_product_id``: the product page's sales count (已售) reads a product's
  lines on every view.

Revision ID: c3e7a1d90b52
Revises: c1b7e4a92d05
Create Date: 2026-12-07 17:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c3e7a1d90b52"
down_revision = "c1b7e4a92d05"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "product_page_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("promises", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_page_settings")),
    )
    op.create_table(
        "staged_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=128), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staged_images")),
    )
    op.create_index(op.f("ix_staged_images_batch"), "staged_images", ["batch"], unique=False)
    op.create_index(
        op.f("ix_staged_images_created_at"), "staged_images", ["created_at"], unique=False
    )
    op.create_index(op.f("ix_order_lines_product_id"), "order_lines", ["product_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_order_lines_product_id"), table_name="order_lines")
    op.drop_index(op.f("ix_staged_images_created_at"), table_name="staged_images")
    op.drop_index(op.f("ix_staged_images_batch"), table_name="staged_images")
    op.drop_table("staged_images")
    op.drop_table("product_page_settings")
