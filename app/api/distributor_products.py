"""分享赚 and the 推广商品库 in the JSON API (``/api/v1/distributor/...``).

- ``GET /distributor/share-earnings?product_ids=1,2,3``: the figures the shop pages show
  next to prices. The pages are cached whole for everyone, so their JS asks this
  uncached endpoint; anyone who is not an active distributor (anonymous visitors
  included) gets ``distributor: false`` and no figures, never a commission.
- ``GET /distributor/products?sort=&q=&page=``: the 推广商品库, with share links.
- ``GET /distributor/products/{product_id}/estimate``: one product, SKU by SKU.

Every figure comes from ``app/earnings/share_earnings.py``, which runs the commission
job's own calculator; the signed-in user is the only distributor ever read.
"""

from __future__ import annotations

from typing import Literal

from flask import Response as FlaskResponse
from flask import current_app, jsonify, session
from flask_login import current_user
from pydantic import BaseModel, Field
from spectree import Response

from app.accounts.guards import customer_id, customer_required
from app.api import share_cache
from app.api.blueprints import bp
from app.api.present import media_url
from app.api.schemas import MAX_ID, MAX_PER_PAGE, ErrorResponse, PageQuery, Query, QueryText
from app.api.spec import COOKIE, spec
from app.core.errors import ApiError
from app.distribution.centre import product_share_url
from app.distribution.rules import format_bp
from app.earnings import share_earnings
from app.earnings.share_earnings import (
    MAX_IDS,
    SELF_PURCHASE_NOTE,
    SORTS,
    ShareEstimate,
    Sharer,
)

TAGS = ["distributor"]
SECURITY = {COOKIE: []}
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_403": ErrorResponse, "HTTP_404": ErrorResponse}

NO_STORE = {"Cache-Control": "private, no-store"}

Sort = Literal["commission", "rate", "newest", "sales"]


bp.record_once(lambda _state: share_cache.install_listeners())

# --- models -------------------------------------------------------------------------------


class EarningsQuery(Query):
    product_ids: str = Field(
        max_length=MAX_IDS * 11,
        pattern=r"^\d{1,10}(,\d{1,10})*$",
        description=f"商品 id，逗号分隔，最多 {MAX_IDS} 个",
    )


class SkuFenOut(BaseModel):
    sku_id: int
    commission_fen: int = Field(description="该规格一件的分享赚")


class EarningOut(BaseModel):
    product_id: int
    min_fen: int = Field(description="各规格中最低的分享赚（一件，按规格售价）")
    max_fen: int = Field(description="各规格中最高的分享赚")
    rate_bp: int = Field(description="最高佣金比例（基点，佣金/售价，向下取整）")
    label: str = Field(description="展示文字：¥3.90 或 ¥1.20–¥3.90；无佣金时为空")
    skus: list[SkuFenOut] = Field(description="逐个规格的分享赚（选定规格时展示）")


class EarningsOut(BaseModel):
    distributor: bool = Field(description="是否为可查看分享赚的分销员；否则 items 为空")
    self_purchase: bool = Field(description="自购返佣是否开启")
    self_purchase_note: str
    ref: str | None = Field(description="分销员的推广码（分享链接 ?ref=）；非分销员为 null")
    base_url: str = Field(description="分享链接的站点地址（PUBLIC_BASE_URL）")
    items: list[EarningOut]


class LibraryQuery(PageQuery):
    sort: Sort = Field(
        "commission", description="commission 佣金 / rate 比例 / newest 最新 / sales 销量"
    )
    q: QueryText | None = Field(None, max_length=50, description="搜索标题或副标题")


class LibraryItemOut(BaseModel):
    id: int
    title: str
    subtitle: str
    cover_url: str | None
    min_price_fen: int
    max_price_fen: int
    commission_min_fen: int = Field(description="预计佣金（最低规格）")
    commission_max_fen: int = Field(description="预计佣金（最高规格）")
    commission_label: str
    rate_bp: int
    rate_label: str = Field(description="如 15%")
    sold: int = Field(description="已售件数（已付款，扣除退款）")
    stock: int
    share_url: str = Field(description="带 ?ref= 的商品推广链接")


