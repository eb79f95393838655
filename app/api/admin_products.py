"""Merchant Open API for products, SKUs, stock and their commission rules (bearer token;
see app.api.blueprints).

Views validate (spectree), call app.catalog.services, and commit once at the end. A
CatalogError becomes 422 with ``invalid_<field>`` and the service's Chinese message.
Commission rules go through the same services as the admin product page
(app.distribution.admin_settings), so both doors refuse the same rules with the same
code and message, and both are audited as ``commission_rule.save``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import url_for
from spectree import Response
from sqlalchemy.exc import IntegrityError

from app.api import present, queries
from app.api.blueprints import admin_bp, token_has_owner_rights
from app.api.schemas import (
    AdminProduct,
    AdminProductPage,
    AdminProductQuery,
    AdminSkuOut,
    CommissionRuleIn,
    CommissionRuleOut,
    ErrorResponse,
    ProductCreate,
    ProductPatch,
    SkuUpdate,
    StockAdjust,
    StockSet,
)
from app.api.spec import BEARER, spec
from app.catalog.audit_targets import NEW_PRODUCT, PRODUCT_WITH_SKUS
from app.catalog.models import Product, Sku
from app.catalog.services import (
    MAX_STOCK,
    CatalogError,
    ProductInput,
    SkuInput,
    adjust_stock,
    create_product,
    set_stock,
    update_product,
)
from app.core.audit import audited, row
from app.core.errors import ApiError
from app.distribution import admin_settings
from app.distribution.audit_targets import RULES_OF_PRODUCT
from app.distribution.distributors import DistributionError
from app.extensions import db

PRODUCT_ID = "<int:product_id>"  # ids past MAX_ID are simply not found (queries.py)
SKU_ID = "<int:sku_id>"
TAGS = ["admin-products"]
SECURITY = {BEARER: []}
# What every endpoint here may answer besides its success (documented in openapi.json).
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_404": ErrorResponse}
BODY_ERRORS = {**ERRORS, "HTTP_400": ErrorResponse, "HTTP_415": ErrorResponse}


@contextmanager
def catalog_errors() -> Iterator[None]:
    """Run a catalog change; refused input or a lost race rolls back and answers 4xx."""
    try:
        yield
    except CatalogError as exc:
        db.session.rollback()
        code = f"invalid_{exc.field}" if exc.field else "validation_error"
        detail = {"field": exc.field or "body", "code": "invalid", "message": exc.message}
        raise ApiError(422, code, exc.message, [detail]) from None
    except IntegrityError:
        # The services check SKU codes first; only a concurrent write can get here.
        db.session.rollback()
        raise ApiError(409, "conflict", "数据已被其他请求修改（如 SKU 编码重复），请重试") from None


@contextmanager
def rule_errors() -> Iterator[None]:
    """A rule the distribution services refuse (range, payout cap, SKU of another
    product) rolls back and answers their status, code and Chinese message."""
    try:
        yield
    except DistributionError as exc:
        db.session.rollback()
        field = getattr(exc, "field", None) or "body"
        detail = {"field": field, "code": exc.code, "message": exc.message}
        raise ApiError(exc.status, exc.code, exc.message, [detail]) from None


def _product_or_404(product_id: int) -> Product:
    found = queries.get_product(product_id, on_shelf_only=False)
    if found is None:
        raise ApiError(404, "not_found", "商品不存在")
    return found


def _sku_or_404(product_id: int, sku_id: int) -> Sku:
    found = queries.get_sku(product_id, sku_id)
    if found is None:
        raise ApiError(404, "not_found", "SKU 不存在")
    return found


@admin_bp.get("/products")
@spec.validate(resp=Response(HTTP_200=AdminProductPage, **ERRORS), tags=TAGS, security=SECURITY)
def list_products(query: AdminProductQuery):
    """All products, on or off the shelf, with SKUs; filter by category, text, shelf."""
    rows, total = queries.list_products(
        page=query.page,
        per_page=query.per_page,
        category_id=query.category_id,
        q=query.q,
        on_shelf=query.on_shelf,
    )
    rules = present.commission_rules([p.id for p in rows])
    return AdminProductPage(
        items=[present.admin_product(p, rules) for p in rows],
        meta=present.page_meta(query.page, query.per_page, total),
    )


@admin_bp.post("/products")
@audited("product.create", NEW_PRODUCT)
@spec.validate(resp=Response(HTTP_201=AdminProduct, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def create(json: ProductCreate):
    """Create a product with its SKUs; 201 with the product."""
    data = ProductInput(
        title=json.title,
        subtitle=json.subtitle,
        description=json.description,
        category_id=json.category_id,
        spec_names=list(json.spec_names),
        skus=[SkuInput(**sku.model_dump()) for sku in json.skus],
        on_shelf=json.on_shelf,
        featured=json.featured,
        purchase_limit=json.purchase_limit,
        sort=json.sort,
    )
    with catalog_errors():
        product = create_product(data)
        db.session.commit()
    location = url_for("api_admin.get_product", product_id=product.id)
    return present.admin_product(product), 201, {"Location": location}


@admin_bp.get(f"/products/{PRODUCT_ID}")
@spec.validate(resp=Response(HTTP_200=AdminProduct, **ERRORS), tags=TAGS, security=SECURITY)
def get_product(product_id: int):
    """One product, on or off the shelf, with SKU codes."""
    return present.admin_product(_product_or_404(product_id))


@admin_bp.patch(f"/products/{PRODUCT_ID}")
@audited("product.update", PRODUCT_WITH_SKUS)
@audited("commission_rule.save", RULES_OF_PRODUCT)
@spec.validate(
    resp=Response(HTTP_200=AdminProduct, HTTP_422=ErrorResponse, **BODY_ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def patch_product(product_id: int, json: ProductPatch):
    """Change only the fields given.

    ``skus``, when given, is the product's whole SKU list: a SKU with an ``id`` is kept
    (only its given fields change), one without is added, and the product's SKUs left out
    are removed. ``commission_rule`` sets the product's own rule (null removes it); the
    product and its rule change together or not at all.
    """
    product = _product_or_404(product_id)
    given = json.model_fields_set
    current = {sku.id: sku for sku in product.skus}
    skus = (
        [_merge_sku(item, current.get(item.id)) for item in json.skus]
        if "skus" in given
        else [_merge_sku(SkuUpdate(id=sku.id), sku) for sku in product.skus]
    )
    data = ProductInput(
        title=json.title if "title" in given else product.title,
        subtitle=json.subtitle if "subtitle" in given else product.subtitle,
        description=json.description if "description" in given else product.description,
        category_id=json.category_id if "category_id" in given else product.category_id,
        spec_names=list(json.spec_names if "spec_names" in given else product.spec_names),
        skus=skus,
        on_shelf=json.on_shelf if "on_shelf" in given else product.on_shelf,
        featured=json.featured if "featured" in given else product.featured,
        purchase_limit=(
            json.purchase_limit if "purchase_limit" in given else product.purchase_limit
        ),
        sort=json.sort if "sort" in given else product.sort,
    )
    with catalog_errors(), rule_errors():
        update_product(product, data)
        if "commission_rule" in given:
            _set_rule(product, None, json.commission_rule)
        db.session.commit()
    return present.admin_product(product)


def _set_rule(product: Product, sku_id: int | None, rule: CommissionRuleIn | None) -> None:
    """Save (or, for None, remove) the product's or a SKU's rule; the services flush."""
    owner = token_has_owner_rights()  # staff-scoped tokens may not go above the default
    if rule is None:
        admin_settings.delete_commission_rule(product, sku_id)
    else:
        admin_settings.save_commission_rule(
            product, sku_id, rule.mode, [rule.level1, rule.level2, rule.level3], owner=owner
        )


def _merge_sku(item: SkuUpdate, sku: Sku | None) -> SkuInput:
    """The SKU to save: the fields given, the rest from the existing SKU (or the defaults).

    An ``id`` that is not this product's passes through so update_product refuses it.
    """
    given = item.model_fields_set

    def pick(name: str, current: object, default: object) -> object:
        if name in given:
            return getattr(item, name)
        return current if sku is not None else default

    return SkuInput(
        id=item.id,
        specs=dict(pick("specs", sku and sku.specs, {}) or {}),
        price_fen=pick("price_fen", sku and sku.price_fen, 0),
        original_price_fen=pick("original_price_fen", sku and sku.original_price_fen, 0),
        stock=pick("stock", sku and sku.stock, 0),
        code=pick("code", sku and sku.code, None),
    )


@admin_bp.put(f"/products/{PRODUCT_ID}/skus/{SKU_ID}/stock")
@audited("sku.set_stock", row(Sku, "sku_id"))
@spec.validate(resp=Response(HTTP_200=AdminSkuOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def put_stock(product_id: int, sku_id: int, json: StockSet):
    """Set a SKU's stock to an absolute count (a stock-take)."""
    sku = _sku_or_404(product_id, sku_id)
    with catalog_errors():
        set_stock(sku, json.stock)
        db.session.commit()
    return present.admin_sku(sku)


