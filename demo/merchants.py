"""Demo ordering merchants for ``flask seed-demo``: the five levels 总代/省代/市代/县代/店主
and a three-level chain of demo users (总代 → 省代 → 市代).

Idempotent: levels are added only when there are none (a merchant's own levels are never
touched); a demo user is found by its openid (a stand-in fan's in development, see
``demo.fans``) and made a merchant only if it is not one. Flushes; the CLI commits.
"""

from __future__ import annotations

from app.cloud.merchants import create_merchant, merchant_for_user
from app.cloud.pricing import ensure_default_levels
from app.extensions import db
from demo.fans import demo_user

# (openid, nickname, level): each one's parent is the one before it.
DEMO_MERCHANTS = (
    ("o_demo_merchant_l1", "总代·王总", 1),
    ("o_demo_merchant_l2", "省代·李姐", 2),
    ("o_demo_merchant_l3", "市代·小张", 3),
)


def seed_demo_merchants() -> str:
    """Create the demo levels and merchant chain if missing; a summary line."""
    levels = ensure_default_levels()
    known = {row.level for row in levels}
    added = 0
    parent = None
    for openid, nickname, level in DEMO_MERCHANTS:
        user = demo_user(openid, nickname)  # a stand-in fan in development
        merchant = merchant_for_user(user.id)
        if merchant is None and level in known:
            parent_ok = parent is None or parent.level < level
            merchant = create_merchant(
                user.id, level, parent.id if parent is not None and parent_ok else None, "system"
            )
            added += 1
        parent = merchant
    db.session.flush()
    return f"ordering merchants: {len(levels)} levels, {added} demo merchants added"
