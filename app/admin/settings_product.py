"""The product page settings (owner only): the service promises every product page shows."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from app.admin import bp
from app.admin.decorators import owner_required
from app.admin.forms import ActionForm
from app.catalog.models import ProductPageSettings
from app.catalog.page_settings import (
    MAX_PROMISE_LENGTH,
    MAX_PROMISES,
    clean_promises,
    save_promises,
    service_promises,
)
from app.core.audit import audited, rows
from app.extensions import db


def _render(text: str, error: str | None = None, status: int = 200):
    return (
        render_template(
            "admin/settings_product.html",
            form=ActionForm(),
            text=text,
            error=error,
            max_promises=MAX_PROMISES,
            max_length=MAX_PROMISE_LENGTH,
        ),
        status,
    )


@bp.get("/settings/product-page")
@owner_required
def settings_product_page():
    """The service promises, one per line."""
    return _render("\n".join(service_promises()))


@bp.post("/settings/product-page")
@owner_required
@audited("product_page_settings.update", rows(ProductPageSettings, "product_page_settings"))
def settings_product_page_save():
    """Save the promises; too many or too long re-shows the form with the reason."""
    form = ActionForm()
    text = (request.form.get("promises") or "")[:2000]
    if not form.validate():
        return _render(text, "页面已过期，请刷新后重试", 400)
    try:
        promises = clean_promises(text)
    except ValueError as exc:
        return _render(text, str(exc), 422)
    save_promises(promises)
    db.session.commit()
    flash("商品页设置已保存", "success")
    return redirect(url_for("admin.settings_product_page"))
