"""What the product page shows of a timed discount: prices struck through and the end.

``discounted_page_data`` rewrites the product's price summary and SKU picker data with
``pricing.unit_prices``: each SKU's ``price_fen`` is what it costs now, and its
``original_price_fen`` is at least its list price, so the page's existing picker shows the
list price crossed out (shop.js). The countdown (static/js/timed-discount.js) counts to
``ends_at`` in the visitor's clock; the server-side text gives the end in shop time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.catalog.models import Product
from app.core.time import shop_time_text
from app.discounts.models import TimedDiscount
from app.discounts.pricing import UnitPrice


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def discounted_page_data(
    product: Product, prices: dict[int, UnitPrice], summary: dict, picker: dict
) -> tuple[dict, dict]:
    """(price summary, picker data) with the discounted prices in place."""
    skus = []
    for row in picker["skus"]:
        price = prices.get(row["id"])
        if price is None or not price.discounted:
            skus.append(row)
            continue
        original = max(row.get("original_price_fen") or 0, price.list_price_fen)
        skus.append({**row, "price_fen": price.price_fen, "original_price_fen": original})
    shown = [row["price_fen"] for row in skus]
    low = min(shown, default=0)
    original = max(
        [row.get("original_price_fen") or 0 for row in skus] + [summary.get("original_fen") or 0]
    )
    summary = {
        **summary,
        "price_fen": low,
        "from": len(set(shown)) > 1,
        "original_fen": original if original > low else None,
    }
    return summary, {**picker, "skus": skus}


def countdown(discount: TimedDiscount) -> dict:
    """What the countdown needs: the end as epoch milliseconds and as shop-time text."""
    ends = _aware(discount.ends_at)
    return {
        "name": discount.name or "限时折扣",
        "ends_ms": int(ends.timestamp() * 1000),
        "ends_text": shop_time_text(ends),
        "label": label(discount),
    }


def label(discount: TimedDiscount) -> str:
    """限时 8.5 折 / 限时特价."""
    if discount.mode == "percent" and discount.percent_off_bp:
        paid_bp = 10_000 - discount.percent_off_bp  # 8500 bp paid = 8.5 折
        text = f"{paid_bp // 1000}.{paid_bp % 1000:03d}".rstrip("0").rstrip(".")
        return f"限时 {text} 折"
    return "限时特价"
