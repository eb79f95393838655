"""The payout cap (app/distribution/payout_cap.py), through the real doors: every admin form
and Open API route that saves a rate refuses a rule whose worst case breaks the cap, staff
may not raise a rate above the shop default, the earning job trims rules saved before the
cap existed (and the simulator shows the same trimming), and an agent's own order earns
them no dividend with self-purchase off."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.cloud.models import AgentProductRate, CloudSettings
from app.distribution.distributors import get_distribution_settings
from app.distribution.models import CommissionRule, Grade
from app.distribution.payout_cap import trim_note, trim_to_cap
from app.extensions import db
from app.ledger.models import LedgerEntry
from tests.openapi_support import bearer_caller
from tests.test_admin_support import csrf_token, fresh_client, text
from tests.test_cloud_agents import NANSHAN, order_to, three_agents
from tests.test_commissions import chain, configure, customer_of, pay, place

SETTINGS_FORM = {
    "enabled": "1",
    "levels": "2",
    "join_mode": "open",
    "join_threshold_fen": "0",
    "bind_mode": "first_visit",
    "binding_days": "0",
    "protection_days": "15",
    "protection_extend_days": "15",
    "settlement_hold_days": "7",
    "level1_bp": "10",
    "level2_bp": "5",
    "level3_bp": "0",
    "withdraw_min_fen": "1",
    "withdraw_fee_bp": "0",
    "withdraw_daily_limit": "3",
    "payout_channel": "wechat",
    "payout_cap_bp": "30",
}
# Shop defaults 10% + 5% and agent rates 1% / 2% / 3%: 21% of the 30% cap is used.
SHOP_DIVIDENDS = "省 1% + 市 2% + 区 3%"


@pytest.fixture
def client(app):
    return fresh_client(app)


@pytest.fixture
def owner(make):
    return make.staff("boss", role="owner")


@pytest.fixture
def clerk(make):
    return make.staff("clerk", role="staff")


@pytest.fixture
def as_owner(client, login_as, owner):
    login_as(client, owner)
    return client


@pytest.fixture
def as_clerk(client, login_as, clerk):
    login_as(client, clerk)
    return client


def post(client, path: str, data: dict, **kwargs):
    token = csrf_token(client, "/admin/distribution/grades")
    return client.post(path, data={"csrf_token": token, **data}, **kwargs)


@pytest.fixture
def api(client, runner, app_ctx):
    """Call the Open API with an owner token made by ``flask create-api-token``: the cap
    binds the owner too (a write token is also held to the shop default)."""
    result = runner.invoke(args=["create-api-token", "erp", "--scope", "owner"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip()

    return bearer_caller(client, secret)


def refused(response, status: int = 422, code: str = "payout_cap_exceeded") -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code, error
    return error["message"]


def rules() -> list[tuple]:
    db.session.rollback()
    return [
        (r.sku_id, r.mode, r.level1, r.level2)
        for r in db.session.scalars(select(CommissionRule).order_by(CommissionRule.id))
    ]


# --- saving: admin forms ----------------------------------------------------------------------


def test_product_and_sku_rules_over_the_cap_are_refused_on_the_product_page(as_owner, make):
    product = make.product("保温杯", price_fen=6990, specs={"颜色": ["红", "蓝"]})
    red = product.skus[0]
    url = f"/admin/products/{product.id}/commission-rule"
    page = post(
        as_owner,
        url,
        {"sku_id": "", "mode": "percent", "level1": "100", "level2": "100"},
        follow_redirects=True,
    )
    assert f"商品“保温杯”：一级 100% + 二级 100% + {SHOP_DIVIDENDS} = 206%，超过上限 30%" in text(
        page
    )
    sku_page = post(
        as_owner,
        url,
        {"sku_id": str(red.id), "mode": "percent", "level1": "20", "level2": "5"},
        follow_redirects=True,
    )
    assert f"（SKU 红）：一级 20% + 二级 5% + {SHOP_DIVIDENDS} = 31%，超过上限 30%" in text(
        sku_page
    )
    assert rules() == []

    # Fixed per unit counts against the SKU's price, rounded up: ¥2.50 of ¥69.90 is 3.58%.
    cheap = make.product("贴纸", price_fen=999)
    url = f"/admin/products/{cheap.id}/commission-rule"
    fixed = post(
        as_owner,
        url,
        {"sku_id": "", "mode": "fixed", "level1": "2.50", "level2": "0.01"},
        follow_redirects=True,
    )
    # 250 / 999 → 25.03% (2502.5 bp up), 1 / 999 → 0.11% (10.01 bp up)
    assert f"一级 25.03% + 二级 0.11% + {SHOP_DIVIDENDS} = 31.14%，超过上限 30%" in text(fixed)
    assert rules() == []
    post(as_owner, url, {"sku_id": "", "mode": "fixed", "level1": "2", "level2": "0.01"})
    assert rules() == [(None, "fixed", 200, 1)]  # 20.03% + 0.11% + 6% fits


def test_defaults_grades_and_agent_rates_over_the_cap_are_refused(as_owner, make, app_ctx):
    settings = post(
        as_owner,
        "/admin/distribution/settings",
        {**SETTINGS_FORM, "level1_bp": "80", "level2_bp": "80"},
    )
    assert settings.status_code == 422
    assert f"店铺默认及等级：一级 80% + 二级 80% + {SHOP_DIVIDENDS} = 166%，超过上限 30%" in text(
        settings
    )
    db.session.rollback()
    assert (get_distribution_settings().level1_bp, get_distribution_settings().level2_bp) == (
        1000,
        500,
    )

    grade = post(
        as_owner,
        "/admin/distribution/grades",
        {"name": "金牌", "level1_bp": "90", "level2_bp": "90"},
    )
    assert grade.status_code == 422
    assert f"一级 90% + 二级 90% + {SHOP_DIVIDENDS} = 186%，超过上限 30%" in text(grade)
    db.session.rollback()
    assert db.session.scalar(select(Grade)) is None

    agents = post(
        as_owner,
        "/admin/agents/settings",
        {
            "agents_enabled": "on",
            "province_bp": "10000",
            "city_bp": "10000",
            "district_bp": "10000",
        },
        follow_redirects=True,
    )
    assert "一级 10% + 二级 5% + 省 100% + 市 100% + 区 100% = 315%，超过上限 30%" in text(agents)
    product = make.product("茶叶")
    override = post(
        as_owner,
        "/admin/agents/rates",
        {"product_id": str(product.id), "level": "district", "rate_bp": "10000"},
        follow_redirects=True,
    )
    assert "商品“茶叶”：一级 10% + 二级 5% + 省 1% + 市 2% + 区 100% = 118%" in text(override)
    db.session.rollback()
    cloud = db.session.get(CloudSettings, 1)
    assert (cloud.province_bp, cloud.city_bp, cloud.district_bp) == (100, 200, 300)
    assert db.session.scalar(select(AgentProductRate)) is None


def test_staff_may_not_raise_a_rate_above_the_shop_default(client, login_as, owner, clerk, make):
    product = make.product("坚果", price_fen=5000)
    url = f"/admin/products/{product.id}/commission-rule"
    login_as(client, clerk)
    above = post(
        client, url, {"sku_id": "", "mode": "percent", "level1": "12"}, follow_redirects=True
    )
    assert "只有店主可以把比例调到店铺默认以上：一级佣金 12% 高于店铺默认 10%" in text(above)
    assert rules() == []
    post(client, url, {"sku_id": "", "mode": "percent", "level1": "8", "level2": "5"})
    assert rules() == [(None, "percent", 800, 500)]
    grade = post(client, "/admin/distribution/grades", {"name": "金牌", "level1_bp": "15"})
    assert grade.status_code == 403 and "等级一级佣金 15% 高于店铺默认 10%" in text(grade)

    login_as(client, owner)  # the owner may, within the cap
    post(client, url, {"sku_id": "", "mode": "percent", "level1": "12", "level2": "5"})
    assert rules() == [(None, "percent", 1200, 500)]
    saved = post(client, "/admin/distribution/grades", {"name": "金牌", "level1_bp": "15"})
    assert saved.status_code == 302

    login_as(client, clerk)  # staff may keep what the owner set, not go higher
    post(client, url, {"sku_id": "", "mode": "percent", "level1": "12", "level2": "4"})
    assert rules() == [(None, "percent", 1200, 400)]
    higher = post(
        client, url, {"sku_id": "", "mode": "percent", "level1": "13"}, follow_redirects=True
    )
    assert "只有店主可以" in text(higher)
    assert rules() == [(None, "percent", 1200, 400)]


def test_lowering_the_cap_lists_the_rules_in_the_way(as_owner, make, app_ctx):
    product = make.product("保温杯", price_fen=6990)
    post(
        as_owner,
        f"/admin/products/{product.id}/commission-rule",
        {"sku_id": "", "mode": "percent", "level1": "8", "level2": "2"},
    )
    lowered = post(
        as_owner, "/admin/distribution/settings", {**SETTINGS_FORM, "payout_cap_bp": "18"}
    )
    assert lowered.status_code == 422
    page = text(lowered)
    assert "分佣上限改为 18% 后，以下规则会超过上限，请先调低它们" in page
    assert f"店铺默认及等级：一级 10% + 二级 5% + {SHOP_DIVIDENDS} = 21%，超过上限 18%" in page
    assert "商品“保温杯”" not in page  # 8% + 2% + 6% = 16% fits
    db.session.rollback()
    assert get_distribution_settings().payout_cap_bp == 3000

    raised = post(
        as_owner,
        "/admin/distribution/settings",
        {**SETTINGS_FORM, "payout_cap_bp": "45"},
        follow_redirects=True,
    )
    assert "分佣上限设为 45%，超过 30%" in text(raised) and "直销管理条例" in text(raised)
    db.session.rollback()
    assert get_distribution_settings().payout_cap_bp == 4500


# --- saving: Open API -------------------------------------------------------------------------


def test_open_api_routes_refuse_rates_over_the_cap(api, make, app_ctx):
    message = refused(
        api("put", "/distribution/settings", json={"level1_bp": 8000, "level2_bp": 8000})
    )
    assert message == f"店铺默认及等级：一级 80% + 二级 80% + {SHOP_DIVIDENDS} = 166%，超过上限 30%"
    message = refused(
        api(
            "post",
            "/distribution/grades",
            json={"name": "金牌", "level1_bp": 9000, "level2_bp": 9000},
        )
    )
    assert "一级 90% + 二级 90%" in message and "= 186%，超过上限 30%" in message
    message = refused(
        api(
            "put",
            "/cloud/settings",
            json={"province_bp": 10000, "city_bp": 10000, "district_bp": 10000},
        )
    )
    assert "省 100% + 市 100% + 区 100% = 315%，超过上限 30%" in message
    product = make.product("茶叶")
    message = refused(
        api(
            "put",
            "/agents/product-rates",
            json={"product_id": product.id, "level": "city", "rate_bp": 10000},
        )
    )
    assert message.startswith("商品“茶叶”：一级 10% + 二级 5% + 省 1% + 市 100% + 区 3%")

    refused(
        api("put", "/distribution/settings", json={"payout_cap_bp": 10001}), code="out_of_range"
    )
    lowered = refused(api("put", "/distribution/settings", json={"payout_cap_bp": 1000}))
    assert lowered.startswith("分佣上限改为 10% 后")
    raised = api("put", "/distribution/settings", json={"payout_cap_bp": 4000})
    assert raised.status_code == 200 and raised.get_json()["payout_cap_bp"] == 4000
    assert any("超过 30%" in w for w in raised.get_json()["warnings"])
    db.session.rollback()
    assert db.session.scalar(select(Grade)) is None
    assert db.session.scalar(select(AgentProductRate)) is None


# --- earning: the job trims, the simulator shows the same -----------------------------------


def test_trimming_order_worked_case():
    """¥100.00 at a 30% cap (¥30.00): 20 + 8 + 4 + 2 + 3 + 5 = ¥42.00, so ¥12.00 goes,
    district first (5), then city (3), province (2), then ¥2.00 of level 3's ¥4.00."""
    parts = [
        ("level_1", 2000),
        ("level_2", 800),
        ("level_3", 400),
        ("province", 200),
        ("city", 300),
        ("district", 500),
    ]
    assert trim_to_cap(10000, 3000, parts) == [2000, 800, 200, 0, 0, 0]
    assert trim_to_cap(10000, 5000, parts) == [2000, 800, 400, 200, 300, 500]  # fits
    assert trim_to_cap(10000, 0, parts) == [0, 0, 0, 0, 0, 0]
    assert trim_to_cap(999, 3000, [("level_1", 999)]) == [299]  # floor(999 × 30%)
    assert trim_note(3000, 123) == "超出分佣上限 30%，扣减 ¥1.23"


