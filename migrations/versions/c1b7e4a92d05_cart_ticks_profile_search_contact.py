"""cart ticks, WeChat profile refresh, search terms, customer service contact

- ``cart_items.selected``: the 勾选 of a cart line; checkout takes only ticked lines.
- ``users.profile_refreshed_at``: when nickname and avatar last came from snsapi_userinfo.
- ``search_terms``: how often each term was searched with results (hot terms).
- ``recent_searches``: each customer's recent searches (one row per term).
- ``customer_service``: what 联系客服 shows (one row): phone, WeChat ID, QR image, the
  official account's 客服 message.

Revision ID: c1b7e4a92d05
Revises: 5f2c9a7e4d31
Create Date: 2026-12-07 17:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c1b7e4a92d05"
down_revision = "5f2c9a7e4d31"
branch_labels = None
depends_on = None


def upgrade():
    # Plain add_column (not batch mode) keeps SQLite's triggers on the other tables.
    op.add_column(
        "cart_items",
        sa.Column("selected", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column(
        "users", sa.Column("profile_refreshed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "search_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_searched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("term"),
    )
    op.create_table(
        "recent_searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("searched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "term"),
    )
    op.create_table(
        "customer_service",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("wechat_id", sa.String(length=64), nullable=False),
        sa.Column("qr_image", sa.String(length=255), nullable=False),
        sa.Column("kefu_enabled", sa.Boolean(), nullable=False),
        sa.Column("kefu_note", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("customer_service")
    op.drop_table("recent_searches")
    op.drop_table("search_terms")
    op.drop_column("users", "profile_refreshed_at")
    op.drop_column("cart_items", "selected")
