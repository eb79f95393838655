"""api token scope and expiry

Open API tokens get a scope (read, write, owner) and an optional expiry. Tokens made before
this revision could do everything the Open API offered, owner settings included, so they
become ``owner`` tokens: an integration keeps working exactly as it did until the owner
replaces its token with a narrower one. New tokens get their scope from the code.

Revision ID: a7c3e91d5f20
Revises: a7c31e5d9f02
Create Date: 2026-12-07 01:40:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a7c3e91d5f20"
down_revision = "a7c31e5d9f02"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=8), nullable=False, server_default="owner")
        )
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    # The default was only for the rows already there; the model names every new scope.
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.alter_column("scope", server_default=None)


def downgrade():
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("scope")
