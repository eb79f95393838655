"""分享赚: what a distributor earns on a product they share, and the 推广商品库 behind it.

The figure is the commission job's own result for a made-up line: one unit of the SKU at
its price now (``discounts.pricing.unit_prices``: a running timed discount's price, and no
commission when the product's discounted sales earn none), sold by this distributor at
level 1. ``estimates`` hands such transient lines (never added to the session) and a
level-1 attribution to ``levels.commission_rows``, the very function the paid-order
pipeline calls, so the rule precedence (SKU rule, product rule, the distributor's grade,
the shop default), the rounding rule and the payout cap are the job's and no arithmetic
is written twice. Levels 2-3, region dividends and 级差 are not part of 分享赚: they are
not the sharer's money.

Who sees a figure (``sharer_for_user``): an active distributor of a shop with
distribution on, whose own sales earn commissions under the precedence plan
(``plan.plan_for_seller``; a distributor selling through an ordering merchant whose
shop puts 级差 first earns no commission, so no 分享赚 is shown). Everyone else gets
None and sees no commission anywhere.

Self-purchase: with 自购返佣 on, the distributor's own order earns level 1 at the same
rate, so the figure holds for their own purchase too (``Sharer.self_purchase``: the pages
say so); with it off their own order earns nothing.

Lists ask for many products at once: SKUs in one query, every rule in one more
(``levels.preload_product_rules`` fills the job's per-batch memo), the grade in one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from app.catalog.models import Product, Sku
from app.core.batch import batch_scope
from app.core.money import format_yuan
from app.discounts.pricing import unit_prices
from app.distribution.distributors import distributor_for_user, get_distribution_settings
from app.distribution.levels import commission_rows, preload_product_rules
from app.distribution.models import Distributor, OrderAttribution
from app.distribution.rules import BP_DENOMINATOR
from app.distribution.team import SALES_STATUSES
from app.earnings.plan import plan_for_seller
from app.extensions import db
from app.orders.models import Order, OrderLine

SORTS = {
    "commission": "佣金最高",
    "rate": "比例最高",
    "newest": "最新上架",
    "sales": "销量最高",
}
DEFAULT_SORT = "commission"
PER_PAGE = 20
MAX_QUERY_LENGTH = 50
# Sorting by commission needs every candidate's estimate; a shop's shelf is far smaller.
# Beyond this many matches the newest are taken (and the page says to search instead).
MAX_CANDIDATES = 2000
MAX_IDS = 60  # products one estimate request may ask about (a list page shows 20)
SELF_PURCHASE_NOTE = "自购同样返佣：自己下单也得这笔佣金"  # shown when 自购返佣 is on


@dataclass(frozen=True)
class Sharer:
    """A distributor who may see 分享赚, and whether their own purchases earn too."""

    distributor: Distributor
    self_purchase: bool


def sharer_for_user(user_id: int) -> Sharer | None:
    """The user's 分享赚 context, or None when they are to see no commission."""
    settings = get_distribution_settings()
    if not settings.enabled:
        return None
    distributor = distributor_for_user(user_id)
    if distributor is None or distributor.status != "active":
        return None
    if not plan_for_seller(distributor.id).commissions:
        return None  # their sales earn 级差, not commission (app/earnings/plan.py)
    return Sharer(distributor, settings.self_purchase)


def why_not_sharer(user_id: int) -> tuple[int, str, str]:
    """(HTTP status, code, message) saying why ``sharer_for_user`` gives None."""
    distributor = distributor_for_user(user_id)
    if distributor is None:
        return 404, "not_distributor", "你还不是分销员"
    if distributor.status != "active":
        return 403, "not_active", "你的分销员资格不是正常状态，暂不能查看推广佣金"
    if not get_distribution_settings().enabled:
        return 403, "distribution_paused", "本店分销已暂停，新订单暂不产生佣金"
    return 403, "price_difference_seller", "你的订单按订货商级差结算，不计分销佣金"


@dataclass(frozen=True)
class SkuEstimate:
    """One unit of one SKU at its price: the level-1 commission the job would write."""

    sku_id: int
    price_fen: int
    commission_fen: int

    @property
    def rate_bp(self) -> int:
        """The commission as a share of the price, rounded down (0 for a free SKU)."""
        if self.price_fen <= 0:
            return 0
        return self.commission_fen * BP_DENOMINATOR // self.price_fen


@dataclass(frozen=True)
class ShareEstimate:
    """分享赚 of one product across its SKUs."""

    product_id: int
    skus: tuple[SkuEstimate, ...]

    @property
    def min_fen(self) -> int:
        return min((s.commission_fen for s in self.skus), default=0)

    @property
    def max_fen(self) -> int:
        return max((s.commission_fen for s in self.skus), default=0)

    @property
    def rate_bp(self) -> int:
        """The best rate among the SKUs (what "sort by rate" ranks by)."""
        return max((s.rate_bp for s in self.skus), default=0)

    @property
    def label(self) -> str:
        """¥3.90, or ¥1.20–¥3.90 when the SKUs differ; "" when nothing is earned."""
        if self.max_fen <= 0:
            return ""
        if self.min_fen == self.max_fen:
            return format_yuan(self.max_fen)
        return f"{format_yuan(self.min_fen)}–{format_yuan(self.max_fen)}"


