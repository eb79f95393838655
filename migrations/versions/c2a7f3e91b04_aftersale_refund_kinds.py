"""after-sale: refund kind, description, photos and the return parcel

- ``refunds.kind``: ``refund_only`` (仅退款, every refund so far) or ``return_refund``
  (退货退款); each kind has its own transition map (app/orders/states.py).
- ``refunds.description`` and ``refunds.photos`` (stored file names, up to 3).
- ``refunds.return_carrier`` / ``return_tracking_number``: the parcel the customer sends back.

Plain ``add_column`` (no batch mode): SQLite keeps the report triggers on ``refunds``.

Revision ID: c2a7f3e91b04
Revises: c3e7a1d90b52
Create Date: 2026-12-07 17:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c2a7f3e91b04"
down_revision = "c3e7a1d90b52"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "refunds",
        sa.Column("kind", sa.String(length=16), server_default="refund_only", nullable=False),
    )
    op.add_column(
        "refunds",
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
    )
    op.add_column("refunds", sa.Column("photos", sa.JSON(), server_default="[]", nullable=False))
    op.add_column("refunds", sa.Column("return_carrier", sa.String(length=32), nullable=True))
    op.add_column(
        "refunds", sa.Column("return_tracking_number", sa.String(length=64), nullable=True)
    )


def downgrade():
    op.drop_column("refunds", "return_tracking_number")
    op.drop_column("refunds", "return_carrier")
    op.drop_column("refunds", "photos")
    op.drop_column("refunds", "description")
    op.drop_column("refunds", "kind")
