"""分享赚 and the 推广商品库 in the JSON API (app/api/distributor_products.py).

Customers and anonymous visitors never receive a commission; an active distributor gets
the figures the commission job would write; bad input answers a JSON error with a code;
every endpoint is in the OpenAPI document.
"""

from __future__ import annotations

import pytest

from app.catalog.models import Product
from app.distribution.distributors import create_distributor
from app.distribution.models import CommissionRule, Distributor
from app.extensions import db
from tests.support.commissions import configure, customer_of, distributor, pay, place
from tests.support.distribution import signed_in
from tests.support.share import counted_queries, graded, rule

EARNINGS = "/api/v1/distributor/share-earnings"
LIBRARY = "/api/v1/distributor/products"


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


@pytest.fixture
def shop(make):
    configure(levels=2, level1_bp=1000, self_purchase=True)
    dress = make.product(title="连衣裙", specs={"尺码": ["S", "L"]})
    dress.skus[0].price_fen, dress.skus[1].price_fen = 1200 * 10, 3900 * 10
    db.session.commit()
    cup = make.product(title="茶杯", price_fen=2000)
    rule(cup, "percent", 2500)
    return {"dress": dress.id, "cup": cup.id, "skus": [s.id for s in dress.skus]}


def test_customers_and_visitors_get_no_commission(app, client, make, login_as, shop):
    ids = f"{shop['dress']},{shop['cup']}"
    anonymous = client.get(f"{EARNINGS}?product_ids={ids}")
    assert anonymous.status_code == 200
    assert anonymous.get_json() == {
        "distributor": False,
        "self_purchase": False,
        "self_purchase_note": "",
        "ref": None,
        "base_url": app.config["PUBLIC_BASE_URL"],
        "items": [],
    }
    assert "no-store" in anonymous.headers["Cache-Control"]
    customer = signed_in(app, login_as, make.user())
    assert customer.get(f"{EARNINGS}?product_ids={ids}").get_json()["items"] == []
    pending = create_distributor(make.user().id, None, status="pending")
    db.session.commit()
    waiting = signed_in(app, login_as, pending.user)
    assert waiting.get(f"{EARNINGS}?product_ids={ids}").get_json()["distributor"] is False
    staff = signed_in(app, login_as, make.staff())
    assert staff.get(f"{EARNINGS}?product_ids={ids}").get_json()["distributor"] is False
    for path in (LIBRARY, f"{LIBRARY}/{shop['cup']}/estimate"):
        assert client.get(path).status_code == 401
        refused = customer.get(path)
        assert refused.status_code == 404 and error_code(refused) == "not_distributor"
        refused = waiting.get(path)
        assert refused.status_code == 403 and error_code(refused) == "not_active"


def test_a_distributor_sees_the_figures(app, make, login_as, shop):
    seller = distributor(make, nickname="小美")
    graded(seller, level1_bp=1000)
    client = signed_in(app, login_as, seller.user)
    body = client.get(f"{EARNINGS}?product_ids={shop['dress']},{shop['cup']},999999").get_json()
    assert body["distributor"] is True and body["self_purchase"] is True
    assert body["self_purchase_note"] and body["ref"] == seller.code
    by_id = {item["product_id"]: item for item in body["items"]}
    assert set(by_id) == {shop["dress"], shop["cup"]}
    assert by_id[shop["dress"]]["label"] == "¥12.00–¥39.00"
    assert by_id[shop["cup"]] == {
        "product_id": shop["cup"],
        "min_fen": 500,
        "max_fen": 500,
        "rate_bp": 2500,
        "label": "¥5.00",
        "skus": [
            {"sku_id": db.session.get(Product, shop["cup"]).skus[0].id, "commission_fen": 500}
        ],
    }

    estimate = client.get(f"{LIBRARY}/{shop['dress']}/estimate").get_json()
    assert [s["commission_fen"] for s in estimate["skus"]] == [1200, 3900]
    assert [s["spec_text"] for s in estimate["skus"]] == ["S", "L"]
    assert estimate["share_url"].endswith(f"/product/{shop['dress']}?ref={seller.code}")
    assert client.get(f"{LIBRARY}/999999/estimate").status_code == 404