class LibraryMeta(BaseModel):
    page: int
    per_page: int
    has_next: bool
    total: int
    sort: Sort
    q: str


class LibraryOut(BaseModel):
    self_purchase: bool
    self_purchase_note: str
    items: list[LibraryItemOut]
    meta: LibraryMeta


class SkuEarningOut(BaseModel):
    sku_id: int
    spec_text: str
    price_fen: int
    commission_fen: int
    rate_bp: int


class EstimateOut(BaseModel):
    product_id: int
    title: str
    min_fen: int
    max_fen: int
    rate_bp: int
    label: str
    self_purchase: bool
    self_purchase_note: str
    share_url: str
    skus: list[SkuEarningOut]


# --- helpers ------------------------------------------------------------------------------


def _no_store(payload: BaseModel):
    response = jsonify(payload.model_dump())
    response.headers.update(NO_STORE)
    return response


def _note(sharer: Sharer) -> str:
    return SELF_PURCHASE_NOTE if sharer.self_purchase else ""


def _sharer() -> Sharer:
    sharer = share_earnings.sharer_for_user(customer_id())
    if sharer is None:
        raise ApiError(*share_earnings.why_not_sharer(customer_id()))
    return sharer


def _earning(e: ShareEstimate) -> EarningOut:
    return EarningOut(
        product_id=e.product_id,
        min_fen=e.min_fen,
        max_fen=e.max_fen,
        rate_bp=e.rate_bp,
        label=e.label,
        skus=[SkuFenOut(sku_id=s.sku_id, commission_fen=s.commission_fen) for s in e.skus],
    )


def _share_url(sharer: Sharer, product_id: int) -> str:
    return product_share_url(
        current_app.config["PUBLIC_BASE_URL"], sharer.distributor.code, product_id
    )


# --- endpoints ----------------------------------------------------------------------------


@bp.get("/distributor/share-earnings")
@spec.validate(
    resp=Response(HTTP_200=EarningsOut, HTTP_422=ErrorResponse), tags=TAGS, security=SECURITY
)
def distributor_share_earnings(query: EarningsQuery):
    """分享赚 of up to 60 products for the signed-in active distributor. Anyone else,
    anonymous visitors included, gets ``distributor: false`` and no items (200).

    Asked once per catalog page view, so answers are kept per process until a catalog or
    commission-relevant row changes (``share_cache``), keyed by the signed-in user id.
    """
    ids = [int(raw) for raw in query.product_ids.split(",")]
    if len(ids) > MAX_IDS or any(not 0 < i <= MAX_ID for i in ids):
        raise ApiError(422, "invalid_product_ids", f"商品 id 需为正整数，最多 {MAX_IDS} 个")
    signed = session.get("_user_id")
    if isinstance(signed, str) and signed.startswith("user:"):
        body = share_cache.cached_answer((signed, tuple(ids)), lambda: _earnings(ids, signed))
    else:
        body = _earnings(ids, None)[0]
    return FlaskResponse(body, mimetype="application/json", headers=NO_STORE)


def _earnings(ids: list[int], expected_user: str | None) -> tuple[bytes, bool]:
    """The share-earnings answer for the signed-in user, as JSON, and whether that user
    is ``expected_user`` (the cache key) so the answer may be kept."""
    person = current_user
    customer = person.is_authenticated and not getattr(person, "is_staff", False)
    sharer = share_earnings.sharer_for_user(person.id) if customer else None
    if sharer is None:
        payload = EarningsOut(
            distributor=False,
            self_purchase=False,
            self_purchase_note="",
            ref=None,
            base_url=current_app.config["PUBLIC_BASE_URL"],
            items=[],
        )
    else:
        found = share_earnings.estimates(sharer.distributor.id, ids)
        payload = EarningsOut(
            distributor=True,
            self_purchase=sharer.self_purchase,
            self_purchase_note=_note(sharer),
            ref=sharer.distributor.code,
            base_url=current_app.config["PUBLIC_BASE_URL"],
            items=[_earning(found[i]) for i in dict.fromkeys(ids) if i in found],
        )
    body = current_app.json.dumps(payload.model_dump()).encode()
    who = person.get_id() if person.is_authenticated else None
    return body, who == expected_user


