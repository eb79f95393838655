"""Customer side of the JSON API: catalog reads and /api/v1/me, through the test client."""

from __future__ import annotations

import pytest

from app.api.blueprints import PUBLIC_ATTR
from app.catalog.models import ProductImage
from app.extensions import db


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


def test_categories_in_merchant_order(client, make):
    second = make.category("家居", sort=2)
    first = make.category("女装", sort=1)
    body = client.get("/api/v1/categories").get_json()
    assert body == {
        "items": [
            {"id": first.id, "name": "女装", "sort": 1},
            {"id": second.id, "name": "家居", "sort": 2},
        ]
    }


def test_products_list_shape_and_on_shelf_only(client, make, app):
    cat = make.category("女装")
    shirt = make.product("纯棉T恤", category=cat, price_fen=1990, specs={"尺码": ["S", "M"]})
    shirt.skus[1].price_fen = 990
    shirt.skus[1].original_price_fen = 1500
    db.session.add(
        ProductImage(product=shirt, filename="products/shirt.jpg", width=800, height=800)
    )
    db.session.commit()
    make.product("已下架的", on_shelf=False)

    body = client.get("/api/v1/products").get_json()
    assert body["meta"] == {"page": 1, "per_page": 20, "total": 1, "pages": 1}
    assert body["items"] == [
        {
            "id": shirt.id,
            "title": "纯棉T恤",
            "subtitle": "",
            "category_id": cat.id,
            "min_price_fen": 990,
            "original_price_fen": 1500,
            "cover_url": app.config["PUBLIC_BASE_URL"] + "/media/products/shirt.jpg",
            "stock": 20,
        }
    ]
    assert all(isinstance(v, int) for k, v in body["items"][0].items() if k.endswith("_fen"))


def test_products_filters_and_pagination(client, make):
    cat = make.category()
    in_cat = [make.product(f"连衣裙{i}", category=cat) for i in range(3)]
    make.product("帽子")

    by_cat = client.get(f"/api/v1/products?category_id={cat.id}").get_json()
    assert {p["id"] for p in by_cat["items"]} == {p.id for p in in_cat}

    found = client.get("/api/v1/products", query_string={"q": "连衣"}).get_json()
    assert found["meta"]["total"] == 3
    assert client.get("/api/v1/products?q=%25").get_json()["meta"]["total"] == 0  # % is literal

    page2 = client.get("/api/v1/products?per_page=2&page=2").get_json()
    assert page2["meta"] == {"page": 2, "per_page": 2, "total": 4, "pages": 2}
    assert len(page2["items"]) == 2
    page1 = client.get("/api/v1/products?per_page=2&page=1").get_json()
    assert not {p["id"] for p in page1["items"]} & {p["id"] for p in page2["items"]}
    beyond = client.get("/api/v1/products?per_page=2&page=9").get_json()
    assert beyond["items"] == [] and beyond["meta"]["total"] == 4


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=0",
        "page=-1",
        "per_page=51",
        "per_page=100000000000000000000",
        "category_id=abc",
        "category_id=99999999999999",
        "page=1&page=2",
        "q=" + "长" * 51,
        "q=a%00b",
    ],
)
def test_products_bad_query_is_422(client, make, query):
    error = _error(client.get(f"/api/v1/products?{query}"), 422, "validation_error")
    assert error["details"] and error["details"][0]["field"]


def test_product_detail(client, make):
    product = make.product("卫衣", price_fen=12900, stock=3, specs={"颜色": ["红", "黑"]})
    body = client.get(f"/api/v1/products/{product.id}").get_json()
    assert body["id"] == product.id
    assert body["spec_names"] == ["颜色"]
    assert body["images"] == []
    assert body["cover_url"] is None
    assert body["stock"] == 6
    assert body["skus"] == [
        {
            "id": sku.id,
            "specs": {"颜色": color},
            "price_fen": 12900,
            "original_price_fen": 13900,
            "stock": 3,
        }
        for sku, color in zip(product.skus, ["红", "黑"], strict=True)
    ]


def test_product_detail_404s(client, make):
    hidden = make.product(on_shelf=False)
    _error(client.get(f"/api/v1/products/{hidden.id}"), 404, "not_found")
    _error(client.get("/api/v1/products/999999"), 404, "not_found")
    _error(client.get("/api/v1/products/99999999999999999999"), 404, "not_found")
    _error(client.get("/api/v1/products/abc"), 404, "not_found")
    _error(client.post("/api/v1/products"), 405, "method_not_allowed")


def test_me_signed_in(client, make, login_as):
    user = make.user(openid="o_me_1", nickname="小明")
    login_as(client, user)
    assert client.get("/api/v1/me").get_json() == {
        "id": user.id,
        "openid": "o_me_1",
        "nickname": "小明",
        "avatar_url": "",
        "is_distributor": False,
    }


def test_me_says_whether_an_active_distributor(client, make, login_as):
    from app.distribution.distributors import create_distributor
    from app.extensions import db

    user = make.user()
    distributor = create_distributor(user.id, None)
    db.session.commit()
    login_as(client, user)
    assert client.get("/api/v1/me").get_json()["is_distributor"] is True
    distributor.status = "disabled"
    db.session.commit()
    assert client.get("/api/v1/me").get_json()["is_distributor"] is False


def test_me_needs_a_customer(client, make, login_as):
    _error(client.get("/api/v1/me"), 401, "unauthorized")
    login_as(client, make.staff())
    _error(client.get("/api/v1/me"), 401, "unauthorized")


def test_cookie_api_writes_need_csrf_header(app, client, make, login_as):
    """Every state-changing route of the cookie API is refused without X-CSRFToken.

    There are none yet besides the Open API; the loop covers those added later.
    """
    login_as(client, make.user())
    for rule in app.url_map.iter_rules():
        path = str(rule)
        if not path.startswith("/api/v1/") or path.startswith("/api/v1/admin/"):
            continue
        if getattr(app.view_functions[rule.endpoint], PUBLIC_ATTR, False):
            continue  # the mini-program's sign-in doors: no session, their credential in the body
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            url = rule.build(dict.fromkeys(rule.arguments, 1))[1]
            response = client.open(url, method=method, json={})
            _error(response, 400, "csrf_failed")


def test_wrong_method_names_the_allowed_ones(client):
    response = client.delete("/api/v1/categories")
    _error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]
