"""Coupon doors: the customer's pages and JSON API (centre, claim, mine, a shared
distributor-exclusive coupon, checkout with the best coupon), the admin pages and the
Open API."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.coupons.models import CouponTemplate, CustomerCoupon
from app.distribution.binding import current_binding
from app.extensions import db
from tests.support import commissions as c
from tests.support.admin import fresh_client, post
from tests.support.coupons import held, template
from tests.support.openapi import bearer_caller
from tests.support.orders import make_address, sign_in


@pytest.fixture
def client(app):
    """A fresh ``g`` per request (tests/support/admin.py FreshClient)."""
    return fresh_client(app)


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_centre_claim_and_mine(client, login_as, make):
    t = template(name="满100减20", stock=5)
    hidden = template(name="专属券", distributor_only=True)
    page = client.get("/coupons").get_data(as_text=True)
    assert "满100减20" in page and "满 ¥100.00 减 ¥20.00" in page
    assert "专属券" not in page  # only through a distributor's link
    assert client.post(f"/api/v1/coupons/{t.id}/claim", json={}).status_code in (400, 401)

    buyer = make.user(nickname="领券人")
    headers = sign_in(client, login_as, buyer)
    answer = client.post(f"/api/v1/coupons/{t.id}/claim", json={}, headers=headers)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    again = client.post(f"/api/v1/coupons/{t.id}/claim", json={}, headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "coupon_limit"
    refused = client.post(f"/api/v1/coupons/{hidden.id}/claim", json={}, headers=headers)
    assert refused.get_json()["error"]["code"] == "distributor_only"
    mine = client.get("/api/v1/coupons/mine").get_json()["items"]
    assert [m["name"] for m in mine] == ["满100减20"]
    assert "满100减20" in client.get("/coupons/mine").get_data(as_text=True)
    assert (
        client.post("/api/v1/coupons/99999999999/claim", json={}, headers=headers).status_code
        == 404
    )


def test_shared_distributor_coupon_binds_like_a_ref_link(client, login_as, make):
    c.configure()
    seller = c.distributor(make, nickname="小王")
    t = template(name="小王专属", distributor_only=True)
    buyer = make.user()
    headers = sign_in(client, login_as, buyer)
    page = client.get(f"/coupons/{t.id}?d={seller.code}").get_data(as_text=True)
    assert "小王 送你一张优惠券" in page and f'data-distributor="{seller.code}"' in page
    assert current_binding(buyer.id) is None  # the visit alone binds nobody
    answer = client.post(
        f"/api/v1/coupons/{t.id}/claim", json={"distributor": seller.code}, headers=headers
    )
    assert answer.status_code == 201
    db.session.expire_all()
    assert current_binding(buyer.id).distributor_id == seller.id
    assert client.get("/coupons/2147483648").status_code == 404


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_checkout_chooses_the_best_coupon_and_the_order_uses_it(client, login_as, make):
    buyer = make.user()
    address = make_address(buyer.id)
    sku = make.product(price_fen=15000, stock=5).skus[0]
    small = held(buyer, template(name="满100减5", off_fen=500))
    best = held(buyer, template(name="满100减20"))
    headers = sign_in(client, login_as, buyer)
    page = client.get(f"/checkout?sku_id={sku.id}&quantity=1").get_data(as_text=True)
    data = re.search(r'id="checkout-data">(.*?)</script>', page).group(1)
    assert f'"coupon_id": {best.id}' in data
    assert "-¥20.00" in page and "¥130.00" in page  # 150 - 20, free shipping over ¥99
    none = client.get(f"/checkout?sku_id={sku.id}&quantity=1&coupon=0").get_data(as_text=True)
    assert '"coupon_id": null' in none and "¥150.00" in none
    other = client.get(f"/checkout?sku_id={sku.id}&coupon={small.id}").get_data(as_text=True)
    assert f'"coupon_id": {small.id}' in other
    for junk in ("abc", "-1", "99999999999"):
        assert client.get(f"/checkout?sku_id={sku.id}&coupon={junk}").status_code == 200

    body = {
        "items": [{"sku_id": sku.id, "quantity": 1}],
        "address_id": address.id,
        "coupon_id": best.id,
    }
    answer = client.post("/api/v1/orders", json=body, headers=headers)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    order = answer.get_json()
    assert order["coupon_fen"] == 2000 and order["total_fen"] == 13000
    assert order["lines"][0]["amount_fen"] == 13000
    again = client.post("/api/v1/orders", json=body, headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "coupon_used"


def test_admin_create_pause_issue_and_list(client, login_as, make):
    login_as(client, make.staff("clerk"))
    assert "还没有优惠券" in client.get("/admin/coupons").get_data(as_text=True)
    assert client.get("/admin/coupons/new").status_code == 200
    bad = post(client, "/admin/coupons", {"name": "x", "kind": "amount_off", "off": "20"})
    assert bad.status_code == 400 and "发放总量" in bad.get_data(as_text=True)
    made = post(
        client,
        "/admin/coupons",
        {
            "name": "店庆满减",
            "kind": "amount_off",
            "off": "20",
            "threshold": "100",
            "scope": "all",
            "valid_mode": "days",
            "valid_days": "7",
            "stock": "100",
            "per_customer": "1",
        },
    )
    assert made.status_code == 302
    t = db.session.scalar(select(CouponTemplate).where(CouponTemplate.name == "店庆满减"))
    assert (t.threshold_fen, t.off_fen, t.stock) == (10000, 2000, 100)

    alice = make.user(nickname="爱丽丝")
    make_address(alice.id, phone="13911112222")
    found = client.get(f"/admin/coupons/{t.id}/issue?q=1391111").get_data(as_text=True)
    assert "爱丽丝" in found
    assert (
        post(client, f"/admin/coupons/{t.id}/issue", {"user_ids": str(alice.id)}).status_code == 302
    )
    seller = c.distributor(make, nickname="老李")
    fans = [c.customer_of(make, seller, nickname=f"粉丝{i}") for i in range(3)]
    listed = client.get(f"/admin/coupons/{t.id}/issue?dq=老李").get_data(as_text=True)
    assert "老李" in listed
    post(client, f"/admin/coupons/{t.id}/issue", {"distributor_id": str(seller.id)})
    db.session.expire_all()
    holders = set(
        db.session.scalars(select(CustomerCoupon.user_id).where(CustomerCoupon.template_id == t.id))
    )
    assert holders == {alice.id, *(f.id for f in fans)}
    page = client.get("/admin/coupons").get_data(as_text=True)
    assert "店庆满减" in page and "4/100" in page
    post(client, f"/admin/coupons/{t.id}/pause")
    db.session.expire_all()
    assert db.session.get(CouponTemplate, t.id).status == "paused"
    assert post(client, "/admin/coupons/2147483648/pause").status_code == 404


def test_open_api(client, runner, make):
    made = runner.invoke(args=["create-api-token", "coupons"])
    api = bearer_caller(client, made.output.strip())
    answer = api(
        "post",
        "/coupons",
        json={
            "name": "9折券",
            "kind": "percent_off",
            "off_bp": 1000,
            "max_off_fen": 3000,
            "stock": 10,
        },
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    coupon = answer.get_json()
    bad = api("post", "/coupons", json={"name": "坏", "kind": "amount_off", "stock": 10})
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_off"
    user = make.user()
    issued = api("post", f"/coupons/{coupon['id']}/issue", json={"user_ids": [user.id]})
    assert issued.get_json() == {"issued": 1, "skipped": 0}
    listed = api("get", "/coupons").get_json()["items"]
    assert listed[0]["claimed"] == 1 and listed[0]["redemption_rate"] == "0.0%"
    assert api("post", f"/coupons/{coupon['id']}/pause").get_json()["status"] == "paused"
    assert api("get", "/coupons/2147483648").status_code == 404


@pytest.mark.postgresql  # money, ledger, orders or stock
def test_the_commission_simulator_takes_a_coupon(client, login_as, make):
    c.configure()
    seller = c.distributor(make)
    sku = make.product(price_fen=15000).skus[0]
    t = template(name="满100减20")
    login_as(client, make.staff("clerk"))
    page = client.get(
        f"/admin/distribution/simulator?sku_id={sku.id}&quantity=1&who=chain"
        f"&chain={seller.id}&coupon_id={t.id}"
    ).get_data(as_text=True)
    # 150.00 - 20.00 = 130.00 paid; level 1 at 10% = 13.00.
    assert "实付 ¥130.00" in page and "¥13.00" in page
    assert "使用优惠券“满100减20”" in page
    junk = client.get(f"/admin/distribution/simulator?sku_id={sku.id}&coupon_id=abc")
    assert junk.status_code in (200, 400, 422)