@bp.get("/distributor/products")
@customer_required
@spec.validate(resp=Response(HTTP_200=LibraryOut, **ERRORS), tags=TAGS, security=SECURITY)
def distributor_products(query: LibraryQuery):
    """推广商品库: every product on sale with its 预计佣金, sorted and searchable. 404
    ``not_distributor``; 403 ``not_active``, ``distribution_paused`` or
    ``price_difference_seller`` (their sales earn 级差, not commission)."""
    sharer = _sharer()
    per_page = min(query.per_page, MAX_PER_PAGE)
    result = share_earnings.library(
        sharer.distributor.id, sort=query.sort, q=query.q or "", page=query.page, per_page=per_page
    )
    items = []
    for item in result.items:
        p, e = item.product, item.estimate
        prices = [s.price_fen for s in p.skus]
        items.append(
            LibraryItemOut(
                id=p.id,
                title=p.title,
                subtitle=p.subtitle,
                cover_url=media_url(p.cover.filename) if p.cover else None,
                min_price_fen=min(prices, default=0),
                max_price_fen=max(prices, default=0),
                commission_min_fen=e.min_fen,
                commission_max_fen=e.max_fen,
                commission_label=e.label,
                rate_bp=e.rate_bp,
                rate_label=format_bp(e.rate_bp),
                sold=item.sold,
                stock=p.total_stock,
                share_url=_share_url(sharer, p.id),
            )
        )
    return _no_store(
        LibraryOut(
            self_purchase=sharer.self_purchase,
            self_purchase_note=_note(sharer),
            items=items,
            meta=LibraryMeta(
                page=result.page,
                per_page=per_page,
                has_next=result.has_next,
                total=result.total,
                sort=query.sort if query.sort in SORTS else "commission",
                q=share_earnings.clean_query(query.q),
            ),
        )
    )


@bp.get("/distributor/products/<int:product_id>/estimate")
@customer_required
@spec.validate(resp=Response(HTTP_200=EstimateOut, **ERRORS), tags=TAGS, security=SECURITY)
def distributor_product_estimate(product_id: int):
    """分享赚 of one product on sale, SKU by SKU (one unit at the SKU's price, level 1,
    the distributor's grade); 404 when not on sale."""
    sharer = _sharer()
    found = (
        share_earnings.estimates(sharer.distributor.id, [product_id])
        if product_id <= MAX_ID
        else {}
    )
    if product_id not in found:
        raise ApiError(404, "not_found", "商品不存在或已下架")
    e = found[product_id]
    product = share_earnings.product_with_skus(product_id)
    spec_text = {s.id: s.spec_text for s in product.skus}
    return _no_store(
        EstimateOut(
            product_id=product_id,
            title=product.title,
            min_fen=e.min_fen,
            max_fen=e.max_fen,
            rate_bp=e.rate_bp,
            label=e.label,
            self_purchase=sharer.self_purchase,
            self_purchase_note=_note(sharer),
            share_url=_share_url(sharer, product_id),
            skus=[
                SkuEarningOut(
                    sku_id=s.sku_id,
                    spec_text=spec_text.get(s.sku_id, ""),
                    price_fen=s.price_fen,
                    commission_fen=s.commission_fen,
                    rate_bp=s.rate_bp,
                )
                for s in e.skus
            ],
        )
    )