def saved_before_the_cap(product, mode: str, values: tuple[int, int, int], sku_id=None) -> None:
    """A rule written straight to the table, as one saved before the cap existed."""
    db.session.add(
        CommissionRule(
            product_id=product.id,
            sku_id=sku_id,
            mode=mode,
            level1=values[0],
            level2=values[1],
            level3=values[2],
        )
    )
    db.session.commit()


def entries(order_id: int) -> dict[str, tuple[int, str]]:
    db.session.rollback()
    return {
        e.kind: (e.amount_fen, e.note)
        for e in db.session.scalars(select(LedgerEntry).where(LedgerEntry.order_id == order_id))
    }


def test_the_job_trims_an_old_rule_over_the_cap(app_ctx, make):
    """100% per level on a ¥69.90 sale (it paid ¥139.80 before): the cap is ¥20.97, so
    level 2 gives way entirely and level 1 keeps ¥20.97, its note saying ¥48.93 was cut."""
    configure(levels=2)
    product = make.product("保温杯", price_fen=6990, stock=100)
    saved_before_the_cap(product, "percent", (10000, 10000, 0))
    seller, _parent = chain(make, 2)
    order = pay(place(make, customer_of(make, seller), product=product))
    got = entries(order.id)
    assert set(got) == {"level_1"}
    amount, note = got["level_1"]
    assert amount == 2097  # floor(6990 × 30%)
    assert note.endswith("超出分佣上限 30%，扣减 ¥48.93")


