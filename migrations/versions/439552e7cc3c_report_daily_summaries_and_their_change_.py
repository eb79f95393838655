"""report daily summaries and their change triggers

Tables for the reports' daily summaries (app/reports/models.py) and the triggers that bump
``report_days.changes`` whenever a row of a past Beijing day changes, so a summary is never
read once it is behind (the rule is in app/reports/summary.py). PostgreSQL: one statement-
level trigger per table and operation over the transition tables (a settlement batch of
100k rows marks its few days once); SQLite (development, tests): row-level triggers.

Revision ID: 439552e7cc3c
Revises: cc1a3a83fa3a
Create Date: 2026-11-27 02:20:07.662103

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "439552e7cc3c"
down_revision = "cc1a3a83fa3a"
branch_labels = None
depends_on = None


# table -> (day of a row ``r`` as SQL per dialect, join needed, columns whose change matters)
BEIJING_PG = "AT TIME ZONE 'Asia/Shanghai'"
TOUCHED = {
    "orders": ("paid_at", False, ["paid_at", "paid_fen"]),
    "order_lines": (
        "paid_at",
        True,
        [
            "order_id",
            "product_id",
            "title",
            "quantity",
            "amount_fen",
            "refunded_quantity",
            "refunded_fen",
        ],
    ),
    "order_attributions": ("paid_at", True, ["order_id", "level", "distributor_id"]),
    "refunds": ("refunded_at", False, ["status", "amount_fen", "refunded_at"]),
    "ledger_entries": (
        "created_at",
        False,
        ["created_at", "kind", "state", "amount_fen", "distributor_id", "reverses_id"],
    ),
}

PG_TOUCH = """
CREATE FUNCTION report_touch(days date[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO report_days (day, changes)
  SELECT DISTINCT d, 1 FROM unnest(days) AS d
  WHERE d IS NOT NULL AND d < (now() AT TIME ZONE 'Asia/Shanghai')::date
  ORDER BY 1  -- rows locked in day order: two writers cannot deadlock here
  ON CONFLICT (day) DO UPDATE SET changes = report_days.changes + 1
$$
"""


def _pg_days(table: str, rows: str, other: str | None) -> str:
    column, join, columns = TOUCHED[table]
    source = f"{rows} r JOIN orders o ON o.id = r.order_id" if join else f"{rows} r"
    day = f"({'o' if join else 'r'}.{column} {BEIJING_PG})::date"
    where = ""
    if other:
        mine = ", ".join(f"r.{c}" for c in columns)
        theirs = ", ".join(f"x.{c}" for c in columns)
        source += f" JOIN {other} x ON x.id = r.id"
        where = f" WHERE ROW({mine}) IS DISTINCT FROM ROW({theirs})"
    return f"SELECT DISTINCT {day} FROM {source}{where}"  # noqa: S608 (constants only)


def _pg_upgrade() -> None:
    op.execute(PG_TOUCH)
    for table in TOUCHED:
        op.execute(f"""
CREATE FUNCTION report_touch_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM report_touch(ARRAY({_pg_days(table, "new_rows", None)}));
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM report_touch(ARRAY({_pg_days(table, "old_rows", None)}));
  ELSE
    PERFORM report_touch(ARRAY({_pg_days(table, "new_rows", "old_rows")}
      UNION {_pg_days(table, "old_rows", "new_rows")}));
  END IF;
  RETURN NULL;
END
$$
""")
        for op_name, suffix, referencing in (
            ("INSERT", "ins", "NEW TABLE AS new_rows"),
            ("UPDATE", "upd", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "del", "OLD TABLE AS old_rows"),
        ):
            op.execute(
                f"CREATE TRIGGER report_touch_{table}_{suffix} AFTER {op_name} ON {table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION report_touch_{table}()"
            )


def _sqlite_day(table: str, row: str) -> str:
    column, join, _ = TOUCHED[table]
    if join:
        return f"(SELECT date(paid_at, '+8 hours') FROM orders WHERE id = {row}.order_id)"  # noqa: S608
    return f"date({row}.{column}, '+8 hours')"


def _sqlite_touch(table: str, row: str) -> str:
    return (
        "INSERT INTO report_days (day, changes) "  # noqa: S608 (constants only)
        f"SELECT d, 1 FROM (SELECT {_sqlite_day(table, row)} AS d) "
        "WHERE d IS NOT NULL AND d < date('now', '+8 hours') "
        "ON CONFLICT (day) DO UPDATE SET changes = changes + 1;"
    )


def _sqlite_upgrade() -> None:
    for table, (_, _, columns) in TOUCHED.items():
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
        op.execute(
            f"CREATE TRIGGER report_touch_{table}_ins AFTER INSERT ON {table} "
            f"BEGIN {_sqlite_touch(table, 'NEW')} END"
        )
        op.execute(
            f"CREATE TRIGGER report_touch_{table}_upd AFTER UPDATE OF {', '.join(columns)} "
            f"ON {table} WHEN {changed} "
            f"BEGIN {_sqlite_touch(table, 'OLD')} {_sqlite_touch(table, 'NEW')} END"
        )
        op.execute(
            f"CREATE TRIGGER report_touch_{table}_del AFTER DELETE ON {table} "
            f"BEGIN {_sqlite_touch(table, 'OLD')} END"
        )


def _drop_triggers() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TOUCHED:
        for suffix in ("ins", "upd", "del"):
            on = f" ON {table}" if postgres else ""
            op.execute(f"DROP TRIGGER IF EXISTS report_touch_{table}_{suffix}{on}")
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS report_touch_{table}()")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS report_touch(date[])")


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "report_daily_distributors",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("distributor_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sales_fen", sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("earned_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "distributor_id", name=op.f("pk_report_daily_distributors")),
    )
    op.create_table(
        "report_daily_products",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("product_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "product_id", name=op.f("pk_report_daily_products")),
    )
    op.create_table(
        "report_daily_totals",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("sales_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunds_fen", sa.BigInteger(), nullable=False),
        sa.Column("dist_orders", sa.BigInteger(), nullable=False),
        sa.Column("dist_fen", sa.BigInteger(), nullable=False),
        sa.Column("commission_pending_fen", sa.BigInteger(), nullable=False),
        sa.Column("commission_settled_fen", sa.BigInteger(), nullable=False),
        sa.Column("dividend_pending_fen", sa.BigInteger(), nullable=False),
        sa.Column("dividend_settled_fen", sa.BigInteger(), nullable=False),
        sa.Column("reward_pending_fen", sa.BigInteger(), nullable=False),
        sa.Column("reward_settled_fen", sa.BigInteger(), nullable=False),
        sa.Column("withdrawn_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_report_daily_totals")),
    )
    op.create_table(
        "report_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.Column("summarized", sa.BigInteger(), nullable=True),
        sa.Column("summarized_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_report_days")),
    )
    # ### end Alembic commands ###
    if op.get_bind().dialect.name == "postgresql":
        _pg_upgrade()
    else:
        _sqlite_upgrade()


def downgrade():
    _drop_triggers()
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_table("report_days")
    op.drop_table("report_daily_totals")
    op.drop_table("report_daily_products")
    op.drop_table("report_daily_distributors")
    # ### end Alembic commands ###
