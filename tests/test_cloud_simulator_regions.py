"""The commission simulator with a shipping district: the region dividends of the
district's province, city and district agents, next to commissions and 级差, equal the
ledger entries a real paid order shipped there writes (the same rule, ``line_dividends``)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sqlalchemy import select

from app.cloud import agents as cloud_agents
from app.cloud.models import RegionAgent
from app.core.money import format_yuan
from app.earnings.simulator import simulate
from app.extensions import db
from app.ledger.models import LedgerEntry
from tests.support.admin import fresh_client, text
from tests.support.browser import wait_until
from tests.support.cloud import (
    FUTIAN,
    GUANGDONG,
    NANSHAN,
    SHENZHEN,
    assigned,
    levels,
    merchant,
    order_to,
    precedence,
    rates,
)
from tests.support.commissions import configure, customer_of, distributor, pay

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def predicted(result) -> Counter:
    """(kind, distributor, fen) of everything the simulation says is paid."""
    found = Counter()
    for row in result.rows:
        if row.amount_fen:
            found[(f"level_{row.level}", row.distributor_id)] += row.amount_fen
    if result.price_differences and result.price_differences.plan.price_differences:
        for row in result.price_differences.rows:
            if row.amount_fen:
                found[("price_difference", row.distributor_id)] += row.amount_fen
    if result.region_dividends:
        for share in result.region_dividends.shares:
            found[("region_dividend", share.agent.distributor_id)] += share.amount_fen
    return found


def written(order_id: int) -> Counter:
    db.session.rollback()
    return Counter(
        {
            (e.kind, e.distributor_id): e.amount_fen
            for e in db.session.scalars(select(LedgerEntry).where(LedgerEntry.order_id == order_id))
        }
    )


def test_simulated_dividends_commissions_and_differences_equal_the_ledger(app, make, login_as):
    """Retail ¥33.33 × 3 through an L3 (parent L1, also 广东省's agent) shipped to 南山区,
    precedence "both", a product override for district agents (5 %): every figure of the
    simulator page is what the paid order writes, rounding down included."""
    configure(levels=2)
    rates(province=100, city=250, district=300)
    levels()
    precedence("both")
    top = merchant(make, 1, nickname="总代老王")
    low = merchant(make, 3, top, nickname="市代小张")
    cloud_agents.assign_region(top.distributor.user_id, "province", GUANGDONG, "staff:1")
    db.session.commit()
    city = assigned(make, "city", SHENZHEN, "深圳市代理")
    district = assigned(make, "district", NANSHAN, "南山区代理")
    assigned(make, "district", FUTIAN, "福田区代理")  # another district: earns nothing here
    product = make.product("保温杯", price_fen=3333, stock=100)
    cloud_agents.set_product_rate(product.id, "district", 500, owner=True)
    db.session.commit()
    sku = product.skus[0]
    buyer = customer_of(make, low.distributor)

    client = fresh_client(app)
    login_as(client, make.staff())
    page = client.get(
        f"/admin/distribution/simulator?sku_id={sku.id}&quantity=3&who=buyer"
        f"&buyer_id={buyer.id}&district_code={NANSHAN}"
    )
    html = text(page)
    assert page.status_code == 200 and "区域代理分红 · 广东省 深圳市 南山区" in html
    shown = re.findall(r'<tr data-agent="(\d+)">.*?<strong>(¥[\d.]+)</strong>', html, re.S)
    # 99.99 yuan: 广东 1 % → 0.99, 深圳 2.5 % → 2.49, 南山 5 % (product) → 4.99
    province = cloud_agents.agents_of_user(top.distributor.user_id)[0]
    assert shown == [
        (str(province.id), "¥0.99"),
        (str(city.id), "¥2.49"),
        (str(district.id), "¥4.99"),
    ]
    assert "商品分红比例" in html and "合计分红" in html and "¥8.47" in html

    expected = simulate(sku.id, 3, buyer_id=buyer.id, district_code=NANSHAN)
    db.session.rollback()
    keeps = expected.merchant_keeps_fen
    assert keeps == 9999 - expected.total_fen - expected.price_difference_fen - 847
    assert f"商家保留 {format_yuan(keeps)}" in html

    order = pay(order_to(make, NANSHAN, quantity=3, product=product, user=buyer))
    assert written(order.id) == predicted(expected)
    kinds = {kind for kind, _who in written(order.id)}
    assert kinds == {"level_1", "level_2", "price_difference", "region_dividend"}


def test_districts_without_agents_switched_off_and_bad_codes(app, make, login_as):
    rates()
    assigned(make, "district", NANSHAN, "南山区代理")
    sku = make.product("杯子", price_fen=10000).skus[0]
    buyer = make.user()
    client = fresh_client(app)
    login_as(client, make.staff())
    url = f"/admin/distribution/simulator?sku_id={sku.id}&who=buyer&buyer_id={buyer.id}"
    beijing = text(client.get(f"{url}&district_code=110105"))
    assert "北京市 朝阳区" in beijing and "该地区没有生效中的省、市、区县代理" in beijing
    nanshan = text(client.get(f"{url}&district_code={NANSHAN}"))
    assert "¥3.00" in nanshan and "商家保留 ¥97.00" in nanshan
    bad = client.get(f"{url}&district_code=440300")  # a city, not a district
    assert bad.status_code == 422 and "请选择正确的收货省市区" in text(bad)
    assert client.get(f"{url}&district_code=abc").status_code == 422
    cloud_agents.update_cloud_settings({"agents_enabled": False}, owner=True)
    db.session.commit()
    off = text(client.get(f"{url}&district_code={NANSHAN}"))
    assert "区域代理已关闭" in off and "商家保留 ¥100.00" in off
    # No district: the page is as before (no dividend table).
    assert "data-region-dividends" not in text(client.get(url))


def test_open_api_simulate_takes_the_district_and_equals_the_ledger(app, client, make, runner):
    """``POST /api/v1/admin/distribution/simulate`` with ``district_code``: the region
    dividends of the district's agents, and what the merchant keeps, equal the ledger of
    a real order paid and shipped there; a malformed code is a 422 with a code."""
    configure(levels=1)
    rates(province=100, city=200, district=300)
    city = assigned(make, "city", SHENZHEN, "深圳市代理")
    district = assigned(make, "district", NANSHAN, "南山区代理")
    seller = distributor(make)
    buyer = customer_of(make, seller)
    product = make.product("茶叶", price_fen=6789, stock=50)
    sku = product.skus[0]
    token = runner.invoke(args=["create-api-token", "erp"]).output.strip()
    headers = {"Authorization": f"Bearer {token}"}
    url = "/api/v1/admin/distribution/simulate"

    answer = client.post(
        url,
        headers=headers,
        json={"sku_id": sku.id, "quantity": 2, "buyer_id": buyer.id, "district_code": NANSHAN},
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    dividends = body["region_dividends"]
    assert dividends["district_code"] == NANSHAN and dividends["region_text"].endswith("南山区")
    # 135.78 yuan: 深圳 2 % → 2.71, 南山 3 % → 4.07 (no province agent)
    assert [(s["agent_id"], s["amount_fen"]) for s in dividends["shares"]] == [
        (city.id, 271),
        (district.id, 407),
    ]
    assert body["region_dividend_fen"] == dividends["total_fen"] == 678
    assert body["merchant_keeps_fen"] == 13578 - body["total_fen"] - 678

    order = pay(order_to(make, NANSHAN, quantity=2, product=product, user=buyer))
    ledger = written(order.id)
    assert ledger[("region_dividend", city.distributor_id)] == 271
    assert ledger[("region_dividend", district.distributor_id)] == 407
    assert sum(ledger.values()) == body["total_fen"] + 678

    without = client.post(url, headers=headers, json={"sku_id": sku.id, "buyer_id": buyer.id})
    assert without.status_code == 200 and without.get_json()["region_dividends"] is None
    bad = client.post(
        url, headers=headers, json={"sku_id": sku.id, "buyer_id": buyer.id, "district_code": "44"}
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["code"]
    city_code = client.post(
        url,
        headers=headers,
        json={"sku_id": sku.id, "buyer_id": buyer.id, "district_code": SHENZHEN},
    )
    assert city_code.status_code == 422
    assert city_code.get_json()["error"]["code"] == "invalid_district"


@pytest.mark.browser
def test_staff_pick_the_shipping_district_in_the_browser(desk, live_server, make, artifacts):
    """The simulator's province → city → district picker (loaded from /api/v1/regions)
    fills the district code, and the result shows the district agents' dividends."""
    configure(levels=1)
    rates(province=100, city=200, district=300)
    assigned(make, "city", SHENZHEN, "深圳市代理")
    assigned(make, "district", NANSHAN, "南山区代理")
    seller = distributor(make)
    buyer = customer_of(make, seller)
    sku = make.product("绿茶礼盒", price_fen=10000, stock=10).skus[0]
    make.staff("boss", password="boss-password", role="owner")
    base = live_server.url

    desk.goto(f"{base}/admin/distribution/simulator")
    desk.fill("#username", "boss")
    desk.fill("#password", "boss-password")
    desk.click("button[type=submit]")
    desk.wait_for_url(f"{base}/admin/distribution/simulator")
    desk.select_option("select[name=sku_id]", value=str(sku.id))
    # The buyer is picked by name (templates/admin/_pickers.html), not typed as an id.
    box = desk.locator("[data-picker] input[type=search][aria-label='买家']")
    box.fill(buyer.nickname)
    hit = desk.locator(".picker-item", has_text=buyer.nickname)
    hit.first.wait_for(state="visible")
    hit.first.click()
    desk.select_option("[data-pick=province]", label="广东省")
    desk.select_option("[data-pick=city]", label="深圳市")
    desk.select_option("[data-pick=district]", label="南山区")
    assert desk.input_value("[data-region-code]") == NANSHAN
    desk.click("button:has-text('计算佣金')")
    table = desk.locator("[data-region-dividends]")
    table.wait_for()
    shown = table.inner_text()
    # ¥100.00 shipped to 南山区: 深圳 2 % → ¥2.00, 南山 3 % → ¥3.00; no province agent.
    assert "¥2.00" in shown and "¥3.00" in shown and "合计分红" in desk.content()
    # Explained like the commissions above it (a percentage, rounded down to the fen).
    assert "实付 10000 分 × 3%（向下取整到分）" in shown
    # The page after the submit shows the picked district again, not the placeholders.
    wait_until(
        desk, "code => document.querySelector('[data-pick=district]').value === code", arg=NANSHAN
    )
    assert desk.locator("[data-pick=province] option:checked").inner_text() == "广东省"
    assert desk.locator("[data-pick=city] option:checked").inner_text() == "深圳市"
    assert desk.locator("[data-pick=district] option:checked").inner_text() == "南山区"
    desk.screenshot(path=str(artifacts / "admin-simulator-district.png"), full_page=True)


def _simulated(body: dict) -> Counter:
    """(kind, distributor, fen) of everything the simulator's JSON says is paid."""
    found = Counter()
    for row in body["levels_detail"]:
        if row["amount_fen"]:
            found[(f"level_{row['level']}", row["distributor_id"])] += row["amount_fen"]
    differences = body["price_differences"]
    if differences and differences["price_differences"]:
        for row in differences["rows"]:
            if row["amount_fen"]:
                found[("price_difference", row["distributor_id"])] += row["amount_fen"]
    for share in (body["region_dividends"] or {}).get("shares", []):
        agent = db.session.get(RegionAgent, share["agent_id"])
        found[("region_dividend", agent.distributor_id)] += share["amount_fen"]
    return found


@pytest.mark.parametrize(
    "seller_kind, order_precedence",
    [
        ("distributor", "price_difference"),
        ("merchant", "price_difference"),
        ("merchant", "commission"),
        ("merchant", "both"),
    ],
)
def test_simulator_json_and_the_paid_order_pipeline_agree(
    app, client, make, runner, seller_kind, order_precedence
):
    """One plan for both: the Open API simulator and the pipeline run on a real paid order
    of the same SKU, quantity and district write the same (kind, beneficiary, fen), for a
    plain distributor's order and an ordering merchant's order under each precedence, with
    three levels, three region agents and a payout cap that trims."""
    configure(levels=3, level1_bp=2000, level2_bp=1000, level3_bp=500, payout_cap_bp=6000)
    rates(province=300, city=500, district=800)
    # Rates saved before a lower cap (what the cap trims on payment, as in the simulator).
    configure(level1_bp=2000, level2_bp=1000, level3_bp=500, payout_cap_bp=4000)
    levels()
    precedence(order_precedence)
    assigned(make, "province", GUANGDONG, "广东省代理")
    assigned(make, "city", SHENZHEN, "深圳市代理")
    assigned(make, "district", NANSHAN, "南山区代理")
    if seller_kind == "merchant":
        top = merchant(make, 1, nickname="总代老王")
        seller = merchant(make, 3, top, nickname="市代小张").distributor
    else:
        seller = distributor(make, distributor(make, distributor(make)))
    buyer = customer_of(make, seller)
    product = make.product("茶叶", price_fen=3333, stock=50)
    token = runner.invoke(args=["create-api-token", "erp"]).output.strip()
    answer = client.post(
        "/api/v1/admin/distribution/simulate",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "sku_id": product.skus[0].id,
            "quantity": 3,
            "buyer_id": buyer.id,
            "district_code": NANSHAN,
        },
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    expected = _simulated(body)

    order = pay(order_to(make, NANSHAN, quantity=3, product=product, user=buyer))
    assert written(order.id) == expected
    kinds = {kind for kind, _who in expected}
    assert "region_dividend" in kinds
    if seller_kind == "merchant" and order_precedence != "commission":
        assert "price_difference" in kinds
    if order_precedence != "price_difference" or seller_kind == "distributor":
        assert "level_1" in kinds and body["cap_trimmed_fen"] > 0  # 35 % + 16 % > 40 %
    else:
        assert "level_1" not in kinds  # 级差 instead of commissions
