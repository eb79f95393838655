"""Admin pages of ordering merchants: the level and SKU price editor (validated), the
precedence setting, and merchants (add, approve, disable, parent and level)."""

from __future__ import annotations

import pytest

from app.cloud.merchants import create_merchant
from app.cloud.models import MerchantSkuPrice, OrderingMerchant
from app.cloud.pricing import get_cloud_settings, list_levels
from app.core.models import StatusChange
from app.extensions import db
from tests.support.admin import fresh_client, post, sign_in, text
from tests.support.cloud import levels, merchant
from tests.support.pay import fresh


@pytest.fixture
def client(app):
    return fresh_client(app)


@pytest.fixture
def staff_client(client, make):
    make.staff("clerk")
    sign_in(client, "clerk")
    return client


def level_form(**extra) -> dict:
    form = {}
    for level, name, pct in ((1, "总代", "40"), (2, "省代", "30"), (3, "市代", "20")):
        form[f"name_{level}"] = name
        form[f"discount_{level}"] = pct
    form.update(extra)
    return form


def test_levels_editor_saves_and_refuses_prices_that_go_down(app, make, staff_client):
    sku_id = make.product("保温杯", price_fen=10000).skus[0].id
    page = "/admin/cloud/merchant-levels"
    assert "SKU 价格表" in text(staff_client.get(page))
    res = post(staff_client, page, level_form(precedence="both"), token_from=page)
    assert res.status_code == 302, text(res)
    assert [(row.level, row.name, row.discount_bp) for row in list_levels()] == [
        (1, "总代", 4000),
        (2, "省代", 3000),
        (3, "市代", 2000),
    ]
    assert get_cloud_settings().precedence == "both"
    # L3 set below L2's ¥70: refused with the SKU named, nothing saved.
    res = post(staff_client, page, level_form(**{f"price_3_{sku_id}": "65"}), token_from=page)
    assert res.status_code == 422
    assert "「保温杯」市代（3级）价 ¥65.00 低于省代（2级）价 ¥70.00" in text(res)
    assert db.session.query(MerchantSkuPrice).count() == 0
    res = post(staff_client, page, level_form(**{f"price_3_{sku_id}": "75.5"}), token_from=page)
    assert res.status_code == 302
    db.session.rollback()
    assert db.session.query(MerchantSkuPrice).one().price_fen == 7550
    res = post(staff_client, page, level_form(discount_2="abc"), token_from=page)
    assert res.status_code == 422 and "0-100" in text(res)


def test_merchants_page_add_approve_move(app, make, staff_client):
    levels()
    top = merchant(make, 1, nickname="总代老王")
    user = make.user(nickname="新店主")
    page = "/admin/cloud/merchants"
    res = post(
        staff_client,
        page,
        {"user_id": str(user.id), "level": "5", "parent_id": str(top.id)},
        token_from=page,
    )
    assert res.status_code == 302, text(res)
    db.session.rollback()
    shop = db.session.query(OrderingMerchant).filter_by(level=5).one()
    assert shop.parent_id == top.id
    assert "新店主" in text(staff_client.get(page))
    # An L1 under an L5 is refused with the rule in Chinese.
    res = post(
        staff_client,
        f"{page}/{top.id}",
        {"level": "1", "parent_id": str(shop.id)},
        token_from=page,
    )
    assert res.status_code == 422 and "上级的等级需高于" in text(res)
    # Disable then re-enable, audited.
    assert (
        post(
            staff_client, f"{page}/{shop.id}/status", {"to": "disabled"}, token_from=page
        ).status_code
        == 302
    )
    assert fresh(OrderingMerchant, shop.id).status == "disabled"
    res = post(staff_client, f"{page}/{shop.id}/status", {"to": "disabled"}, token_from=page)
    assert res.status_code == 409
    pending = create_merchant(make.user().id, 4, top.id, "staff:1", status="pending")
    db.session.commit()
    post(staff_client, f"{page}/{pending.id}/status", {"to": "active"}, token_from=page)
    assert fresh(OrderingMerchant, pending.id).status == "active"
    res = post(
        staff_client, f"{page}/{pending.id}", {"level": "2", "parent_id": ""}, token_from=page
    )
    assert res.status_code == 302
    moved = fresh(OrderingMerchant, pending.id)
    assert (moved.level, moved.parent_id) == (2, None)
    actors = {c.actor for c in db.session.query(StatusChange).filter_by(subject="merchant")}
    assert any(a.startswith("staff:") for a in actors)
    res = post(staff_client, page, {"user_id": "999999", "level": "5"}, token_from=page)
    assert res.status_code == 404 and "用户不存在" in text(res)


def test_simulator_page_shows_price_differences(app, make, staff_client):
    from tests.support.commissions import customer_of

    levels()
    top = merchant(make, 1)
    low = merchant(make, 3, top)
    customer = customer_of(make, low.distributor)
    sku_id = make.product(price_fen=10000).skus[0].id
    res = staff_client.get(
        f"/admin/distribution/simulator?sku_id={sku_id}&quantity=1&who=buyer&buyer_id={customer.id}"
    )
    page = text(res)
    assert res.status_code == 200, page
    assert "订货商级差" in page and "级差优先" in page
    assert "零售价 ¥100.00 − 市代价 ¥80.00 = ¥20.00 × 1 件" in page
    assert "市代价 ¥80.00 − 总代价 ¥60.00 = ¥20.00 × 1 件" in page
