"""CLI commands of interfaces.md: ``flask --app wsgi COMMAND``.

Each command is an edge: it commits once, at the end, like a request does. ``seed-demo``
lives with the demo (``demo/cli.py``); ``wsgi.py`` adds it.
"""

from __future__ import annotations

import click
from flask import Flask

from app.accounts.services import StaffError, upsert_staff
from app.accounts.tokens import TokenError, create_token, revoke_tokens_named
from app.core.audit import record, snapshot
from app.distribution.team import rebuild_team_totals as rebuild
from app.extensions import db
from app.ops.doctor import run_checks
from app.wechat.menu import menu_cli
from app.wechat.sandbox import run_sandbox
from jobs.worker import run_worker


def register(app: Flask) -> None:
    """Attach every command to ``app.cli``."""
    app.cli.add_command(menu_cli)  # wechat-menu publish

    @app.cli.command("create-staff")
    @click.argument("username")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--role", type=click.Choice(["owner", "staff"]), default="staff")
    def create_staff(username: str, password: str, role: str) -> None:
        """Add a merchant staff account (or reset its password and role)."""
        try:
            staff, created = upsert_staff(username, password, role)
        except StaffError as exc:
            raise click.ClickException(str(exc)) from None
        db.session.commit()
        click.echo(f"{'created' if created else 'updated'} staff {staff.username} ({staff.role})")

    @app.cli.command("create-api-token")
    @click.argument("name")
    @click.option(
        "--scope",
        type=click.Choice(["read", "write", "owner"]),
        default="write",
        show_default=True,
        help="read: GET only; write: every change but the owner's settings; owner: all.",
    )
    @click.option(
        "--expires-days",
        type=click.IntRange(1, 3650),
        default=None,
        help="Days until the token stops working (default: never).",
    )
    def create_api_token(name: str, scope: str, expires_days: int | None) -> None:
        """Print a new Open API bearer token (shown once; only its hash is stored)."""
        try:
            token, secret = create_token(name, scope, expires_days)
        except TokenError as exc:
            raise click.ClickException(str(exc)) from None
        record("cli", "api_token.create", "api_token", token.id, {}, snapshot(token))
        db.session.commit()
        click.echo(secret)

    @app.cli.command("revoke-api-token")
    @click.argument("name")
    def revoke_api_token(name: str) -> None:
        """End the Open API token(s) called NAME at once."""
        revoked = revoke_tokens_named(name)
        if not revoked:
            raise click.ClickException(f"no unrevoked token named {name.strip()!r}")
        for token in revoked:
            record(
                "cli",
                "api_token.revoke",
                "api_token",
                token.id,
                {"revoked_at": None},
                {"revoked_at": token.revoked_at},
            )
        db.session.commit()
        click.echo(f"revoked {len(revoked)} token(s) named {name.strip()}")

    @app.cli.command("rebuild-team-totals")
    def rebuild_team_totals() -> None:
        """Recompute every distributor's running team sales from the orders."""
        written = rebuild()
        db.session.commit()
        click.echo(f"team sales rebuilt: {written} distributors with sales")

    @app.cli.command("worker")
    @click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
    def worker(burst: bool) -> None:
        """Run an RQ worker on the app's queues, each job inside an app context."""
        run_worker(app, burst=burst)

    @app.cli.command("wechat-sandbox")
    @click.option("--port", default=5001, show_default=True, type=int)
    @click.option("--host", default="127.0.0.1", show_default=True)
    def wechat_sandbox(port: int, host: str) -> None:
        """Run the local WeChat stand-in (development and tests only)."""
        run_sandbox(app, host=host, port=port)

    @app.cli.command("doctor")
    def doctor() -> None:
        """Check the production configuration end to end; exit 1 on any problem."""
        checks = run_checks(app)
        for check in checks:
            click.echo(f"[{'ok' if check.ok else '问题 FAIL'}] {check.name}: {check.message}")
        failed = [check for check in checks if not check.ok]
        if failed:
            click.echo(f"{len(failed)} problem(s) 个问题需要处理")
            raise SystemExit(1)
        click.echo("all good 一切正常")