@admin_bp.post(f"/products/{PRODUCT_ID}/skus/{SKU_ID}/stock/adjust")
@audited("sku.adjust_stock", row(Sku, "sku_id"))
@spec.validate(
    resp=Response(HTTP_200=AdminSkuOut, HTTP_409=ErrorResponse, **BODY_ERRORS),
    tags=TAGS,
    security=SECURITY,
)
def adjust(product_id: int, sku_id: int, json: StockAdjust):
    """Add to (or take from) a SKU's stock in one conditional update; never below zero (409)."""
    sku = _sku_or_404(product_id, sku_id)
    try:
        adjust_stock(sku, json.delta)
    except CatalogError:
        db.session.rollback()
        if json.delta < 0:
            raise ApiError(409, "insufficient_stock", "库存不足，无法减少这么多") from None
        raise ApiError(409, "stock_limit_exceeded", f"库存不能超过 {MAX_STOCK}") from None
    db.session.commit()
    return present.admin_sku(sku)


# --- commission rules of a product and of one SKU ---------------------------------------------

RULE_TAGS = ["admin-commission-rules"]
NO_RULE = "没有单独的佣金规则（按分销员等级或店铺默认比例计算）"


def _rule_target(product_id: int, sku_id: int | None = None) -> tuple[Product, int | None]:
    """The product (and, for a SKU route, the SKU's id) whose rule a request concerns."""
    if sku_id is None:
        return _product_or_404(product_id), None
    sku = _sku_or_404(product_id, sku_id)
    return _product_or_404(product_id), sku.id