def test_library_sorts_and_searches(app, make, login_as, shop):
    seller = distributor(make)
    buyer = customer_of(make, seller)
    cup = db.session.get(Product, shop["cup"])
    pay(place(make, buyer, product=cup, quantity=2))
    client = signed_in(app, login_as, seller.user)

    def ids(query: str) -> list[int]:
        response = client.get(f"{LIBRARY}?{query}")
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids("sort=commission") == [shop["dress"], shop["cup"]]
    assert ids("sort=rate") == [shop["cup"], shop["dress"]]
    assert ids("sort=sales") == [shop["cup"], shop["dress"]]
    assert ids("sort=newest") == [shop["cup"], shop["dress"]]
    assert ids("q=茶") == [shop["cup"]]
    assert ids("q=没有的东西") == []
    body = client.get(f"{LIBRARY}?sort=sales&per_page=1").get_json()
    assert body["meta"] == {
        "page": 1,
        "per_page": 1,
        "has_next": True,
        "total": 2,
        "sort": "sales",
        "q": "",
    }
    item = body["items"][0]
    assert item["sold"] == 2 and item["rate_label"] == "25%"
    assert item["commission_label"] == "¥5.00"
    assert item["share_url"].endswith(f"/product/{shop['cup']}?ref={seller.code}")


@pytest.mark.parametrize(
    "path",
    [
        f"{EARNINGS}",
        f"{EARNINGS}?product_ids=",
        f"{EARNINGS}?product_ids=abc",
        f"{EARNINGS}?product_ids=1,,2",
        f"{EARNINGS}?product_ids=99999999999",
        EARNINGS + "?product_ids=" + ",".join(str(i) for i in range(1, 62)),
        f"{LIBRARY}?sort=cheapest",
        f"{LIBRARY}?page=0",
        f"{LIBRARY}?per_page=500",
        f"{LIBRARY}?q=%00",
    ],
)
def test_bad_input_answers_a_json_error(app, make, login_as, path):
    configure(levels=2)
    seller = distributor(make)
    client = signed_in(app, login_as, seller.user)
    response = client.get(path)
    assert 400 <= response.status_code < 500, path
    assert response.get_json()["error"]["code"]


def test_endpoints_are_in_the_openapi_document(client, app_ctx):
    document = client.get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    assert "get" in paths["/api/v1/distributor/share-earnings"]
    assert "get" in paths["/api/v1/distributor/products"]
    assert "get" in paths["/api/v1/distributor/products/{product_id}/estimate"]
    params = {p["name"] for p in paths["/api/v1/distributor/products"]["get"]["parameters"]}
    assert {"sort", "q", "page", "per_page"} <= params


def test_answers_are_cached_until_a_row_they_read_changes(app, make, login_as, shop):
    seller = distributor(make, nickname="小美")
    client = signed_in(app, login_as, seller.user)
    path = f"{EARNINGS}?product_ids={shop['cup']}"

    def label() -> str:
        items = client.get(path).get_json()["items"]
        return items[0]["label"] if items else ""

    assert label() == "¥5.00"
    with counted_queries() as seen:
        assert label() == "¥5.00"
    assert seen == []  # a hit: no query at all, not even the user
    cup = db.session.get(Product, shop["cup"])
    cup.skus[0].price_fen = 4000  # the catalog version moves
    db.session.commit()
    assert label() == "¥10.00"
    rule_row = db.session.scalar(db.select(CommissionRule).filter_by(product_id=cup.id))
    rule_row.level1 = 1000  # the share version moves
    db.session.commit()
    assert label() == "¥4.00"
    db.session.execute(
        db.update(Distributor).where(Distributor.id == seller.id).values(status="disabled")
    )
    db.session.commit()
    assert client.get(path).get_json()["distributor"] is False
    other = signed_in(app, login_as, make.user())
    assert other.get(path).get_json()["distributor"] is False
