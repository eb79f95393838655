"""Categories, products with SKUs, shelf and stock through the admin's real forms."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.catalog.models import Category, Product, Sku
from app.extensions import db
from tests.support.admin import csrf_token, fresh_client, post, text
from tests.support.catalog import product_data


@pytest.fixture
def client(app):
    """Overrides conftest's client: a fresh ``g`` per request (see FreshClient)."""
    return fresh_client(app)


@pytest.fixture
def staff_client(client, login_as, make):
    """A test client signed in as a plain staff member."""
    login_as(client, make.staff("clerk"))
    return client


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- categories -------------------------------------------------------------------------


def test_category_create_rename_and_delete(staff_client, make):
    response = post(staff_client, "/admin/categories", {"name": "女装", "sort": "2"})
    assert response.status_code == 302
    category = db.session.scalar(select(Category))
    assert (category.name, category.sort) == ("女装", 2)

    response = post(
        staff_client, f"/admin/categories/{category.id}", {"name": "女士服装", "sort": "5"}
    )
    assert response.status_code == 302
    db.session.refresh(category)
    assert (category.name, category.sort) == ("女士服装", 5)

    product = make.product(category=category)
    page = staff_client.get("/admin/categories")
    assert "女士服装" in text(page) and "data-confirm" in text(page)
    response = post(staff_client, f"/admin/categories/{category.id}/delete")
    assert response.status_code == 302
    assert count(Category) == 0
    db.session.refresh(product)
    assert product.category_id is None


@pytest.mark.postgresql  # unique constraints
def test_category_duplicate_and_blank_names_are_refused(staff_client, make):
    make.category("女装")
    response = post(staff_client, "/admin/categories", {"name": "女装"})
    assert response.status_code == 422
    assert "分类“女装”已存在" in text(response)
    response = post(staff_client, "/admin/categories", {"name": "  "})
    assert response.status_code == 422
    assert "请输入分类名称" in text(response)
    response = post(staff_client, "/admin/categories", {"name": "家居", "sort": "abc"})
    assert response.status_code == 422
    assert "整数" in text(response)
    assert count(Category) == 1


# --- products: create and edit ----------------------------------------------------------


def test_new_product_page_has_the_spec_builder(staff_client, make):
    make.category("女装")
    page = text(staff_client.get("/admin/products/new"))
    assert "发布新商品" in page and "spec_name_0" in page and "生成规格表" in page
    assert "admin-product.js" in page and "女装" in page
    # images are chosen before the first save (issue 17): staged under a signed token
    assert "data-stage-input" in page and 'name="staging"' in page


def test_create_single_sku_product(staff_client, make):
    category = make.category("家居")
    data = product_data(
        "香薰蜡烛",
        rows=[{"price": "12.5", "original": "20", "stock": "8", "code": "XV-01"}],
        category_id=str(category.id),
        subtitle="安神助眠",
        featured="y",
    )
    response = post(staff_client, "/admin/products/new", data)
    assert response.status_code == 302, text(response)
    product = db.session.scalar(select(Product))
    assert response.headers["Location"] == f"/admin/products/{product.id}/edit"
    assert (product.title, product.subtitle, product.category_id) == (
        "香薰蜡烛",
        "安神助眠",
        category.id,
    )
    assert product.featured and product.on_shelf and product.spec_names == []
    [sku] = product.skus
    assert (sku.price_fen, sku.original_price_fen, sku.stock, sku.code) == (1250, 2000, 8, "XV-01")
    assert sku.specs == {}


def test_create_product_with_two_specs(staff_client):
    rows = [
        {"values": ["红", "S"], "price": "59", "stock": "3"},
        {"values": ["红", "M"], "price": "59.90", "stock": "4"},
        {"values": ["蓝", "S"], "price": "0.01", "stock": "0"},
        {"values": ["蓝", "M"], "price": "1,299.00", "original": "1599", "stock": "12"},
    ]
    data = product_data("纯棉T恤", {"颜色": ["红", "蓝"], "尺码": ["S", "M"]}, rows, on_shelf="")
    response = post(staff_client, "/admin/products/new", data)
    assert response.status_code == 302, text(response)
    product = db.session.scalar(select(Product))
    assert product.spec_names == ["颜色", "尺码"]
    assert not product.on_shelf
    got = {
        (s.specs["颜色"], s.specs["尺码"]): (s.price_fen, s.original_price_fen, s.stock)
        for s in product.skus
    }
    assert got == {
        ("红", "S"): (5900, 0, 3),
        ("红", "M"): (5990, 0, 4),
        ("蓝", "S"): (1, 0, 0),
        ("蓝", "M"): (129900, 159900, 12),
    }
    page = text(staff_client.get(f"/admin/products/{product.id}/edit"))
    assert "红 / M" in page and 'value="59.90"' in page and 'value="1299.00"' in page


