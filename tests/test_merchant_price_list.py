"""订货商 我的价格表 and 代客下单 over HTTP (issue 17): one row per product with its SKUs
folded, level price beside retail, search, pages; sold-out SKUs marked and not pickable;
addresses written one way (省 市 区 详细)."""

from __future__ import annotations

import re

import pytest

from app.catalog.models import Product, Sku
from app.cloud.price_list import PER_PAGE, price_page
from app.extensions import db
from tests.support.cloud import levels, merchant, merchant_order, three_level_chain
from tests.support.orders import sign_in


def product_with_specs(title, prices_stock):
    """A product whose SKUs are 颜色 values with (price_fen, stock)."""
    row = Product(title=title, spec_names=["颜色"])
    for i, (price, stock) in enumerate(prices_stock):
        row.skus.append(Sku(specs={"颜色": f"色{i}"}, price_fen=price, stock=stock))
    db.session.add(row)
    db.session.commit()
    return row


def test_price_list_folds_skus_under_one_row_per_product(make, client, login_as):
    levels()
    _top, middle, _low = three_level_chain(make)  # L2 = 70% of retail
    cup = product_with_specs("三色杯", [(10000, 5), (20000, 0), (10000, 3)])
    make.product("单品水壶", price_fen=5000, stock=9)
    sign_in(client, login_as, middle.distributor.user)
    html = client.get("/merchant/prices").get_data(as_text=True)
    assert html.count('<details class="m-prod"') == 2
    block = html.split(f'data-product="{cup.id}"')[1].split("</details>")[0]
    # summary: my lowest price ("起") beside the lowest retail; 3 SKUs inside
    assert "3 个规格 · 库存 8" in block
    assert re.search(r"data-price>¥70\.00<small>起</small>", block)
    assert block.count("data-sku=") == 3
    assert "已售罄" in block and "每件赚 ¥60.00" in block and "¥200.00" in block
    assert "¥35.00" in html  # the single product at L2


@pytest.mark.postgresql  # search SQL
def test_price_list_search_and_pages(make, client, login_as):
    levels()
    _top, middle, _low = three_level_chain(make)
    for i in range(PER_PAGE + 3):
        make.product(f"茶叶{i:02d}", price_fen=1000 + i, stock=1)
    make.product("咖啡豆", price_fen=3000, stock=1)
    sign_in(client, login_as, middle.distributor.user)
    first = client.get("/merchant/prices").get_data(as_text=True)
    assert first.count('<details class="m-prod"') == PER_PAGE and "下一页" in first
    second = client.get("/merchant/prices?page=2").get_data(as_text=True)
    assert second.count('<details class="m-prod"') == 4 and "没有更多了" in second
    found = client.get("/merchant/prices?q=咖啡").get_data(as_text=True)
    assert found.count('<details class="m-prod"') == 1 and "咖啡豆" in found
    none = client.get("/merchant/prices?q=%25").get_data(as_text=True)
    assert "没有找到“%”" in none
    far = client.get("/merchant/prices?page=99999999999")
    assert far.status_code == 200
    assert client.get("/merchant/prices?q=" + "长" * 500).status_code == 200


def test_price_page_uses_the_order_price_rule(make, app_ctx):
    levels()
    cup = product_with_specs("杯", [(10000, 5), (9999, 1)])
    page = price_page(3)
    row = next(r for r in page.rows if r.product.id == cup.id)
    # L3 = 80% of retail, rounded down to the fen (pricing.discounted)
    assert [(s.retail_fen, s.price_fen) for s in row.skus] == [(10000, 8000), (9999, 7999)]


def test_order_page_marks_sold_out_skus_and_has_three_steps(make, client, login_as):
    levels()
    _top, middle, _low = three_level_chain(make)
    cup = product_with_specs("双色杯", [(10000, 0), (10000, 4)])
    gone = make.product("售罄单品", price_fen=5000, stock=0)
    sign_in(client, login_as, middle.distributor.user)
    html = client.get("/merchant/orders/new").get_data(as_text=True)
    for step in ("1 选商品", "2 收货地址", "3 确认下单"):
        assert step in html
    sold_out, in_stock = cup.skus
    row = re.search(rf'<li class="m-row out" data-sku="{sold_out.id}".*?</li>', html, re.S).group(0)
    assert "已售罄" in row and "data-pick" not in row
    row = re.search(rf'<li class="m-row" data-sku="{in_stock.id}".*?</li>', html, re.S).group(0)
    assert "data-pick" in row and 'data-price="7000"' in row
    single = html.split(f'data-product="{gone.id}"')[1].split("</div>\n    </div>")[0]
    assert "已售罄" in single and "data-pick" not in single
    # quantities are on the chosen items only: no quantity box before anything is picked
    assert "data-qty" not in html


def test_own_orders_show_the_address_one_way(make, client, login_as):
    levels()
    low = merchant(make, 1, nickname="总代")
    sku_id = make.product("茶杯", price_fen=10000, stock=5).skus[0].id
    merchant_order(low, sku_id)
    sign_in(client, login_as, low.distributor.user)
    html = client.get("/merchant/orders").get_data(as_text=True)
    assert "广东省 深圳市 南山区 科技园2号" in html
