"""The demo shop's owner account (merchant admin sign-in printed by ``make dev``)."""

from __future__ import annotations

from sqlalchemy import select

from app.accounts.models import Staff
from app.accounts.services import upsert_staff
from app.extensions import db

# Credentials printed by ``make dev`` and the README; changed by the merchant in production.
DEMO_OWNER = ("owner", "demo-owner-2024")


def seed_demo_owner() -> bool:
    """Create the owner account if missing (never reset a password the merchant may have
    changed); whether it was created. Flushes only."""
    username, password = DEMO_OWNER
    if db.session.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        return False
    upsert_staff(username, password, "owner")
    return True
