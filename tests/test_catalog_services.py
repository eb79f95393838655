"""Catalog services: validation and stock changes on the real database."""

import pytest

from app.catalog.models import Sku
from app.catalog.services import (
    CatalogError,
    ProductInput,
    SkuInput,
    adjust_stock,
    create_product,
    save_category,
    set_stock,
    update_product,
)
from app.extensions import db

pytestmark = pytest.mark.postgresql  # stock changes


def _shirt(**overrides) -> ProductInput:
    data = ProductInput(
        title="纯棉T恤",
        spec_names=["颜色", "尺码"],
        skus=[
            SkuInput(specs={"颜色": "白", "尺码": "M"}, price_fen=5900, stock=3, code="TS-W-M"),
            SkuInput(specs={"颜色": "白", "尺码": "L"}, price_fen=6900, stock=0, code="TS-W-L"),
        ],
    )
    for key, value in overrides.items():
        setattr(data, key, value)
    return data


def test_create_product_with_skus(app_ctx):
    category = save_category("女装")
    product = create_product(_shirt(category_id=category.id))
    db.session.commit()
    assert [s.spec_text for s in product.skus] == ["白 / M", "白 / L"]
    assert product.min_price_fen == 5900
    assert product.total_stock == 3


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": " "}, "title"),
        ({"skus": []}, "skus"),
        ({"spec_names": ["颜色", "颜色"]}, "spec_names"),
        ({"skus": [SkuInput(specs={"颜色": "白"}, price_fen=1)]}, "skus"),
        ({"skus": [SkuInput(specs={"颜色": "白", "尺码": "M"}, price_fen=-1)]}, "skus"),
        ({"skus": [SkuInput(specs={"颜色": "白", "尺码": "M"}, price_fen=1, stock=-5)]}, "skus"),
        ({"category_id": 999999}, "category_id"),
    ],
)
def test_bad_product_input_is_refused_with_the_field(app_ctx, overrides, field):
    with pytest.raises(CatalogError) as err:
        create_product(_shirt(**overrides))
    assert err.value.field == field
    db.session.rollback()


def test_duplicate_sku_code_across_products_is_refused(app_ctx):
    create_product(_shirt())
    db.session.commit()
    with pytest.raises(CatalogError, match="TS-W-M"):
        create_product(_shirt(title="另一件"))
    db.session.rollback()


def test_update_keeps_sku_ids_and_removes_missing(app_ctx):
    product = create_product(_shirt())
    db.session.commit()
    first, second = product.skus
    data = _shirt()
    data.skus = [SkuInput(id=first.id, specs={"颜色": "白", "尺码": "M"}, price_fen=4900, stock=9)]
    update_product(product, data)
    db.session.commit()
    assert [s.id for s in product.skus] == [first.id]
    assert product.skus[0].price_fen == 4900
    assert db.session.get(Sku, second.id) is None


def test_stock_never_goes_negative(app_ctx):
    product = create_product(_shirt())
    db.session.commit()
    sku = product.skus[0]
    adjust_stock(sku, -3)
    assert sku.stock == 0
    with pytest.raises(CatalogError):
        adjust_stock(sku, -1)
    set_stock(sku, 12)
    db.session.commit()
    assert sku.stock == 12
    with pytest.raises(CatalogError):
        set_stock(sku, -1)
