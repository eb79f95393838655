"""report indexes (orders.paid_at, ledger_entries.created_at, refunds.refunded_at, users.created_at)

Revision ID: 5e1f0c2a9b7d
Revises: 49c099c4cf95
Create Date: 2026-11-27 01:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5e1f0c2a9b7d'
down_revision = '49c099c4cf95'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_orders_paid_at', 'orders', ['paid_at'], postgresql_include=['paid_fen']
    )
    op.create_index(
        'ix_ledger_entries_created_at',
        'ledger_entries',
        ['created_at'],
        postgresql_include=['kind', 'state', 'amount_fen', 'reverses_id'],
    )
    op.create_index('ix_refunds_refunded_at', 'refunds', ['refunded_at'])
    op.create_index(op.f('ix_users_created_at'), 'users', ['created_at'])


def downgrade():
    op.drop_index(op.f('ix_users_created_at'), table_name='users')
    op.drop_index('ix_refunds_refunded_at', table_name='refunds')
    op.drop_index('ix_ledger_entries_created_at', table_name='ledger_entries')
    op.drop_index('ix_orders_paid_at', table_name='orders')
