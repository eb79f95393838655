"""The owner's product-page settings: the service promises under every product's title.

Each promise (正品保障, 48小时发货, 7天无理由退货...) is a commitment the shop must keep, so
none is shown until the owner writes them (admin 设置 → 商品页). Saving them writes a
catalog table, which invalidates the cached product pages (app/shop/cache.py).
"""

from __future__ import annotations

from app.catalog.models import ProductPageSettings
from app.extensions import db

MAX_PROMISES = 6
MAX_PROMISE_LENGTH = 12


def service_promises() -> list[str]:
    """The owner's service promises in order (empty when none are configured)."""
    row = db.session.get(ProductPageSettings, 1)
    return list(row.promises or []) if row is not None else []


def clean_promises(text: str) -> list[str]:
    """The promises typed one per line: trimmed, blanks and repeats dropped; ValueError
    (Chinese) when there are too many or one is too long."""
    seen: dict[str, None] = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if line:
            if len(line) > MAX_PROMISE_LENGTH:
                raise ValueError(
                    f"“{line[:MAX_PROMISE_LENGTH]}…”太长，每条最多 {MAX_PROMISE_LENGTH} 个字"
                )
            seen.setdefault(line, None)
    if len(seen) > MAX_PROMISES:
        raise ValueError(f"最多 {MAX_PROMISES} 条服务承诺")
    return list(seen)


def save_promises(promises: list[str]) -> ProductPageSettings:
    """Store the promises (row id 1, created on first save). Flushes; the caller commits."""
    row = db.session.get(ProductPageSettings, 1)
    if row is None:
        row = ProductPageSettings(id=1, promises=[])
        db.session.add(row)
    row.promises = list(promises)
    db.session.flush()
    return row