def test_server_builds_the_sku_table_without_scripts(staff_client):
    data = product_data(
        "T恤", {"颜色": ["红", "蓝"], "尺码": ["S", "M", "L"]}, rows=[], action="build"
    )
    response = post(staff_client, "/admin/products/new", data)
    assert response.status_code == 200
    page = text(response)
    for label in ("红 / S", "红 / L", "蓝 / M"):
        assert label in page
    assert 'name="sku-5-price"' in page and 'name="sku-6-price"' not in page
    assert count(Product) == 0  # building the table saves nothing


@pytest.mark.postgresql  # stock, SKUs
def test_edit_keeps_sku_ids_and_removes_dropped_combinations(staff_client, make):
    product = make.product("卫衣", specs={"颜色": ["黑", "白"]}, price_fen=9900)
    black, white = sorted(product.skus, key=lambda s: s.specs["颜色"])
    black_id, white_id = black.id, white.id
    rows = [
        {"values": ["黑"], "id": black_id, "price": "88.80", "stock": "5"},
        {"values": ["灰"], "price": "99", "stock": "2"},
    ]
    data = product_data("连帽卫衣", {"颜色": ["黑", "灰"]}, rows)
    response = post(staff_client, f"/admin/products/{product.id}/edit", data)
    assert response.status_code == 302, text(response)
    db.session.expire_all()
    product = db.session.get(Product, product.id)
    assert product.title == "连帽卫衣"
    by_color = {s.specs["颜色"]: s for s in product.skus}
    assert set(by_color) == {"黑", "灰"}
    assert by_color["黑"].id == black_id and by_color["黑"].price_fen == 8880
    assert by_color["灰"].id not in (black_id, white_id)
    assert db.session.get(Sku, white_id) is None


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("-1", "金额不能为负数"),
        ("12.345", "金额最多两位小数"),
        ("abc", "金额格式不正确"),
        ("", "请填写售价"),
    ],
)
def test_bad_prices_rerender_with_a_chinese_message_and_save_nothing(staff_client, price, message):
    rows = [{"values": ["红"], "price": "10"}, {"values": ["蓝"], "price": price}]
    response = post(
        staff_client, "/admin/products/new", product_data("T恤", {"颜色": ["红", "蓝"]}, rows)
    )
    assert response.status_code == 422
    page = text(response)
    assert message in page and "第 2 行（蓝）" in page
    assert 'value="T恤"' in page  # what was typed is shown back
    assert count(Product) == 0 and count(Sku) == 0


def test_duplicate_combination_is_refused(staff_client):
    rows = [{"values": ["红"], "price": "10"}, {"values": ["红"], "price": "11"}]
    response = post(
        staff_client, "/admin/products/new", product_data("T恤", {"颜色": ["红"]}, rows)
    )
    assert response.status_code == 422
    assert "规格组合“红”重复" in text(response)
    assert count(Product) == 0 and count(Sku) == 0


@pytest.mark.parametrize(
    ("specs", "rows", "message"),
    [
        ({"颜色": []}, [{"values": [], "price": "1"}], "请填写规格“颜色”的规格值"),
        ({"": ["红"]}, [{"values": ["红"], "price": "1"}], "请填写规格名称"),
        ({"颜色": ["红"]}, [{"values": ["绿"], "price": "1"}], "不在规格“颜色”的可选值中"),
        (
            {"颜色": ["红"]},
            [{"values": ["红"], "price": "1", "stock": "-3"}],
            "库存需为不小于 0 的整数",
        ),
        (
            {"颜色": ["红"]},
            [{"values": ["红"], "price": "1", "stock": "2.5"}],
            "库存需为不小于 0 的整数",
        ),
        ({"颜色": ["红"]}, [], "至少需要一个规格"),
        ({}, [{"price": "1"}, {"price": "2"}], "只能有一个 SKU"),
    ],
)
def test_other_bad_grids_are_refused(staff_client, specs, rows, message):
    response = post(staff_client, "/admin/products/new", product_data("T恤", specs, rows))
    assert response.status_code == 422
    assert message in text(response)
    assert count(Product) == 0


def test_title_is_required(staff_client):
    response = post(staff_client, "/admin/products/new", product_data(""))
    assert response.status_code == 422
    assert "请输入商品名称" in text(response)
    assert count(Product) == 0


def test_sku_of_another_product_cannot_be_taken_over(staff_client, make):
    mine = make.product("我的")
    other = make.product("别人的", price_fen=500)
    stolen = other.skus[0].id
    data = product_data("我的", rows=[{"id": stolen, "price": "1"}])
    response = post(staff_client, f"/admin/products/{mine.id}/edit", data)
    assert response.status_code == 422
    assert "不属于该商品" in text(response)
    db.session.expire_all()
    assert db.session.get(Sku, stolen).price_fen == 500
    assert db.session.get(Sku, stolen).product_id == other.id
    assert db.session.get(Product, mine.id).skus[0].price_fen == 1990


