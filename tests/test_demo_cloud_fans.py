"""``flask seed-demo`` makes the demo agents, ordering merchants and their customer
stand-in fans: signing in as "南山区代理" or "市代·小张" through the stand-in's OAuth
page (over real HTTP) lands in their centre, with the demo purchase's dividend and 级差."""

from __future__ import annotations

from sqlalchemy import func, select

from app.accounts.models import User
from app.cloud.demo_agents import DEMO_AGENTS
from app.cloud.demo_fans import DEMO_CUSTOMER, demo_fan_nicknames
from app.cloud.demo_merchants import DEMO_MERCHANTS
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.wechat.sandbox import create_sandbox_app
from app.wechat.sandbox.state import DEFAULT_FANS, fan_openid
from tests.conftest import WECHAT_UA
from tests.test_oauth import local, pick_fan, start_login


def sign_in_as(app, sandbox, nickname: str, next_path: str):
    """A browser-like test client signed in as the stand-in fan ``nickname``."""
    client = app.test_client()
    _res, authorize, _fragment = start_login(client, f"next={next_path}")
    back = pick_fan(sandbox, authorize, nickname)
    done = client.get(local(back), headers={"User-Agent": WECHAT_UA})
    assert done.status_code == 302 and done.headers["Location"] == next_path
    return client


def page(client, path: str) -> str:
    response = client.get(path, headers={"User-Agent": WECHAT_UA})
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_demo_agents_and_merchants_are_fans_with_data(app, runner, sandbox):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "demo purchase" in first.output
    appid = app.config["WECHAT_APPID"]
    nicknames = [row[1] for row in (*DEMO_AGENTS, *DEMO_MERCHANTS, DEMO_CUSTOMER)]
    with app.app_context():
        for nickname in nicknames:
            user = db.session.scalar(select(User).where(User.nickname == nickname))
            assert user is not None and user.openid == fan_openid(appid, nickname), nickname
        entries = db.session.scalar(select(func.count()).select_from(LedgerEntry))
        users = db.session.scalar(select(func.count()).select_from(User))
        kinds = set(db.session.scalars(select(LedgerEntry.kind)))
    assert {"region_dividend", "price_difference"} <= kinds

    # Seeding again adds nothing (no second purchase, no second user).
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries
        assert db.session.scalar(select(func.count()).select_from(User)) == users

    # The stand-in that `flask wechat-sandbox` runs lists them on its pages.
    listed = create_sandbox_app(
        {"SANDBOX_APPID": appid, "SANDBOX_FANS": (*DEFAULT_FANS, *demo_fan_nicknames())}
    ).extensions["wechat_sandbox"]
    assert {f.nickname for f in listed.list_fans()} >= set(nicknames)
    assert {f.openid for f in listed.list_fans()} >= {fan_openid(appid, n) for n in nicknames}

    # Signing in as the 南山区 agent: the agent centre with its region and a dividend.
    agent = sign_in_as(app, sandbox, "南山区代理", "/agent")
    centre = page(agent, "/agent")
    assert "南山区" in centre and "生效中" in centre
    assert "data-entry" in page(agent, "/agent/dividends")
    orders = page(agent, "/agent/orders")
    assert "科技园" not in orders  # the buyer's address stays hidden
    assert "SF1400000000001" in orders  # shipped by headquarters: the tracking shows

    # Signing in as the 市代: the merchant centre, its 级差 and the customer's order.
    merchant = sign_in_as(app, sandbox, "市代·小张", "/merchant")
    centre = page(merchant, "/merchant")
    assert "市代（3级）" in centre and "代客下单" in centre
    earnings = page(merchant, "/merchant/earnings")
    assert "级差" in earnings
    orders = page(merchant, "/merchant/orders")
    assert "云" in orders and "顺丰速运 SF1400000000001" in orders


def test_an_older_demo_row_moves_to_the_fan(app, runner, app_ctx):
    """A database seeded before the demo users were fans keeps its rows (regions held)."""
    legacy, nickname, _level, _code = DEMO_AGENTS[2]
    db.session.add(User(openid=legacy, nickname=nickname))
    db.session.commit()
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    db.session.rollback()
    rows = db.session.scalars(select(User).where(User.nickname == nickname)).all()
    assert [u.openid for u in rows] == [fan_openid(app.config["WECHAT_APPID"], nickname)]
