"""risk control: risk_flags, risk_settings, ledger_holds, sign_in_traces

- ``risk_flags``: one row per (signal, subject) raised by the risk checks (app/risk/);
- ``risk_settings``: each signal on or off and its thresholds (row id 1);
- ``ledger_holds``: a distributor's earnings on an order held for review (settlement
  skips them while held; released or rejected once);
- ``sign_in_traces``: a customer's sign-in address and hashed user agent.

New tables only: nothing on the report-summary triggers' tables changes.

Revision ID: c5a1e9d3b7f2
Revises: c2a7f3e91b04
Create Date: 2026-12-07 16:53:23.826890

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c5a1e9d3b7f2"
down_revision = "c2a7f3e91b04"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "risk_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shared_receiver_on", sa.Boolean(), nullable=False),
        sa.Column("shared_payer_on", sa.Boolean(), nullable=False),
        sa.Column("shared_device_on", sa.Boolean(), nullable=False),
        sa.Column("receiver_ring_on", sa.Boolean(), nullable=False),
        sa.Column("ring_min_buyers", sa.Integer(), nullable=False),
        sa.Column("refund_rate_on", sa.Boolean(), nullable=False),
        sa.Column("refund_rate_min_orders", sa.Integer(), nullable=False),
        sa.Column("refund_rate_factor_pct", sa.Integer(), nullable=False),
        sa.Column("refund_rate_floor_bp", sa.Integer(), nullable=False),
        sa.Column("binding_burst_on", sa.Boolean(), nullable=False),
        sa.Column("binding_burst_per_hour", sa.Integer(), nullable=False),
        sa.Column("binding_ip_per_hour", sa.Integer(), nullable=False),
        sa.Column("threshold_refund_on", sa.Boolean(), nullable=False),
        sa.Column("threshold_window_hours", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_settings")),
    )
    op.create_table(
        "sign_in_traces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("ua_hash", sa.String(length=16), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sign_in_traces_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_traces")),
        sa.UniqueConstraint(
            "user_id", "ip", "ua_hash", name=op.f("uq_sign_in_traces_user_id_ip_ua_hash")
        ),
    )
    op.create_index("ix_sign_in_traces_ip_ua", "sign_in_traces", ["ip", "ua_hash"], unique=False)

    op.create_table(
        "ledger_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("distributor_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("decision_note", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "state IN ('held', 'released', 'rejected')",
            name=op.f("ck_ledger_holds_hold_state_known"),
        ),
        sa.ForeignKeyConstraint(
            ["distributor_id"],
            ["distributors.id"],
            name=op.f("fk_ledger_holds_distributor_id_distributors"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_ledger_holds_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_holds")),
        sa.UniqueConstraint(
            "order_id", "distributor_id", name=op.f("uq_ledger_holds_order_id_distributor_id")
        ),
    )
    op.create_index(
        op.f("ix_ledger_holds_distributor_id"), "ledger_holds", ["distributor_id"], unique=False
    )
    op.create_index("ix_ledger_holds_state", "ledger_holds", ["state", "id"], unique=False)

    op.create_table(
        "risk_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signal", sa.String(length=32), nullable=False),
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("distributor_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["distributor_id"],
            ["distributors.id"],
            name=op.f("fk_risk_flags_distributor_id_distributors"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_risk_flags_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_risk_flags_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_flags")),
        sa.UniqueConstraint("signal", "subject_key", name=op.f("uq_risk_flags_signal_subject_key")),
    )
    op.create_index(
        "ix_risk_flags_distributor", "risk_flags", ["distributor_id", "id"], unique=False
    )
    op.create_index("ix_risk_flags_order", "risk_flags", ["order_id"], unique=False)
    op.create_index(op.f("ix_risk_flags_user_id"), "risk_flags", ["user_id"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_risk_flags_user_id"), table_name="risk_flags")
    op.drop_index("ix_risk_flags_order", table_name="risk_flags")
    op.drop_index("ix_risk_flags_distributor", table_name="risk_flags")

    op.drop_table("risk_flags")
    op.drop_index("ix_ledger_holds_state", table_name="ledger_holds")
    op.drop_index(op.f("ix_ledger_holds_distributor_id"), table_name="ledger_holds")

    op.drop_table("ledger_holds")
    op.drop_index("ix_sign_in_traces_ip_ua", table_name="sign_in_traces")

    op.drop_table("sign_in_traces")
    op.drop_table("risk_settings")
