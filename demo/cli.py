"""``flask seed-demo``: the demo shop's command, added to the app by ``wsgi.py``.

The shop itself (``app/``) never imports the demo: the entry point wires it in, so
``flask --app wsgi seed-demo`` works and production code carries no demo data.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from app.extensions import db
from demo.owner import DEMO_OWNER
from demo.seed import demo_fan_nicknames, seed_demo


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Load the demo shop (idempotent: running it twice changes nothing)."""
    summary = seed_demo()
    db.session.commit()
    click.echo(summary)
    click.echo(f"admin login: {DEMO_OWNER[0]} / {DEMO_OWNER[1]}")


def register_demo(app: Flask) -> None:
    """Add ``seed-demo`` to ``app.cli`` and list the demo users among the stand-in's fans
    (``flask wechat-sandbox``), so one can sign in as them."""
    app.cli.add_command(seed_demo_command)
    extra = tuple(app.config.get("WECHAT_SANDBOX_EXTRA_FANS", ()))
    app.config["WECHAT_SANDBOX_EXTRA_FANS"] = (*extra, *demo_fan_nicknames())
