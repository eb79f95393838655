"""Demo notification settings for ``seed-demo`` (development with the stand-in only)."""

from __future__ import annotations

from app.wechat.notify import KINDS, notification_settings, save_setting
from demo.fans import uses_stand_in


def seed_demo_notifications() -> str:
    """Switch every notification on with a demo template id, so the stand-in's message log
    shows them in ``make dev``. Never against the real WeChat, and never over a template id
    the merchant has set."""
    if not uses_stand_in():
        return "notifications left as they are (real WeChat)"
    rows = notification_settings()
    added = 0
    for kind in KINDS:
        if not rows[kind].template_id:
            save_setting(kind, f"DEMO_{kind.upper()}", True)
            added += 1
    return f"{added} demo notification templates switched on"
