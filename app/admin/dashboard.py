"""The admin home page: today's orders, catalog counts, low stock, the worker's heartbeat."""

from __future__ import annotations

from datetime import datetime

from flask import current_app, render_template
from redis.exceptions import RedisError
from sqlalchemy import func, select

from app.admin import bp
from app.admin.catalog import LOW_STOCK
from app.admin.decorators import staff_required
from app.catalog.models import Category, Product, Sku
from app.core.redis import get_redis
from app.core.time import shop_day_bounds, shop_time_text, utcnow
from app.extensions import db
from app.orders.models import PAID, REFUND_REQUESTED, Order, Refund
from jobs.maintenance import HEARTBEAT_KEY


@bp.app_template_filter("admin_datetime")
def admin_datetime(value: datetime | None) -> str:
    """A stored (UTC) time as Beijing time, e.g. 2025-01-31 20:05; '' for None."""
    return shop_time_text(value)


def heartbeat_stale_seconds() -> int:
    """How old the worker's heartbeat may be while the worker still counts as running.

    Each worker's ticker writes it every ``WORKER_TICK_SECONDS`` (also while a long job
    runs), so a minute (or four ticks, if ticks are slower) without one means no worker.
    """
    tick = int(current_app.config.get("WORKER_TICK_SECONDS", 5))
    return max(60, 4 * tick)


def _ago(seconds: int) -> str:
    if seconds < 60:
        return "刚刚"
    if seconds < 3600:
        return f"{seconds // 60} 分钟前"
    return f"{seconds // 3600} 小时前"


def worker_status() -> dict:
    """The worker's last heartbeat: {"ok", "at" (Beijing time text), "ago", "error"}.

    ``ok`` only when the heartbeat is fresh (``heartbeat_stale_seconds``); a stale one
    still says when the worker was last heard of.
    """
    try:
        raw = get_redis().get(HEARTBEAT_KEY)
    except RedisError:
        return {"ok": False, "at": None, "ago": None, "error": "无法连接 Redis"}
    if raw is None:
        return {"ok": False, "at": None, "ago": None, "error": None}
    try:
        stamp = datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw)
    except ValueError:
        return {"ok": False, "at": None, "ago": None, "error": "心跳记录无法识别"}
    seconds = max(0, int((utcnow() - stamp).total_seconds()))
    return {
        "ok": seconds <= heartbeat_stale_seconds(),
        "at": shop_time_text(stamp, "%Y-%m-%d %H:%M:%S"),
        "ago": _ago(seconds),
        "error": None,
    }


def _count(query) -> int:
    return db.session.scalar(query) or 0


def order_stats() -> dict[str, int]:
    """Today's orders (Beijing day), money paid today, orders to ship, refunds to review."""
    start, end = shop_day_bounds()
    return {
        "orders_today": _count(
            select(func.count(Order.id)).where(Order.created_at >= start, Order.created_at < end)
        ),
        "paid_today_fen": _count(
            select(func.coalesce(func.sum(Order.paid_fen), 0)).where(
                Order.paid_at >= start, Order.paid_at < end
            )
        ),
        "to_ship": _count(select(func.count(Order.id)).where(Order.status == PAID)),
        "refunds_open": _count(
            select(func.count(Refund.id)).where(Refund.status == REFUND_REQUESTED)
        ),
    }


@bp.get("/")
@staff_required
def dashboard():
    """Counts, SKUs that ran out or run low, and whether the background worker runs."""
    stats = {
        "on_shelf": _count(select(func.count(Product.id)).where(Product.on_shelf.is_(True))),
        "off_shelf": _count(select(func.count(Product.id)).where(Product.on_shelf.is_(False))),
        "categories": _count(select(func.count(Category.id))),
        "skus": _count(select(func.count(Sku.id))),
        "out_of_stock": _count(select(func.count(Sku.id)).where(Sku.stock == 0)),
        "low_stock": _count(
            select(func.count(Sku.id)).where(Sku.stock > 0, Sku.stock <= LOW_STOCK)
        ),
        **order_stats(),
    }
    low = db.session.scalars(
        select(Sku)
        .join(Sku.product)
        .where(Sku.stock <= LOW_STOCK)
        .order_by(Sku.stock, Sku.id)
        .limit(10)
    ).all()
    return render_template(
        "admin/dashboard.html",
        stats=stats,
        low=low,
        low_stock=LOW_STOCK,
        worker=worker_status(),
    )