def test_job_trims_dividends_first_and_the_simulator_shows_the_same(app, make, login_as, api):
    """Levels 20% + 5% (saved before the cap) and agents 1% / 2% / 3% on ¥69.90 shipped to
    南山区: 31% is ¥21.64 against a cap of ¥20.97, so the district agent's ¥2.09 becomes
    ¥1.42; the admin simulator and the Open API simulator say exactly that."""
    configure(levels=2)
    agents = three_agents(make)
    product = make.product("保温杯", price_fen=6990, stock=100)
    saved_before_the_cap(product, "percent", (2000, 500, 0))
    seller, parent = chain(make, 2)
    buyer = customer_of(make, seller)
    sku = product.skus[0]

    client = fresh_client(app)
    login_as(client, make.staff())
    page = text(
        client.get(
            f"/admin/distribution/simulator?sku_id={sku.id}&who=buyer"
            f"&buyer_id={buyer.id}&district_code={NANSHAN}"
        )
    )
    assert "超出分佣上限 30%：共扣减 ¥0.67" in page and "¥1.42" in page
    simulated = api(
        "post",
        "/distribution/simulate",
        json={"sku_id": sku.id, "buyer_id": buyer.id, "district_code": NANSHAN},
    ).get_json()
    assert simulated["cap_trimmed_fen"] == 67 and simulated["payout_cap_bp"] == 3000
    shown = {row["level"]: row["amount_fen"] for row in simulated["levels_detail"]}
    shown_dividends = [s["amount_fen"] for s in simulated["region_dividends"]["shares"]]
    assert shown == {1: 1398, 2: 349} and shown_dividends == [69, 139, 142]
    assert simulated["merchant_keeps_fen"] == 6990 - 2097

    order = pay(order_to(make, NANSHAN, product=product, user=buyer))
    db.session.rollback()
    written = {
        (e.kind, e.distributor_id): (e.amount_fen, e.note)
        for e in db.session.scalars(select(LedgerEntry).where(LedgerEntry.order_id == order.id))
    }
    assert {key: amount for key, (amount, _note) in written.items()} == {
        ("level_1", seller.id): 1398,
        ("level_2", parent.id): 349,
        ("region_dividend", agents["province"].distributor_id): 69,
        ("region_dividend", agents["city"].distributor_id): 139,
        ("region_dividend", agents["district"].distributor_id): 142,
    }
    assert written[("region_dividend", agents["district"].distributor_id)][1].endswith(
        "超出分佣上限 30%，扣减 ¥0.67"
    )
    assert "超出分佣上限" not in written[("level_1", seller.id)][1]


