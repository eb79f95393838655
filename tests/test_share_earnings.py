"""分享赚 (app/earnings/share_earnings.py): the estimate is what the commission job writes.

Each estimate is checked against the ledger the real commission job writes for a real
paid order of one unit per SKU sold by the same distributor: grade rate, product and SKU
rules (percent, fixed, none), the payout cap trimming an old rule, self-purchase. Then
who sees a figure at all, the few queries a list costs, and the 推广商品库's sorts,
search and pages.
"""

from __future__ import annotations

import pytest

from app.cloud.merchants import merchant_for_distributor
from app.distribution.distributors import create_distributor
from app.earnings.share_earnings import (
    MAX_IDS,
    SORTS,
    estimates,
    library,
    sharer_for_user,
    units_sold,
    why_not_sharer,
)
from app.extensions import db
from tests.support.cloud import levels, merchant, precedence
from tests.support.commissions import configure, customer_of, distributor, finish, pay, place
from tests.support.share import buy_each_sku, counted_queries, graded, level1_written, rule

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock


def priced(make, title: str, prices: list[int]):
    """A product with one SKU per price (committed)."""
    product = make.product(title=title, specs={"规格": [f"款{i}" for i in range(len(prices))]})
    for sku, price in zip(product.skus, prices, strict=True):
        sku.price_fen = price
    db.session.commit()
    return product


def test_estimate_matches_what_the_commission_job_writes(make):
    configure(levels=2, level1_bp=1000, level2_bp=500, payout_cap_bp=3000)
    seller = distributor(make, nickname="分享者")
    graded(seller, level1_bp=1500)  # the grade beats the shop default
    by_grade = priced(make, "按等级", [3990, 2599])
    by_product = priced(make, "商品规则", [1000, 999])
    rule(by_product, "percent", 2000)
    by_sku = priced(make, "SKU 规则", [5000, 5000])
    rule(by_sku, "percent", 800)
    rule(by_sku, "fixed", 350, sku=by_sku.skus[1])
    excluded = priced(make, "不参与", [8800])
    rule(excluded, "none", 0)
    too_high = priced(make, "旧规则超上限", [10000])
    rule(too_high, "percent", 4500)  # saved before the cap: the job trims it to 30%
    products = [by_grade, by_product, by_sku, excluded, too_high]

    found = estimates(seller.id, [p.id for p in products])

    buyer = customer_of(make, seller, "买家")
    for product in products:
        written = level1_written(buy_each_sku(buyer, product))
        estimated = {s.sku_id: s.commission_fen for s in found[product.id].skus}
        assert {k: v for k, v in estimated.items() if v} == written, product.title
    assert [s.commission_fen for s in found[by_grade.id].skus] == [598, 389]
    assert found[by_grade.id].label == "¥3.89–¥5.98"
    assert found[by_product.id].label == "¥1.99–¥2.00"
    assert [s.commission_fen for s in found[by_sku.id].skus] == [400, 350]
    assert found[excluded.id].max_fen == 0 and found[excluded.id].label == ""
    assert found[too_high.id].label == "¥30.00"
    assert found[too_high.id].rate_bp == 3000


def test_self_purchase_earns_the_same_figure(make):
    configure(levels=2, level1_bp=1000, self_purchase=True)
    seller = distributor(make, nickname="自购者")
    product = priced(make, "自购", [4990])
    (estimate,) = estimates(seller.id, [product.id]).values()
    assert sharer_for_user(seller.user_id).self_purchase is True
    written = level1_written(buy_each_sku(seller.user, product))
    assert written == {product.skus[0].id: estimate.max_fen} == {product.skus[0].id: 499}


def test_only_active_distributors_of_an_enabled_shop_see_a_figure(make):
    configure(levels=2, self_purchase=False)
    seller = distributor(make)
    assert sharer_for_user(seller.user_id).self_purchase is False
    assert sharer_for_user(make.user().id) is None  # a customer
    pending = create_distributor(make.user().id, None, status="pending")
    db.session.commit()
    assert sharer_for_user(pending.user_id) is None
    configure(enabled=False)
    assert sharer_for_user(seller.user_id) is None


