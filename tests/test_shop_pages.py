"""The H5 shop pages through Flask's test client, on factory data."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import event

from app.extensions import db


def _html(response) -> str:
    return response.get_data(as_text=True)


def test_home_lists_products_with_prices_and_featured(client, make):
    dresses = make.category("女装")
    make.product("碎花连衣裙", category=dresses, price_fen=15900, featured=True)
    make.product("纯棉T恤", category=dresses, price_fen=5905)
    make.product("下架的外套", category=dresses, on_shelf=False)

    response = client.get("/")
    html = _html(response)
    assert response.status_code == 200
    assert 'lang="zh-CN"' in html
    assert "精选推荐" in html
    assert "碎花连衣裙" in html and "纯棉T恤" in html
    assert "下架的外套" not in html
    assert "<small>¥</small>159.00" in html and "<small>¥</small>59.05" in html
    assert "¥69.05" in html  # original price (price + 10 yuan in the factory), struck
    assert f'href="/category/{dresses.id}"' in html
    assert 'name="q"' in html  # search box
    assert "没有更多了" in html


def test_home_empty_shop(client, app_ctx):
    html = _html(client.get("/"))
    assert "店铺还没有上架商品" in html
    assert "没有更多了" not in html


def test_images_are_lazy_with_dimensions(client, make):
    from app.catalog.models import ProductImage

    for i in range(4):
        product = make.product(f"商品{i}")
        product.images.append(ProductImage(filename=f"p{i}.jpg", width=750, height=750))
    db.session.commit()
    html = _html(client.get("/"))
    images = re.findall(r"<img [^>]*>", html)
    assert len(images) == 4
    assert all('width="750"' in tag and 'height="750"' in tag for tag in images)
    assert sum('loading="lazy"' in tag for tag in images) >= 2
    assert all("/media/p" in tag for tag in images)


def test_home_pagination(client, make):
    for i in range(25):
        make.product(f"分页商品{i:02d}")
    first = _html(client.get("/"))
    assert first.count('class="card"') == 20
    assert 'href="/?page=2"' in first and "没有更多了" not in first
    second = _html(client.get("/?page=2"))
    assert second.count('class="card"') == 5
    assert "没有更多了" in second
    # Newest first: page 2 holds the five oldest.
    assert "分页商品00" in second and "分页商品24" in first
    # Nonsense page numbers fall back to page 1 or an empty page, never an error.
    assert client.get("/?page=abc").status_code == 200
    assert client.get("/?page=-3").status_code == 200
    assert client.get("/?page=99999999999").status_code == 200
    assert "没有更多了" in _html(client.get("/?page=900"))


@pytest.mark.postgresql  # queries and transactions
def test_home_queries_do_not_grow_with_products(client, make):
    for i in range(3):
        make.product(f"A{i}", specs={"颜色": ["红", "蓝"]}, featured=True)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        client.get("/")
        few = len(statements)
        for i in range(15):
            make.product(f"B{i}", specs={"颜色": ["红", "蓝"]}, featured=True)
        statements.clear()
        client.get("/")
        many = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert many == few
    assert many <= 8


def test_category_page(client, make):
    food = make.category("食品")
    other = make.category("家居")
    make.product("五常大米", category=food)
    make.product("马克杯", category=other)
    html = _html(client.get(f"/category/{food.id}"))
    assert "五常大米" in html and "马克杯" not in html
    assert "<h1>食品</h1>" in html
    empty = make.category("美妆")
    assert "这个分类暂时没有商品" in _html(client.get(f"/category/{empty.id}"))
    missing = client.get("/category/999999")
    assert missing.status_code == 404
    assert "分类不存在" in _html(missing)


@pytest.mark.postgresql  # queries and transactions
def test_categories_page_counts_on_shelf_products(client, make):
    food = make.category("食品", sort=1)
    make.category("家居", sort=2)
    make.product("五常大米", category=food)
    make.product("下架零食", category=food, on_shelf=False)
    html = _html(client.get("/categories"))
    assert html.index("食品") < html.index("家居")
    assert "1 件商品" in html and "0 件商品" in html


@pytest.mark.postgresql  # LIKE differs by engine
def test_search_hits_misses_and_empty_query(client, make):
    make.product("法式碎花连衣裙")
    make.product("纯棉T恤")
    make.product("下架连衣裙", on_shelf=False)
    hit = _html(client.get("/search?q=连衣裙"))
    assert "法式碎花连衣裙" in hit and "下架连衣裙" not in hit and "纯棉T恤" not in hit
    assert "纯棉T恤" in _html(client.get("/search?q=t恤"))  # case-insensitive
    miss = _html(client.get("/search?q=火箭"))
    assert "没有找到“火箭”相关的商品" in miss
    empty = client.get("/search?q=")
    assert empty.status_code == 200 and "想买点什么" in _html(empty)
    assert "想买点什么" in _html(client.get("/search"))
    # LIKE wildcards are taken literally; long input is cut, never an error.
    assert "没有找到" in _html(client.get("/search?q=%25"))
    assert "没有找到" in _html(client.get("/search?q=_"))
    assert client.get("/search?q=" + "很长" * 500).status_code == 200


@pytest.mark.postgresql  # LIKE differs by engine
def test_search_matches_subtitle(client, make):
    product = make.product("保温杯")
    product.subtitle = "316不锈钢 长效保温"
    db.session.commit()
    assert "保温杯" in _html(client.get("/search?q=不锈钢"))


def test_search_page_two(client, make):
    for i in range(22):
        make.product(f"苹果{i:02d}")
    second = _html(client.get("/search?q=苹果&page=2"))
    assert second.count('class="card"') == 2
    assert "没有更多了" in second
    first = _html(client.get("/search?q=苹果"))
    assert "page=2" in first and "q=%E8%8B%B9%E6%9E%9C" in first


def test_product_page_multi_sku(client, make):
    product = make.product(
        "法式碎花连衣裙", price_fen=15900, specs={"颜色": ["粉", "白"], "尺码": ["M", "XL"]}
    )
    product.skus[-1].price_fen = 16900
    product.skus[0].stock = 0
    product.description = "轻盈雪纺\n收腰显瘦"
    db.session.commit()

    response = client.get(f"/product/{product.id}")
    html = _html(response)
    assert response.status_code == 200
    assert "<title>法式碎花连衣裙" in html
    assert "159.00" in html
    assert re.search(r"data-from\s*>起", html)  # "¥159.00起": prices differ
    assert "¥169.00" in html  # the highest original price, struck through
    assert "颜色" in html and "尺码" in html
    assert 'data-value="XL"' in html
    assert "库存 30 件" in html  # 0 + 10 + 10 + 10
    assert "<p>轻盈雪纺</p><p>收腰显瘦</p>" in html  # plain text: a paragraph per line
    assert "加入购物车" in html and "立即购买" in html

    data = json.loads(re.search(r'id="sku-data">(.*?)</script>', html, re.S).group(1))
    assert data["specs"] == [
        {"name": "颜色", "values": ["粉", "白"]},
        {"name": "尺码", "values": ["M", "XL"]},
    ]
    assert len(data["skus"]) == 4
    assert {k: data["skus"][0][k] for k in ("values", "stock")} == {
        "values": ["粉", "M"],
        "stock": 0,
    }
    assert data["skus"][-1]["price_fen"] == 16900
    assert all(isinstance(s["price_fen"], int) for s in data["skus"])


def test_product_page_single_sku_and_sold_out(client, make):
    single = make.product("五常大米", price_fen=6990, stock=3)
    html = _html(client.get(f"/product/{single.id}"))
    assert "69.90" in html and re.search(r"data-from hidden", html)
    assert "库存 3 件" in html
    assert "data-picked" not in html  # nothing to pick

    sold_out = make.product("限量礼盒", stock=0)
    html = _html(client.get(f"/product/{sold_out.id}"))
    assert "已售罄" in html
    assert "立即购买" not in html


def test_product_json_is_escaped(client, make):
    product = make.product("</script><b>坏</b>", specs={"口味": ["</script>"]})
    html = _html(client.get(f"/product/{product.id}"))
    assert "</script><b>" not in html
    assert "&lt;/script&gt;" in html


def test_off_shelf_and_unknown_products_are_chinese_404s(client, make):
    off = make.product("下架商品", on_shelf=False)
    for url in (f"/product/{off.id}", "/product/999999", "/product/99999999999999", "/product/x"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "页面不存在" in _html(response)
        assert "返回首页" in _html(response)
    assert "商品不存在或已下架" in _html(client.get(f"/product/{off.id}"))
    # Off-shelf products are not linked from anywhere either.
    assert "下架商品" not in _html(client.get("/"))
    assert "下架商品" not in _html(client.get("/search?q=下架"))


def test_my_page_requires_sign_in(client, app_ctx):
    response = client.get("/my")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/my"


def test_my_page_signed_in(client, make, login_as):
    fan = make.user(nickname="小红")
    login_as(client, fan)
    html = _html(client.get("/my"))
    assert "小红" in html
    assert "成为分销员" in html
    assert "待付款" in html and "待发货" in html
    assert 'aria-current="page"' in html


def test_tab_bar_on_list_pages(client, make):
    make.product("商品")
    for url in ("/", "/categories", "/search?q=商品"):
        html = _html(client.get(url))
        assert 'class="tabbar"' in html
        for label in ("首页", "分类", "我的"):
            assert label in html


def test_css_stays_small(app):
    from pathlib import Path

    css = Path(app.static_folder) / "css" / "shop.css"
    assert css.stat().st_size < 15 * 1024


def test_cached_product_page_follows_catalog_changes(client, make):
    from app.catalog.services import adjust_stock, set_on_shelf, set_stock

    product = make.product("马克杯", stock=12)
    url = f"/product/{product.id}"
    assert "库存 12 件" in _html(client.get(url))
    assert "库存 12 件" in _html(client.get(url))  # served from the cache

    set_stock(product.skus[0], 5)  # a Core UPDATE through the session
    db.session.commit()
    assert "库存 5 件" in _html(client.get(url))

    adjust_stock(product.skus[0], -5)
    db.session.commit()
    assert "已售罄" in _html(client.get(url))

    product.title = "北欧马克杯"  # an ORM change
    db.session.commit()
    assert "北欧马克杯" in _html(client.get(url))

    set_on_shelf(product, False)
    db.session.commit()
    assert client.get(url).status_code == 404
    set_on_shelf(product, True)
    db.session.commit()
    assert client.get(url).status_code == 200


@pytest.mark.postgresql  # queries and transactions
def test_uncommitted_changes_do_not_invalidate(client, make):
    product = make.product("香薰蜡烛", stock=7)
    url = f"/product/{product.id}"
    assert "库存 7 件" in _html(client.get(url))
    product.skus[0].stock = 1
    db.session.flush()
    db.session.rollback()
    assert "库存 7 件" in _html(client.get(url))


def test_cached_page_survives_redis_flush(app, client, make):
    from app.core.redis import redis_for

    product = make.product("普洱茶", stock=3)
    url = f"/product/{product.id}"
    assert "库存 3 件" in _html(client.get(url))
    redis_for(app).flushdb()  # a restarted Redis: a new version, never an old one
    assert "库存 3 件" in _html(client.get(url))


def test_cached_lists_show_new_products_at_once(client, make):
    assert "店铺还没有上架商品" in _html(client.get("/"))
    food = make.category("食品")
    assert "0 件商品" in _html(client.get("/categories"))
    make.product("新到的苹果", category=food)
    assert "新到的苹果" in _html(client.get("/"))
    assert "新到的苹果" in _html(client.get(f"/category/{food.id}"))
    assert "1 件商品" in _html(client.get("/categories"))