# --- self-purchase and region dividends -------------------------------------------------------


def test_an_agent_earns_on_their_own_order_only_with_self_purchase(app_ctx, make):
    agents = three_agents(make)
    district = agents["district"]
    buyer = db.session.get(User, district.user_id)

    def dividend_of(order_id: int, agent) -> int:
        db.session.rollback()
        return sum(
            db.session.scalars(
                select(LedgerEntry.amount_fen).where(
                    LedgerEntry.order_id == order_id,
                    LedgerEntry.distributor_id == agent.distributor_id,
                    LedgerEntry.kind == "region_dividend",
                )
            )
        )

    configure(self_purchase=False)
    own = pay(order_to(make, NANSHAN, price_fen=9999, user=buyer))
    assert dividend_of(own.id, district) == 0
    assert dividend_of(own.id, agents["city"]) == 199  # others still earn on it

    configure(self_purchase=True)
    again = pay(order_to(make, NANSHAN, price_fen=9999, user=buyer))
    assert dividend_of(again.id, district) == 299


def test_rules_saved_before_the_cap_block_only_saves_that_touch_them(api, make, app_ctx):
    """A shop upgraded with defaults of 40% + 20% and an old product rule of 100% keeps
    working: saves that set no rate pass; a save of rates must fit (the job trims
    meanwhile)."""
    configure(level1_bp=4000, level2_bp=2000)
    old = make.product("旧商品")
    saved_before_the_cap(old, "percent", (10000, 0, 0))
    fee = api("put", "/distribution/settings", json={"withdraw_fee_bp": 100})
    assert fee.status_code == 200, fee.get_json()
    precedence = api("put", "/cloud/settings", json={"precedence": "both"})
    assert precedence.status_code == 200, precedence.get_json()
    # A product paying the defaults: its own save must fit, so the defaults show up.
    other = make.product("新商品")
    override = {"product_id": other.id, "level": "district", "rate_bp": 0}
    message = refused(api("put", "/agents/product-rates", json=override))
    assert (
        message == "商品“新商品”：一级 40% + 二级 20% + 省 1% + 市 2% + 区 0% = 63%，超过上限 30%"
    )
    message = refused(api("put", "/distribution/settings", json={"level2_bp": 1000}))
    assert message.startswith("店铺默认及等级：一级 40% + 二级 10%")
    fits = api("put", "/distribution/settings", json={"level1_bp": 1000, "level2_bp": 500})
    assert fits.status_code == 200, fits.get_json()
    assert api("put", "/agents/product-rates", json=override).status_code == 200