def test_no_figure_when_the_sellers_sales_earn_price_differences(make):
    configure(levels=2)
    levels()
    precedence("price_difference")
    m = merchant(make, 1)
    user_id = m.distributor.user_id
    assert merchant_for_distributor(m.distributor_id) is not None
    assert sharer_for_user(user_id) is None
    precedence("both")
    assert sharer_for_user(user_id) is not None


def test_a_list_costs_a_few_queries_whatever_its_length(make):
    configure(levels=2)
    seller = distributor(make)
    products = [priced(make, f"商品{i}", [1000 + i, 2000 + i]) for i in range(20)]
    rule(products[3], "percent", 2000)
    ids = [p.id for p in products]
    db.session.expire_all()
    with counted_queries() as seen:
        found = estimates(seller.id, ids)
    assert len(found) == 20
    assert len(seen) <= 6, seen  # 5, and the running timed discounts (discounts/pricing.py)
    assert found[products[3].id].max_fen == 2000 * 2003 // 10000


def test_off_shelf_products_have_no_estimate(make):
    configure(levels=2)
    seller = distributor(make)
    gone = make.product(on_shelf=False)
    assert estimates(seller.id, [gone.id]) == {}
    assert MAX_IDS >= 20


def test_library_sorts_searches_and_pages(make):
    configure(levels=2, level1_bp=1000)
    seller = distributor(make)
    cheap_high_rate = priced(make, "高比例小物", [1000])
    rule(cheap_high_rate, "percent", 2500)  # ¥2.50, 25%
    priced(make, "高佣金大件", [50000])  # ¥50.00, 10%
    middle = priced(make, "中间款 茶杯", [9900])  # ¥9.90, 10%
    newest = priced(make, "最新款 茶壶", [2000])  # ¥2.00
    buyer = customer_of(make, seller)
    finish(pay(place(make, buyer, product=middle, quantity=3)))
    pay(place(make, buyer, product=newest, quantity=1))

    def titles(sort, **kw):
        return [i.product.title for i in library(seller.id, sort=sort, **kw).items]

    assert titles("commission") == ["高佣金大件", "中间款 茶杯", "高比例小物", "最新款 茶壶"]
    assert titles("rate") == ["高比例小物", "最新款 茶壶", "中间款 茶杯", "高佣金大件"]
    assert titles("newest") == ["最新款 茶壶", "中间款 茶杯", "高佣金大件", "高比例小物"]
    assert titles("sales") == ["中间款 茶杯", "最新款 茶壶", "高佣金大件", "高比例小物"]
    assert titles("bogus") == titles("commission")
    assert titles("commission", q="茶") == ["中间款 茶杯", "最新款 茶壶"]
    assert titles("commission", q="100%_") == []
    first = library(seller.id, sort="commission", per_page=3)
    assert first.has_next and first.total == 4 and len(first.items) == 3
    second = library(seller.id, sort="commission", page=2, per_page=3)
    assert [i.product.title for i in second.items] == ["最新款 茶壶"] and not second.has_next
    top = first.items[0]
    assert top.estimate.label == "¥50.00" and top.sold == 0
    assert units_sold([middle.id, newest.id]) == {middle.id: 3, newest.id: 1}
    assert set(SORTS) == {"commission", "rate", "newest", "sales"}


@pytest.mark.parametrize("sort", list(SORTS))
def test_library_is_empty_without_products(make, sort):
    configure(levels=2)
    seller = distributor(make)
    result = library(seller.id, sort=sort)
    assert result.items == [] and result.total == 0 and not result.has_next


def test_why_no_figure_is_said_in_words(make):
    configure(levels=2)
    assert why_not_sharer(make.user().id)[1] == "not_distributor"
    pending = create_distributor(make.user().id, None, status="pending")
    db.session.commit()
    assert why_not_sharer(pending.user_id)[:2] == (403, "not_active")
    seller = distributor(make)
    configure(enabled=False)
    assert why_not_sharer(seller.user_id)[1] == "distribution_paused"
    configure(enabled=True)
    levels()
    precedence("price_difference")
    m = merchant(make, 1)
    assert why_not_sharer(m.distributor.user_id)[1] == "price_difference_seller"
