"""分享赚 on the shop pages and the 推广商品库 page (server side; the browser test is
tests/test_share_browser.py).

The catalog pages stay one cached page for everyone: they carry empty placeholders and no
commission, whoever asks. The 推广商品库 lists every product on sale with the
distributor's figures, sorts, searches, pages and shows empty states; it belongs to
active distributors only.
"""

from __future__ import annotations

from app.extensions import db
from tests.support.commissions import configure, distributor
from tests.support.distribution import signed_in
from tests.support.share import rule


def test_catalog_pages_are_the_same_for_customers_and_distributors(app, client, make, login_as):
    configure(levels=2, level1_bp=1000)
    product = make.product(title="青瓷茶杯", price_fen=3900)
    seller = distributor(make)
    as_seller = signed_in(app, login_as, seller.user)
    for path in (f"/product/{product.id}", "/", "/search?q=茶杯"):
        anonymous = client.get(path).get_data(as_text=True)
        mine = as_seller.get(path).get_data(as_text=True)
        assert "分享赚 ¥" not in anonymous and "分享赚 ¥" not in mine, path
        assert "data-share-earn" in anonymous, path
        if path.startswith("/product"):
            assert anonymous == mine  # one cached page for everyone
            assert f'data-share-earn-product="{product.id}"' in anonymous
        else:
            assert f'data-share-earn="{product.id}"' in anonymous
        assert "share-earn.js" in anonymous


def test_the_library_lists_products_with_their_commission(app, make, login_as):
    configure(levels=2, level1_bp=1000, self_purchase=True)
    cup = make.product(title="青瓷茶杯", price_fen=3900)
    pot = make.product(title="紫砂壶", price_fen=50000)
    rule(pot, "none", 0)
    make.product(title="下架商品", on_shelf=False)
    seller = distributor(make)
    client = signed_in(app, login_as, seller.user)
    page = client.get("/distributor/products")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "青瓷茶杯" in html and "紫砂壶" in html and "下架商品" not in html
    assert "预计佣金 <b>¥3.90</b>" in html
    assert "该商品不参与分佣" in html
    assert "自购同样返佣" in html
    assert f"/product/{cup.id}?ref={seller.code}" in html
    assert html.index("青瓷茶杯") < html.index("紫砂壶")  # by commission: ¥3.90 before ¥0
    by_newest = client.get("/distributor/products?sort=newest").get_data(as_text=True)
    assert by_newest.index("紫砂壶") < by_newest.index("青瓷茶杯")
    found = client.get("/distributor/products?q=茶杯").get_data(as_text=True)
    assert "青瓷茶杯" in found and "紫砂壶" not in found
    for odd in ("q=%00", "q=" + "茶" * 300, "page=99999999999", "sort=%00", "q=%25_%5C"):
        assert client.get(f"/distributor/products?{odd}").status_code == 200, odd
    missing = client.get("/distributor/products?q=没有这个&sort=bogus&page=abc")
    assert missing.status_code == 200 and "没有找到" in missing.get_data(as_text=True)


def test_the_library_is_for_active_distributors(app, client, make, login_as):
    configure(levels=2)
    assert client.get("/distributor/products").status_code == 302  # sign in first
    customer = signed_in(app, login_as, make.user())
    response = customer.get("/distributor/products")
    assert response.status_code == 302 and response.headers["Location"].endswith("/distributor")
    seller = distributor(make)
    empty = signed_in(app, login_as, seller.user).get("/distributor/products")
    assert "店铺暂无在售商品" in empty.get_data(as_text=True)
    configure(enabled=False)
    make.product(title="青瓷茶杯")
    paused = signed_in(app, login_as, seller.user).get("/distributor/products")
    text = paused.get_data(as_text=True)
    assert "本店分销已暂停" in text and "青瓷茶杯" in text and "预计佣金" not in text


def test_the_centre_links_to_the_library_instead_of_a_link_format(app, make, login_as):
    configure(levels=2)
    make.product(title="青瓷茶杯")
    seller = distributor(make)
    html = signed_in(app, login_as, seller.user).get("/distributor").get_data(as_text=True)
    assert "商品链接格式" not in html and "商品编号" not in html
    assert 'href="/distributor/products"' in html
    db.session.rollback()