def estimates(distributor_id: int, product_ids: list[int]) -> dict[int, ShareEstimate]:
    """分享赚 of each product in ``product_ids`` for ``distributor_id`` (products off the
    shelf or without SKUs are left out). Three queries whatever the number of products;
    writes nothing."""
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    skus = db.session.execute(
        select(Sku.id, Sku.product_id, Sku.price_fen)
        .join(Product, Product.id == Sku.product_id)
        .where(Sku.product_id.in_(ids), Product.on_shelf.is_(True))
        .order_by(Sku.product_id, Sku.id)
    ).all()
    if not skus:
        return {}
    # Today's unit price (a running timed discount included): app/discounts/pricing.py.
    prices = unit_prices(skus)
    skus = [(sku_id, product_id, prices[sku_id].price_fen) for sku_id, product_id, _ in skus]
    # Transient rows, never added to the session: the job's input, made up for one unit.
    lines = [
        OrderLine(
            id=sku_id,
            product_id=product_id,
            sku_id=sku_id,
            unit_price_fen=price,
            quantity=1,
            amount_fen=price,
            refunded_quantity=0,
            refunded_fen=0,
            commission_exempt=prices[sku_id].commission_exempt,
        )
        for sku_id, product_id, price in skus
    ]
    seller = [OrderAttribution(level=1, distributor_id=distributor_id, self_purchase=False)]
    with batch_scope():
        preload_product_rules((product_id, sku_id) for sku_id, product_id, _price in skus)
        earned = {
            row.order_line_id: row.amount_fen
            for row in commission_rows(lines, seller)
            if row.kind == "level_1"
        }
    by_product: dict[int, list[SkuEstimate]] = {}
    for sku_id, product_id, price in skus:
        by_product.setdefault(product_id, []).append(
            SkuEstimate(sku_id, price, earned.get(sku_id, 0))
        )
    return {pid: ShareEstimate(pid, tuple(rows)) for pid, rows in by_product.items()}


# --- 推广商品库 --------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryItem:
    """One product of the 推广商品库 with its 分享赚 and units sold."""

    product: Product
    estimate: ShareEstimate
    sold: int


@dataclass(frozen=True)
class LibraryPage:
    """One page of the 推广商品库."""

    items: list[LibraryItem]
    page: int
    per_page: int
    has_next: bool
    total: int
    truncated: bool  # more than MAX_CANDIDATES matched: only the newest were ranked


def clean_query(raw: str | None) -> str:
    """Trim and shorten a search, without NUL (PostgreSQL text cannot hold it); the
    result may be empty."""
    return " ".join((raw or "").replace("\x00", "").split())[:MAX_QUERY_LENGTH]


def _candidates(q: str) -> list[tuple[int, datetime]]:
    """(id, created_at) of products on the shelf with a SKU, newest first."""
    query = (
        select(Product.id, Product.created_at)
        .where(
            Product.on_shelf.is_(True), select(Sku.id).where(Sku.product_id == Product.id).exists()
        )
        .order_by(Product.created_at.desc(), Product.id.desc())
        .limit(MAX_CANDIDATES + 1)
    )
    if q:
        escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                Product.title.ilike(pattern, escape="\\"),
                Product.subtitle.ilike(pattern, escape="\\"),
            )
        )
    return [(pid, created) for pid, created in db.session.execute(query)]


def units_sold(product_ids: list[int]) -> dict[int, int]:
    """Units sold per product: paid, shipped and completed orders, refunded units off."""
    if not product_ids:
        return {}
    rows = db.session.execute(
        select(
            OrderLine.product_id,
            func.sum(OrderLine.quantity - OrderLine.refunded_quantity),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(OrderLine.product_id.in_(product_ids), Order.status.in_(SALES_STATUSES))
        .group_by(OrderLine.product_id)
    ).all()
    return {pid: int(total or 0) for pid, total in rows}


def library(
    distributor_id: int,
    *,
    sort: str = DEFAULT_SORT,
    q: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> LibraryPage:
    """Products on sale with their 分享赚, sorted by ``sort`` (a key of ``SORTS``) and
    filtered by ``q`` (title or subtitle contains it). Ties go to the newest."""
    if sort not in SORTS:
        sort = DEFAULT_SORT
    page = max(1, page)
    found = _candidates(clean_query(q))
    truncated = len(found) > MAX_CANDIDATES
    found = found[:MAX_CANDIDATES]
    ids = [pid for pid, _created in found]  # newest first: the tie-break of every sort
    start = (page - 1) * per_page
    if sort == "newest":
        ranked, ests, sold = ids, None, None
    elif sort == "sales":
        sold = units_sold(ids)
        ranked = sorted(ids, key=lambda pid: -sold.get(pid, 0))  # stable: newest first
        ests = None
    else:
        ests = estimates(distributor_id, ids)
        empty = ShareEstimate(0, ())
        if sort == "rate":
            ranked = sorted(ids, key=lambda pid: -ests.get(pid, empty).rate_bp)
        else:
            ranked = sorted(ids, key=lambda pid: -ests.get(pid, empty).max_fen)
        sold = None
    page_ids = ranked[start : start + per_page]
    if ests is None:
        ests = estimates(distributor_id, page_ids)
    if sold is None:
        sold = units_sold(page_ids)
    products = {
        p.id: p
        for p in db.session.scalars(
            select(Product)
            .where(Product.id.in_(page_ids))
            .options(selectinload(Product.skus), selectinload(Product.images))
        )
    }
    items = [
        LibraryItem(products[pid], ests.get(pid, ShareEstimate(pid, ())), sold.get(pid, 0))
        for pid in page_ids
        if pid in products
    ]
    return LibraryPage(
        items=items,
        page=page,
        per_page=per_page,
        has_next=start + per_page < len(ranked),
        total=len(ranked),
        truncated=truncated,
    )


def product_with_skus(product_id: int) -> Product | None:
    """A product on the shelf with its SKUs loaded, or None."""
    return db.session.scalar(
        select(Product)
        .where(Product.id == product_id, Product.on_shelf.is_(True))
        .options(selectinload(Product.skus))
    )
