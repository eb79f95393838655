"""Customer side of the API (mini-program / H5): catalog reads, the signed-in user, the
OpenAPI document. Thin views: validate (spectree), query, present."""

from __future__ import annotations

from flask import jsonify
from flask_login import current_user
from spectree import Response

from app.api import present, queries
from app.api.blueprints import bp, document_token_scopes
from app.api.schemas import (
    CategoryList,
    ErrorResponse,
    Me,
    ProductDetail,
    ProductListQuery,
    ProductPage,
)
from app.api.spec import COOKIE, openapi_document, spec
from app.core.errors import ApiError
from app.distribution.distributors import distributor_for_user

PRODUCT_ID = "<int:product_id>"  # ids past MAX_ID are simply not found (queries.py)


@bp.get("/openapi.json")
@spec.validate(resp=Response("HTTP_200"), tags=["meta"])
def openapi():
    """The OpenAPI 3 document of this API (generated from the validating models)."""
    return jsonify(document_token_scopes(openapi_document()))


@bp.get("/categories")
@spec.validate(resp=Response(HTTP_200=CategoryList), tags=["catalog"])
def categories():
    """Every category, in the merchant's order."""
    return CategoryList(items=[present.category(c) for c in queries.list_categories()])


@bp.get("/products")
@spec.validate(resp=Response(HTTP_200=ProductPage), tags=["catalog"])
def products(query: ProductListQuery):
    """Products on the shelf, filtered by category or a search text, one page at a time."""
    rows, total = queries.list_products(
        page=query.page,
        per_page=query.per_page,
        category_id=query.category_id,
        q=query.q,
        on_shelf=True,
    )
    return ProductPage(
        items=[present.product_summary(p) for p in rows],
        meta=present.page_meta(query.page, query.per_page, total),
    )


@bp.get(f"/products/{PRODUCT_ID}")
@spec.validate(resp=Response(HTTP_200=ProductDetail, HTTP_404=ErrorResponse), tags=["catalog"])
def product(product_id: int):
    """One product on the shelf with its images and SKUs; off the shelf or unknown: 404."""
    found = queries.get_product(product_id, on_shelf_only=True)
    if found is None:
        raise ApiError(404, "not_found", "商品不存在或已下架")
    return present.product_detail(found)


@bp.get("/me")
@spec.validate(
    resp=Response(HTTP_200=Me, HTTP_401=ErrorResponse), tags=["account"], security={COOKIE: []}
)
def me():
    """The customer signed in through WeChat OAuth; 401 when nobody (or only staff) is."""
    person = current_user
    if not person.is_authenticated or getattr(person, "is_staff", False):
        raise ApiError(401, "unauthorized", "请先登录")
    return Me(
        id=person.id,
        openid=person.openid,
        nickname=person.nickname,
        avatar_url=person.avatar_url,
        is_distributor=is_active_distributor(person.id),
    )


def is_active_distributor(user_id: int) -> bool:
    """Whether the user is an active distributor (pending or disabled ones are not)."""
    distributor = distributor_for_user(user_id)
    return distributor is not None and distributor.status == "active"