@pytest.mark.postgresql  # stock, SKUs
def test_failed_edit_leaves_the_product_untouched(staff_client, make):
    product = make.product("原名", price_fen=1000)
    sku_id = product.skus[0].id
    data = product_data("新名", rows=[{"id": sku_id, "price": "12.345"}])
    response = post(staff_client, f"/admin/products/{product.id}/edit", data)
    assert response.status_code == 422
    db.session.expire_all()
    product = db.session.get(Product, product.id)
    assert product.title == "原名" and product.skus[0].price_fen == 1000


@pytest.mark.postgresql  # unique constraints
def test_sku_code_taken_by_another_product_is_refused(staff_client, make):
    other = make.product("别人的")
    other.skus[0].code = "TAKEN-1"
    db.session.commit()
    data = product_data("新品", rows=[{"price": "1", "code": "TAKEN-1"}])
    response = post(staff_client, "/admin/products/new", data)
    assert response.status_code == 422
    assert "SKU 编码“TAKEN-1”已被其他商品使用" in text(response)
    assert count(Product) == 1


# --- list, shelf, stock -----------------------------------------------------------------


@pytest.mark.postgresql  # LIKE differs by engine
def test_product_list_search_filters_and_pages(staff_client, make):
    shoes = make.category("鞋")
    make.product("跑步鞋", category=shoes)
    make.product("帆布鞋", category=shoes, on_shelf=False)
    for n in range(22):
        make.product(f"杯子{n:02d}")
    page = text(staff_client.get("/admin/products?q=鞋"))
    assert "跑步鞋" in page and "帆布鞋" in page and "杯子" not in page
    page = text(staff_client.get(f"/admin/products?category={shoes.id}&shelf=off"))
    assert "帆布鞋" in page and "跑步鞋" not in page
    first = text(staff_client.get("/admin/products"))
    assert "共 24 条" in first and "下一页" in first
    second = text(staff_client.get("/admin/products?page=2"))
    assert "上一页" in second
    assert staff_client.get("/admin/products?page=abc").status_code == 200
    assert "没有符合条件的商品" in text(staff_client.get("/admin/products?q=不存在的东西"))


@pytest.mark.postgresql  # LIKE differs by engine
def test_search_treats_wildcards_literally(staff_client, make):
    make.product("100%纯棉")
    make.product("普通款")
    page = text(staff_client.get("/admin/products?q=%"))
    assert "100%纯棉" in page and "普通款" not in page


def test_shelf_toggle_from_the_list(staff_client, make):
    product = make.product("台灯")
    response = post(
        staff_client,
        f"/admin/products/{product.id}/shelf",
        {"on_shelf": "0", "next": "/admin/products?shelf=on"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/products?shelf=on"
    db.session.refresh(product)
    assert not product.on_shelf
    response = post(
        staff_client,
        f"/admin/products/{product.id}/shelf",
        {"on_shelf": "1", "next": "https://evil.example/"},
    )
    assert response.headers["Location"] == "/admin/"
    db.session.refresh(product)
    assert product.on_shelf


@pytest.mark.postgresql  # stock, SKUs
def test_stock_is_set_inline(staff_client, make):
    product = make.product("水杯", stock=3)
    sku = product.skus[0]
    page = text(staff_client.get("/admin/stock?low=1"))
    assert "水杯" in page and "紧张" in page
    response = post(
        staff_client, f"/admin/skus/{sku.id}/stock", {"stock": "40", "next": "/admin/stock?low=1"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/stock?low=1"
    db.session.refresh(sku)
    assert sku.stock == 40
    assert "库存已改为 40" in text(staff_client.get("/admin/stock"))


@pytest.mark.postgresql  # stock, SKUs
@pytest.mark.parametrize("value", ["-1", "abc", "", "99999999999"])
def test_bad_stock_is_refused(staff_client, make, value):
    product = make.product("水杯", stock=3)
    sku = product.skus[0]
    response = post(staff_client, f"/admin/skus/{sku.id}/stock", {"stock": value})
    assert response.status_code == 422
    assert "库存" in text(response)
    db.session.refresh(sku)
    assert sku.stock == 3


# --- dashboard --------------------------------------------------------------------------


def test_dashboard_counts_and_worker_heartbeat(staff_client, make):
    from jobs.maintenance import record_heartbeat

    make.category("家居")
    make.product("在售一号", stock=0)
    make.product("在售二号", stock=2)
    make.product("下架的", on_shelf=False)
    page = text(staff_client.get("/admin/"))
    assert "在售商品" in page and "未运行" in page
    assert "在售一号" in page and "售罄" in page and "在售二号" in page
    record_heartbeat()
    page = text(staff_client.get("/admin/"))
    assert "运行中" in page and "未运行" not in page and "刚刚" in page


def test_dashboard_token_helper_works(staff_client):
    assert csrf_token(staff_client, "/admin/")
