"""Admin pages of timed discounts (限时折扣): list, new, edit, end early.

Times are typed and shown in China time (datetime-local inputs); prices in yuan, stored
in fen; the percentage as 折 (8.5 = 15% off), stored as basis points off. The rules are
``app.discounts.services``; every change is audited.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.admin import bp
from app.admin.decorators import staff_required
from app.catalog.models import Product
from app.core.audit import audited, row, rows
from app.core.money import format_yuan, parse_yuan
from app.core.params import MAX_ID
from app.core.time import SHOP_TZ, shop_time_text, utcnow
from app.discounts.models import TimedDiscount
from app.discounts.present import label
from app.discounts.services import (
    STATUS_LABELS,
    DiscountError,
    DiscountInput,
    commission_on,
    end_discount,
    product_skus,
    save_discount,
    status_of,
)
from app.extensions import db

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
# 折: 0.1 to 9.99 with at most two decimals (8, 8.5, 8.88); integer arithmetic only.
ZHE_RE = re.compile(r"^(\d)(?:\.(\d{1,2}))?$")


def _local(moment: datetime | None) -> str:
    return shop_time_text(moment, LOCAL_FORMAT)


def _parse_time(text: str, label_text: str) -> datetime:
    try:
        return datetime.strptime((text or "").strip(), LOCAL_FORMAT).replace(tzinfo=SHOP_TZ)
    except ValueError:
        raise DiscountError(f"请填写{label_text}") from None


def parse_zhe(text: str) -> int:
    """'8.5' (折) -> 1500 basis points off; DiscountError for anything else."""
    match = ZHE_RE.match((text or "").strip())
    if not match:
        raise DiscountError("折扣请填写 0.1 到 9.99 之间的数字，如 8.5（即 8.5 折）")
    paid_bp = int(match.group(1)) * 1000 + int((match.group(2) or "0").ljust(3, "0")[:3])
    if not 0 < paid_bp < 10_000:
        raise DiscountError("折扣请填写 0.1 到 9.99 之间的数字，如 8.5（即 8.5 折）")
    return 10_000 - paid_bp


def _zhe_text(percent_off_bp: int | None) -> str:
    if not percent_off_bp:
        return ""
    paid = 10_000 - percent_off_bp
    return f"{paid // 1000}.{paid % 1000:03d}".rstrip("0").rstrip(".")


def _product_arg(raw: str | None) -> int:
    raw = (raw or "").strip()
    if not raw.isdecimal() or len(raw) > 10 or int(raw) > MAX_ID:
        raise DiscountError("请选择商品")
    return int(raw)


def discount_from_form(form, product_id: int) -> DiscountInput:
    """Parse the discount form; raise DiscountError in Chinese."""
    mode = form.get("mode", "")
    percent = None
    prices: dict[int, int] = {}
    if mode == "percent":
        percent = parse_zhe(form.get("zhe", ""))
    elif mode == "price":
        for sku in product_skus(product_id):
            text = (form.get(f"price_{sku.id}") or "").strip()
            if not text:
                continue
            try:
                prices[sku.id] = parse_yuan(text)
            except ValueError:
                raise DiscountError("折扣价格式不正确（如 19.90）") from None
    else:
        raise DiscountError("请选择折扣方式")
    return DiscountInput(
        product_id=product_id,
        mode=mode,
        name=form.get("name", ""),
        percent_off_bp=percent,
        sku_prices=prices,
        starts_at=_parse_time(form.get("starts_at", ""), "开始时间"),
        ends_at=_parse_time(form.get("ends_at", ""), "结束时间"),
        commission_on=form.get("commission_on") == "1",
    )


def _values(discount: TimedDiscount | None, product_id: int | None) -> dict:
    if discount is None:
        now = utcnow()
        return {
            "mode": "percent",
            "name": "限时折扣",
            "starts_at": _local(now),
            "ends_at": "",
            "commission_on": commission_on(product_id) if product_id else True,
            "prices": {},
        }
    return {
        "mode": discount.mode,
        "name": discount.name,
        "zhe": _zhe_text(discount.percent_off_bp),
        "starts_at": _local(discount.starts_at),
        "ends_at": _local(discount.ends_at),
        "commission_on": commission_on(discount.product_id),
        "prices": {p.sku_id: format_yuan(p.price_fen, symbol=False) for p in discount.prices},
    }


def _posted_values() -> dict:
    values = dict(request.form.items())
    values["commission_on"] = request.form.get("commission_on") == "1"
    values["prices"] = {
        int(key[6:]): value
        for key, value in request.form.items()
        if key.startswith("price_") and key[6:].isdecimal() and len(key) < 20
    }
    return values


def _form_page(
    discount: TimedDiscount | None,
    product: Product | None,
    values: dict,
    error: str = "",
    status: int = 200,
):
    products = db.session.scalars(select(Product).order_by(Product.title, Product.id)).all()
    page = render_template(
        "admin/discounts_form.html",
        discount=discount,
        product=product,
        skus=product_skus(product.id) if product is not None else [],
        products=products,
        v=values,
        error=error,
    )
    return page, status


@bp.get("/discounts")
@staff_required
def discounts():
    """Every timed discount, newest first, with its state."""
    rows = db.session.scalars(
        select(TimedDiscount)
        .options(selectinload(TimedDiscount.product), selectinload(TimedDiscount.prices))
        .order_by(TimedDiscount.id.desc())
        .limit(500)
    ).all()
    now = utcnow()
    return render_template(
        "admin/discounts.html",
        rows=rows,
        status_of=lambda d: status_of(d, now),
        status_labels=STATUS_LABELS,
        label=label,
        local=lambda m: shop_time_text(m),
        commission_on=commission_on,
    )


@bp.get("/discounts/new")
@staff_required
def discount_new():
    """The form for a new discount (pick the product first: the SKU prices depend on it)."""
    product = None
    if request.args.get("product_id"):
        try:
            product = db.session.get(Product, _product_arg(request.args.get("product_id")))
        except DiscountError:
            product = None
    return _form_page(None, product, _values(None, product.id if product else None))


@bp.post("/discounts")
@staff_required
@audited("discount.create", rows(TimedDiscount, "timed_discount"))
def discount_create():
    """Create a discount."""
    product = None
    try:
        product_id = _product_arg(request.form.get("product_id"))
        product = db.session.get(Product, product_id)
        if product is None:
            raise DiscountError("请选择商品")
        discount = save_discount(discount_from_form(request.form, product_id), actor=_actor())
        db.session.commit()
    except DiscountError as err:
        db.session.rollback()
        return _form_page(None, product, _posted_values(), err.message, 400)
    flash(f"已创建限时折扣“{discount.name}”", "success")
    return redirect(url_for("admin.discounts"))


def _discount_or_404(discount_id: int) -> TimedDiscount:
    if discount_id > MAX_ID:
        abort(404)
    return db.get_or_404(TimedDiscount, discount_id)


@bp.get("/discounts/<int:discount_id>")
@staff_required
def discount_edit(discount_id: int):
    """Edit a discount."""
    discount = _discount_or_404(discount_id)
    return _form_page(discount, discount.product, _values(discount, discount.product_id))


@bp.post("/discounts/<int:discount_id>")
@staff_required
@audited("discount.update", row(TimedDiscount, "discount_id", "timed_discount"))
def discount_update(discount_id: int):
    """Save a discount's changes (orders already placed keep their prices)."""
    discount = _discount_or_404(discount_id)
    try:
        save_discount(discount_from_form(request.form, discount.product_id), discount)
        db.session.commit()
    except DiscountError as err:
        db.session.rollback()
        return _form_page(discount, discount.product, _posted_values(), err.message, 400)
    flash("限时折扣已保存", "success")
    return redirect(url_for("admin.discounts"))


@bp.post("/discounts/<int:discount_id>/end")
@staff_required
@audited("discount.end", row(TimedDiscount, "discount_id", "timed_discount"))
def discount_end(discount_id: int):
    """End a discount now."""
    discount = _discount_or_404(discount_id)
    if end_discount(discount):
        db.session.commit()
        flash(f"已结束“{discount.name}”", "success")
    else:
        flash("活动已经结束", "info")
    return redirect(url_for("admin.discounts"))


def _actor() -> str:
    return f"staff:{current_user.id}"