def _rule_or_404(product: Product, sku_id: int | None) -> CommissionRuleOut:
    found = present.commission_rules([product.id])[product.id].get(sku_id)
    if found is None:
        what = "该商品" if sku_id is None else "该 SKU"
        raise ApiError(404, "commission_rule_not_found", what + NO_RULE)
    return present.commission_rule(found)


def _rule_get(product_id: int, sku_id: int | None) -> CommissionRuleOut:
    return _rule_or_404(*_rule_target(product_id, sku_id))


def _rule_put(product_id: int, sku_id: int | None, rule: CommissionRuleIn) -> CommissionRuleOut:
    product, sku_id = _rule_target(product_id, sku_id)
    with rule_errors():
        _set_rule(product, sku_id, rule)
        db.session.commit()
    return _rule_or_404(product, sku_id)


def _rule_delete(product_id: int, sku_id: int | None):
    product, sku_id = _rule_target(product_id, sku_id)
    _rule_or_404(product, sku_id)  # removing what is not there says so
    with rule_errors():
        _set_rule(product, sku_id, None)
        db.session.commit()
    return "", 204


RULE_READ = Response(HTTP_200=CommissionRuleOut, **ERRORS)
RULE_WRITE = Response(HTTP_200=CommissionRuleOut, HTTP_422=ErrorResponse, **BODY_ERRORS)
RULE_DELETE = Response("HTTP_204", **ERRORS)


@admin_bp.get(f"/products/{PRODUCT_ID}/commission-rule")
@spec.validate(resp=RULE_READ, tags=RULE_TAGS, security=SECURITY)
def get_product_rule(product_id: int):
    """The product's own commission rule; 404 ``commission_rule_not_found`` when it has none."""
    return _rule_get(product_id, None)


@admin_bp.put(f"/products/{PRODUCT_ID}/commission-rule")
@audited("commission_rule.save", RULES_OF_PRODUCT)
@spec.validate(resp=RULE_WRITE, tags=RULE_TAGS, security=SECURITY)
def put_product_rule(product_id: int, json: CommissionRuleIn):
    """Create or replace the product's commission rule (its SKUs' own rules still win).

    Refused rules answer 422 with the service's code (e.g. ``out_of_range``) and message.
    """
    return _rule_put(product_id, None, json)


@admin_bp.delete(f"/products/{PRODUCT_ID}/commission-rule")
@audited("commission_rule.save", RULES_OF_PRODUCT)
@spec.validate(resp=RULE_DELETE, tags=RULE_TAGS, security=SECURITY)
def delete_product_rule(product_id: int):
    """Remove the product's rule: grades and the shop default apply again. 204."""
    return _rule_delete(product_id, None)


@admin_bp.get(f"/products/{PRODUCT_ID}/skus/{SKU_ID}/commission-rule")
@spec.validate(resp=RULE_READ, tags=RULE_TAGS, security=SECURITY)
def get_sku_rule(product_id: int, sku_id: int):
    """The SKU's own commission rule; 404 ``commission_rule_not_found`` when it has none."""
    return _rule_get(product_id, sku_id)


@admin_bp.put(f"/products/{PRODUCT_ID}/skus/{SKU_ID}/commission-rule")
@audited("commission_rule.save", RULES_OF_PRODUCT)
@spec.validate(resp=RULE_WRITE, tags=RULE_TAGS, security=SECURITY)
def put_sku_rule(product_id: int, sku_id: int, json: CommissionRuleIn):
    """Create or replace one SKU's commission rule (it wins over the product's)."""
    return _rule_put(product_id, sku_id, json)


@admin_bp.delete(f"/products/{PRODUCT_ID}/skus/{SKU_ID}/commission-rule")
@audited("commission_rule.save", RULES_OF_PRODUCT)
@spec.validate(resp=RULE_DELETE, tags=RULE_TAGS, security=SECURITY)
def delete_sku_rule(product_id: int, sku_id: int):
    """Remove the SKU's rule: the product's rule (or grades, or the default) applies. 204."""
    return _rule_delete(product_id, sku_id)
