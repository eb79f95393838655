"""Demo regional agents for ``flask seed-demo``: 广东省, 深圳市 and 南山区, one demo user each.

Idempotent: a demo user is found by its openid (a stand-in fan's in development, see
``demo.fans``), and a region that is already held (by the
demo agent or anyone else) is left alone. Flushes; the CLI commits.
"""

from __future__ import annotations

from sqlalchemy import select

from app.cloud.agents import HELD_STATUSES, assign_region
from app.cloud.models import RegionAgent
from app.extensions import db
from demo.fans import demo_user

# (openid, nickname, level, region code): a paid order shipped to 南山区 pays all three.
DEMO_AGENTS = (
    ("o_demo_agent_guangdong", "粤省代理", "province", "440000"),
    ("o_demo_agent_shenzhen", "深圳市代理", "city", "440300"),
    ("o_demo_agent_nanshan", "南山区代理", "district", "440305"),
)


def seed_demo_agents() -> str:
    """Create the demo agent users and assign their regions if missing; a summary line."""
    added = 0
    for openid, nickname, level, code in DEMO_AGENTS:
        user = demo_user(openid, nickname)  # a stand-in fan in development
        held = db.session.scalar(
            select(RegionAgent.id).where(
                RegionAgent.region_code == code, RegionAgent.status.in_(HELD_STATUSES)
            )
        )
        if held is None:
            assign_region(user.id, level, code, "system")
            added += 1
    return f"demo agents: {added} added ({len(DEMO_AGENTS)} in the demo)"
