"""Shop settings pages (owner only): the order settings of ShopSettings."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for

from app.admin import bp
from app.admin.decorators import owner_required
from app.admin.order_forms import OrderSettingsForm
from app.core.audit import audited, rows
from app.core.money import format_yuan
from app.extensions import db
from app.orders.models import ShopSettings
from app.orders.services import get_settings


def _render(form: OrderSettingsForm, error: str | None = None, status: int = 200):
    return render_template("admin/settings_orders.html", form=form, error=error), status


@bp.get("/settings/orders")
@owner_required
def settings_orders():
    """Shipping fee, free-shipping threshold, payment timeout, unpaid-order cap, automatic
    receipt."""
    settings = get_settings()
    db.session.commit()  # get_settings may have created the row
    form = OrderSettingsForm(formdata=None)
    form.shipping_fee.data = format_yuan(settings.shipping_fee_fen, symbol=False)
    form.free_shipping_over.data = format_yuan(settings.free_shipping_over_fen, symbol=False)
    form.pay_timeout_minutes.data = settings.pay_timeout_minutes
    form.max_unpaid_orders.data = settings.max_unpaid_orders
    form.auto_complete_days.data = settings.auto_complete_days
    return _render(form)


@bp.post("/settings/orders")
@owner_required
@audited("order_settings.update", rows(ShopSettings, "order_settings"))
def settings_orders_save():
    """Save the order settings; a bad value re-shows the form with the reason."""
    form = OrderSettingsForm()
    if not form.validate():
        name, errors = next((k, v) for k, v in form.errors.items() if v)
        if name == "csrf_token":
            return _render(form, "页面已过期，请刷新后重试", 400)
        return _render(form, f"{getattr(form, name).label.text}：{errors[0]}", 422)
    settings = get_settings()
    settings.shipping_fee_fen = form.shipping_fee.fen
    settings.free_shipping_over_fen = form.free_shipping_over.fen
    settings.pay_timeout_minutes = form.pay_timeout_minutes.data
    settings.max_unpaid_orders = form.max_unpaid_orders.data
    settings.auto_complete_days = form.auto_complete_days.data
    db.session.commit()
    flash("订单设置已保存", "success")
    return redirect(url_for("admin.settings_orders"))
