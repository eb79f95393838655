"""The commission simulator: the same figures the engine writes for a real paid order,
nothing written, previews of unsaved rules, the admin page and its screenshot."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.distribution.admin_settings import save_commission_rule, save_grade
from app.earnings.simulator import Preview, simulate
from app.extensions import db
from app.ledger.models import LedgerEntry
from app.orders.services import ItemRequest, place_order
from tests.support.admin import fresh_client, text
from tests.support.commissions import chain, configure, customer_of, distributor, pay
from tests.support.pay import address_for

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def row_counts() -> dict[str, int]:
    """How many rows every table holds."""
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


def by_level(result) -> list[tuple[int, int | None, int, str]]:
    return [(r.level, r.distributor_id, r.amount_fen, r.rule_source) for r in result.rows]


def test_simulation_matches_what_the_engine_writes(app_ctx, make):
    configure(levels=3)
    seller, parent, grand = chain(make, 3)
    gold = save_grade({"name": "金牌", "rank": 1, "level1_bp": 1500, "level2_bp": 700}, owner=True)
    parent.grade_id = gold.id
    db.session.commit()
    product = make.product(price_fen=3333, stock=100, specs={"尺码": ["S", "M"]})
    small, medium = product.skus
    save_commission_rule(product, medium.id, "fixed", [200, 100, 50], owner=True)
    db.session.commit()
    buyer = customer_of(make, seller)
    address = address_for(buyer)

    for sku, quantity in ((small, 3), (medium, 2)):
        predicted = simulate(sku.id, quantity, buyer_id=buyer.id)
        db.session.rollback()
        order = place_order(buyer.id, [ItemRequest(sku.id, quantity)], address.id)
        db.session.commit()
        pay(order)
        written = db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.order_id == order.id).order_by(LedgerEntry.kind)
        ).all()
        assert [(e.kind, e.distributor_id, e.amount_fen, e.rule_source) for e in written] == [
            (f"level_{r.level}", r.distributor_id, r.amount_fen, r.rule_source)
            for r in predicted.rows
            if r.amount_fen
        ]
        assert [e.note for e in written] == [r.explanation for r in predicted.rows if r.amount_fen]

    # and the figures themselves: 3 × 33.33 = 99.99 at 10% / grade 7% / 2%, rounded down
    small_result = simulate(small.id, 3, buyer_id=buyer.id)
    assert by_level(small_result) == [
        (1, seller.id, 999, "店铺默认"),
        (2, parent.id, 699, "等级 金牌"),
        (3, grand.id, 199, "店铺默认"),
    ]
    assert small_result.merchant_keeps_fen == 9999 - 999 - 699 - 199
    assert by_level(simulate(medium.id, 2, buyer_id=buyer.id)) == [
        (1, seller.id, 400, "SKU 规则"),
        (2, parent.id, 200, "SKU 规则"),
        (3, grand.id, 100, "SKU 规则"),
    ]


def test_simulation_writes_nothing(app_ctx, make):
    configure()
    seller, _parent = chain(make, 2)
    buyer = customer_of(make, seller)
    sku = make.product(price_fen=10000).skus[0]
    before = row_counts()
    result = simulate(
        sku.id,
        2,
        buyer_id=buyer.id,
        preview=Preview(
            levels=3, default_bp=(2000, 1000, 500), rule_mode="percent", rule_values=(3000, 0, 0)
        ),
    )
    db.session.flush()
    assert row_counts() == before
    db.session.rollback()
    assert row_counts() == before
    assert result.rows[0].amount_fen == 6000  # the previewed product rule, 30% of 200.00


def test_missing_disabled_and_excluded_levels_are_explained(app_ctx, make):
    configure(levels=3)
    seller, parent = chain(make, 2)
    parent.status = "disabled"
    db.session.commit()
    sku = make.product(price_fen=5000).skus[0]
    result = simulate(sku.id, 1, chain=[seller.id, parent.id])
    assert [(r.level, r.amount_fen) for r in result.rows] == [(1, 500), (2, 0), (3, 0)]
    assert "已停用" in result.rows[1].explanation
    assert "没有这一级" in result.rows[2].explanation

    excluded = simulate(sku.id, 1, chain=[seller.id], preview=Preview(rule_mode="none"))
    assert excluded.rows[0].amount_fen == 0
    assert excluded.rows[0].explanation == "该商品不参与分佣"
    assert excluded.rows[0].rule_source == "商品规则（预览）"

    tiny = simulate(sku.id, 1, chain=[seller.id], paid_fen=9)
    assert tiny.rows[0].amount_fen == 0 and "不足 1 分" in tiny.rows[0].explanation

    two_levels = simulate(sku.id, 1, chain=[seller.id], preview=Preview(levels=1))
    assert len(two_levels.rows) == 1


def test_self_purchase_and_unbound_buyers(app_ctx, make):
    configure(self_purchase=False)
    seller = distributor(make, nickname="自己买")
    sku = make.product(price_fen=10000).skus[0]
    nobody = simulate(sku.id, 1, buyer_id=seller.user_id)
    assert nobody.rows[0].amount_fen == 0
    assert "不产生分销佣金" in nobody.notes[0]
    own = simulate(sku.id, 1, buyer_id=seller.user_id, preview=Preview(self_purchase=True))
    assert (own.rows[0].distributor_id, own.rows[0].amount_fen) == (seller.id, 1000)
    assert own.chain_source == "买家本人（自购返佣）"


def test_bad_simulation_input_is_refused(app_ctx, make):
    from app.distribution.distributors import DistributionError

    sku = make.product().skus[0]
    d = distributor(make)
    for kwargs, code in (
        ({"sku_id": 999999, "quantity": 1, "chain": [d.id]}, "not_found"),
        ({"sku_id": sku.id, "quantity": 0, "chain": [d.id]}, "invalid_quantity"),
        ({"sku_id": sku.id, "quantity": 1}, "invalid_chain"),
        ({"sku_id": sku.id, "quantity": 1, "chain": [d.id, d.id]}, "invalid_chain"),
        ({"sku_id": sku.id, "quantity": 1, "chain": [999999]}, "not_found"),
        (
            {"sku_id": sku.id, "quantity": 1, "chain": [d.id], "preview": Preview(levels=4)},
            "too_many_levels",
        ),
    ):
        with pytest.raises(DistributionError) as err:
            simulate(**kwargs)
        assert err.value.code == code


def test_simulator_page(app, login_as, make):
    client = fresh_client(app)
    configure()
    seller, parent = chain(make, 2)
    buyer = customer_of(make, seller)
    sku = make.product("模拟商品", price_fen=12900).skus[0]
    login_as(client, make.staff())
    page = client.get("/admin/distribution/simulator")
    assert page.status_code == 200 and "模拟商品" in text(page)
    before = row_counts()
    result = client.get(
        f"/admin/distribution/simulator?sku_id={sku.id}&quantity=2&who=buyer&buyer_id={buyer.id}"
    )
    html = text(result)
    assert result.status_code == 200
    assert "¥25.80" in html and "¥12.90" in html  # 10% and 5% of 258.00
    assert "店铺默认" in html and "向下取整到分" in html
    preview = text(
        client.get(
            f"/admin/distribution/simulator?sku_id={sku.id}&quantity=1&who=chain"
            f"&chain={seller.id},{parent.id}&rule_mode=fixed&rule1=8&rule2=2"
        )
    )
    assert "商品规则（预览）" in preview and "¥8.00" in preview
    bad = client.get(f"/admin/distribution/simulator?sku_id={sku.id}&who=chain&chain=abc")
    assert bad.status_code == 422 and "分销员链条请填写编号" in text(bad)
    db.session.rollback()
    assert row_counts() == before


@pytest.mark.browser
def test_screenshots_of_settings_and_simulator(app, browser, live_server, make, artifacts):
    configure(levels=3)
    seller, _parent, _grand = chain(make, 3)
    customer_of(make, seller, nickname="李四")
    sku = make.product("有机红茶 250g", price_fen=8800, stock=50).skus[0]
    make.staff("boss", password="password123", role="owner")
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "password123")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/admin/distribution/settings")
    assert page.locator(".alert-warn").first.inner_text().startswith("已选择三级分销")
    assert page.locator("[data-level3-warning]").is_visible()
    page.select_option("select[name=levels]", "2")
    assert not page.locator("[data-level3-warning]").is_visible()
    page.select_option("select[name=levels]", "3")
    page.screenshot(path=str(artifacts / "admin-distribution-settings.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/distribution/simulator")
    page.select_option("select[name=sku_id]", str(sku.id))
    page.fill("input[name=quantity]", "2")
    page.fill("input[type=search][aria-label=买家]", "李四")  # the buyer picker
    page.locator(".picker-item", has_text="李四（顾客）").click()
    page.click("button:has-text('计算佣金')")
    page.wait_for_selector(".sim-table")
    cells = page.locator(".sim-table tbody tr").all_inner_texts()
    assert len(cells) == 3 and "¥17.60" in cells[0]
    page.screenshot(path=str(artifacts / "admin-distribution-simulator.png"), full_page=True)
    context.close()
