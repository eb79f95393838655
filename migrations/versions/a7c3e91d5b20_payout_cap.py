"""payout cap: the most all earnings on one order line may add up to

``distribution_settings.payout_cap_bp``: commission levels plus region dividends on one
line never exceed this share (basis points) of what the customer paid for the line.
Default 3000 (30%, 直销管理条例 第二十四条); 0..10000.

Revision ID: a7c3e91d5b20
Revises: 5e55a0f1c0de
Create Date: 2026-12-07 01:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7c3e91d5b20"
down_revision = "5e55a0f1c0de"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("distribution_settings") as batch:
        batch.add_column(
            sa.Column("payout_cap_bp", sa.Integer(), nullable=False, server_default="3000")
        )
        batch.create_check_constraint(
            op.f("ck_distribution_settings_payout_cap_bp_range"),
            "payout_cap_bp BETWEEN 0 AND 10000",
        )


def downgrade():
    with op.batch_alter_table("distribution_settings") as batch:
        batch.drop_constraint(op.f("ck_distribution_settings_payout_cap_bp_range"), type_="check")
        batch.drop_column("payout_cap_bp")
