"""Ordering-merchant levels (订货商等级) and their prices per SKU.

A level's price for a SKU is its set price (``MerchantSkuPrice``) when one exists, else
the level's discount off retail, rounded down to the fen::

    price = floor(retail × (10000 − discount_bp) / 10000)

Level 1 is the top (总代) and buys cheapest. For every SKU the prices must never go down
as the level number goes up, and no level may pay more than retail::

    price(level 1) ≤ price(level 2) ≤ … ≤ price(level 5) ≤ retail

so every 级差 is ≥ 0. ``save_levels`` and ``save_prices`` check this for every SKU before
writing and refuse with a Chinese message naming the SKU and the two levels. Services
flush; the edge commits.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import selectinload

from app.catalog.models import Product, Sku
from app.cloud.agents import get_cloud_settings
from app.cloud.models import (
    PRECEDENCE,
    CloudSettings,
    MerchantLevel,
    MerchantSkuPrice,
    OrderingMerchant,
)
from app.core.batch import memo
from app.core.money import format_yuan
from app.core.sql import dialect_insert
from app.extensions import db

MAX_LEVEL = 5
FULL_BP = 10_000
# Demo defaults: (level, name, discount off retail in basis points).
DEFAULT_LEVELS = (
    (1, "总代", 4000),
    (2, "省代", 3000),
    (3, "市代", 2000),
    (4, "县代", 1000),
    (5, "店主", 500),
)
PRECEDENCE_LABELS = {
    "price_difference": "级差优先：经订货商的订单只计级差，不计分销佣金",
    "commission": "佣金优先：只计分销佣金，不计级差",
    "both": "两者都计：级差和分销佣金同时发放",
}


class MerchantError(Exception):
    """A refused ordering-merchant change: a code, a Chinese message, an HTTP status and
    the field at fault (for forms and JSON errors)."""

    def __init__(self, code: str, message: str, status: int = 422, field: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field


# --- settings -------------------------------------------------------------------------------


def set_precedence(value: str) -> CloudSettings:
    """Choose what an order through an ordering merchant earns (flushes)."""
    if value not in PRECEDENCE:
        raise MerchantError("invalid_precedence", "请选择级差与佣金的计算方式", field="precedence")
    settings = get_cloud_settings()
    settings.precedence = value
    db.session.flush()
    return settings


# --- prices ---------------------------------------------------------------------------------


def discounted(retail_fen: int, discount_bp: int) -> int:
    """Retail less a discount in basis points, rounded down to the fen."""
    return retail_fen * (FULL_BP - discount_bp) // FULL_BP


def list_levels() -> list[MerchantLevel]:
    """Every level, the top (1) first."""
    return memo(
        "merchant_levels",
        lambda: list(db.session.scalars(select(MerchantLevel).order_by(MerchantLevel.level))),
    )


def level_names() -> dict[int, str]:
    """{level: name}."""
    return {row.level: row.name for row in list_levels()}


def level_label(level: int, names: dict[int, str] | None = None) -> str:
    """ "市代（3级）" or "3级" for a level without a row."""
    name = (names if names is not None else level_names()).get(level)
    return f"{name}（{level}级）" if name else f"{level}级"


def set_prices(sku_ids: Iterable[int] | None = None) -> dict[tuple[int, int], int]:
    """{(level, sku_id): set price} for the given SKUs (all when None)."""
    query = select(MerchantSkuPrice.level, MerchantSkuPrice.sku_id, MerchantSkuPrice.price_fen)
    if sku_ids is not None:
        query = query.where(MerchantSkuPrice.sku_id.in_(list(sku_ids)))
    return {(level, sku_id): price for level, sku_id, price in db.session.execute(query)}


def level_prices(
    sku_id: int,
    retail_fen: int,
    levels: list[MerchantLevel] | None = None,
    fixed: dict[tuple[int, int], int] | None = None,
) -> dict[int, int]:
    """{level: unit price} of one SKU whose retail is ``retail_fen``."""
    levels = list_levels() if levels is None else levels
    fixed = set_prices([sku_id]) if fixed is None else fixed
    return {
        row.level: fixed.get((row.level, sku_id), discounted(retail_fen, row.discount_bp))
        for row in levels
    }


def price_for(level: int, sku: Sku) -> int | None:
    """What a merchant of ``level`` pays for one ``sku`` today (None: no such level)."""
    return level_prices(sku.id, sku.price_fen).get(level)


@dataclass(frozen=True)
class PriceRow:
    """One SKU of the price table: retail and the price at each level."""

    sku: Sku
    title: str
    retail_fen: int
    prices: dict[int, int]
    fixed: frozenset[int]  # levels whose price is set rather than discounted


def sku_title(sku: Sku) -> str:
    """ "商品（规格）"."""
    return f"{sku.product.title}{'（' + sku.spec_text + '）' if sku.specs else ''}"


def price_table(on_shelf_only: bool = False) -> list[PriceRow]:
    """Every SKU with its price at every level (the admin editor, the merchant's list)."""
    levels = list_levels()
    query = (
        select(Sku)
        .join(Product, Product.id == Sku.product_id)
        .options(selectinload(Sku.product))
        .order_by(Product.id, Sku.id)
    )
    if on_shelf_only:
        query = query.where(Product.on_shelf.is_(True))
    skus = list(db.session.scalars(query))
    fixed = set_prices([s.id for s in skus])
    return [
        PriceRow(
            sku=sku,
            title=sku_title(sku),
            retail_fen=sku.price_fen,
            prices=level_prices(sku.id, sku.price_fen, levels, fixed),
            fixed=frozenset(level for level, sku_id in fixed if sku_id == sku.id),
        )
        for sku in skus
    ]


# --- validation -----------------------------------------------------------------------------


def check_order(
    title: str, retail_fen: int, prices: dict[int, int], names: dict[int, str]
) -> str | None:
    """The first break of level 1 ≤ level 2 ≤ … ≤ retail for one SKU, in Chinese."""
    previous: tuple[int, int] | None = None
    for level in sorted(prices):
        price = prices[level]
        if price < 0:
            return f"「{title}」{level_label(level, names)}价不能为负数"
        if price > retail_fen:
            return (
                f"「{title}」{level_label(level, names)}价 {format_yuan(price)} "
                f"高于零售价 {format_yuan(retail_fen)}：订货价不能高于零售价"
            )
        if previous is not None and price < previous[1]:
            return (
                f"「{title}」{level_label(level, names)}价 {format_yuan(price)} 低于"
                f"{level_label(previous[0], names)}价 {format_yuan(previous[1])}："
                "等级越低，订货价只能相同或更高"
            )
        previous = (level, price)
    return None


def validate_all(levels: dict[int, tuple[str, int]], fixed: dict[tuple[int, int], int]) -> None:
    """Check every SKU against proposed ``levels`` {level: (name, discount_bp)} and set
    prices ``fixed``; raise MerchantError on the first SKU that breaks the order."""
    names = {level: name for level, (name, _bp) in levels.items()}
    skus = db.session.scalars(select(Sku).options(selectinload(Sku.product)).order_by(Sku.id))
    for sku in skus:
        prices = {
            level: fixed.get((level, sku.id), discounted(sku.price_fen, bp))
            for level, (_name, bp) in levels.items()
        }
        problem = check_order(sku_title(sku), sku.price_fen, prices, names)
        if problem:
            raise MerchantError("price_order", problem, field=f"sku:{sku.id}")


def _clean_levels(rows: list[dict]) -> dict[int, tuple[str, int]]:
    found: dict[int, tuple[str, int]] = {}
    for row in rows:
        level, name, bp = (
            row.get("level"),
            str(row.get("name") or "").strip(),
            row.get("discount_bp"),
        )
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= MAX_LEVEL:
            raise MerchantError("invalid_level", "等级需为 1 到 5", field="level")
        if level in found:
            raise MerchantError("duplicate_level", f"{level}级出现了多次", field="level")
        if not 1 <= len(name) <= 16:
            raise MerchantError(
                "invalid_name", f"请填写{level}级的名称（最多 16 个字）", field="name"
            )
        if not isinstance(bp, int) or isinstance(bp, bool) or not 0 <= bp <= FULL_BP:
            raise MerchantError(
                "invalid_discount",
                f"{level}级的折扣需在 0 到 10000（万分比）之间",
                field="discount_bp",
            )
        found[level] = (name, bp)
    names = [name for name, _bp in found.values()]
    if len(set(names)) != len(names):
        raise MerchantError("duplicate_name", "等级名称不能重复", field="name")
    ordered = sorted(found)
    for upper, lower in itertools.pairwise(ordered):
        if found[lower][1] > found[upper][1]:
            raise MerchantError(
                "discount_order",
                f"{level_label(lower, {k: v[0] for k, v in found.items()})}的折扣不能大于"
                f"{level_label(upper, {k: v[0] for k, v in found.items()})}：等级越低，折扣越少",
                field="discount_bp",
            )
    return found


def save_levels(rows: list[dict], prices: list[dict] | None = None) -> list[MerchantLevel]:
    """Replace the levels with ``rows`` [{level, name, discount_bp}] and, when given, apply
    ``prices`` [{level, sku_id, price_fen}] (``price_fen`` None removes a set price).

    Everything is validated together first (every SKU, every level); a level still held by
    a merchant cannot be removed. Flushes.
    """
    levels = _clean_levels(rows)
    if not levels:
        raise MerchantError("no_levels", "至少需要一个等级", field="level")
    held = set(db.session.scalars(select(OrderingMerchant.level).distinct()))
    dropped = held - set(levels)
    if dropped:
        raise MerchantError(
            "level_in_use",
            f"{'、'.join(f'{n}级' for n in sorted(dropped))}还有订货商，不能删除",
            409,
            field="level",
        )
    fixed = set_prices()
    fixed = {key: price for key, price in fixed.items() if key[0] in levels}
    fixed = _apply_price_changes(fixed, prices or [], set(levels))
    validate_all(levels, fixed)
    _write(levels, fixed)
    return list_levels()


def save_prices(prices: list[dict]) -> None:
    """Set or clear SKU prices [{level, sku_id, price_fen or None}] after checking every
    SKU with the levels as they are (flushes)."""
    levels = {row.level: (row.name, row.discount_bp) for row in list_levels()}
    fixed = _apply_price_changes(set_prices(), prices, set(levels))
    validate_all(levels, fixed)
    _write(levels, fixed)


def _apply_price_changes(
    fixed: dict[tuple[int, int], int], changes: list[dict], levels: set[int]
) -> dict[tuple[int, int], int]:
    fixed = dict(fixed)
    sku_ids = {c.get("sku_id") for c in changes}
    known = set(
        db.session.scalars(
            select(Sku.id).where(Sku.id.in_([i for i in sku_ids if isinstance(i, int)]))
        )
    )
    for change in changes:
        level, sku_id, price = change.get("level"), change.get("sku_id"), change.get("price_fen")
        if level not in levels:
            raise MerchantError("unknown_level", f"没有{level}级，请先添加该等级", field="level")
        if sku_id not in known:
            raise MerchantError("unknown_sku", f"SKU #{sku_id} 不存在", 404, field="sku_id")
        if price is None:
            fixed.pop((level, sku_id), None)
        elif isinstance(price, bool) or not isinstance(price, int) or price < 0:
            raise MerchantError("invalid_price", "价格需为不小于 0 的整数（分）", field="price_fen")
        else:
            fixed[(level, sku_id)] = price
    return fixed


def _write(levels: dict[int, tuple[str, int]], fixed: dict[tuple[int, int], int]) -> None:
    existing = {row.level: row for row in list_levels()}
    for level, row in existing.items():
        if level not in levels:
            db.session.delete(row)
    db.session.flush()
    # Names are free text but unique in spirit; rename through a placeholder so two levels
    # may swap names in one save.
    for level, (name, bp) in levels.items():
        row = existing.get(level)
        if row is None:
            db.session.add(MerchantLevel(level=level, name=name, discount_bp=bp))
        else:
            row.name, row.discount_bp = name, bp
    db.session.execute(delete(MerchantSkuPrice))
    if fixed:
        db.session.execute(
            dialect_insert(MerchantSkuPrice).values(
                [
                    {"level": level, "sku_id": sku_id, "price_fen": price}
                    for (level, sku_id), price in sorted(fixed.items())
                ]
            )
        )
    db.session.flush()


def ensure_default_levels() -> list[MerchantLevel]:
    """The demo levels 总代/省代/市代/县代/店主 when there are none yet (flushes)."""
    if db.session.scalar(select(func.count()).select_from(MerchantLevel)):
        return list_levels()
    for level, name, bp in DEFAULT_LEVELS:
        db.session.add(MerchantLevel(level=level, name=name, discount_bp=bp))
    db.session.flush()
    return list_levels()
