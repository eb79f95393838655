"""联系客服 settings (owner only): phone, WeChat ID, QR image and the official account's
客服 message that 我的 → 联系客服 shows customers (app/shop/contact.py)."""

from __future__ import annotations

import secrets
from pathlib import Path
from types import SimpleNamespace

from flask import current_app, flash, redirect, render_template, request, url_for

from app.admin import bp
from app.admin.decorators import owner_required
from app.admin.images import check_image
from app.catalog.services import CatalogError
from app.core.audit import audited, rows
from app.extensions import db
from app.shop.contact import ContactError, get_contact, save_contact
from app.shop.models import CustomerService


def _render(contact, error: str | None = None, field: str | None = None, status: int = 200):
    page = render_template(
        "admin/settings_service.html",
        contact=contact,
        error=error,
        field=field,
        max_image_mb=current_app.config["MAX_IMAGE_BYTES"] // (1024 * 1024),
    )
    return page, status


@bp.get("/settings/service")
@owner_required
def settings_service():
    """The 联系客服 settings form."""
    return _render(get_contact())


@bp.post("/settings/service")
@owner_required
@audited("customer_service.update", rows(CustomerService, "customer_service"))
def settings_service_save():
    """Save the contact settings; a new QR image is checked and re-encoded before it is kept."""
    form = request.form
    qr_image = "" if form.get("remove_qr") == "1" else None
    written: Path | None = None
    upload = request.files.get("qr_image")
    try:
        if upload and upload.filename:
            limit = current_app.config["MAX_IMAGE_BYTES"]
            try:
                checked = check_image(upload.stream.read(limit + 1), upload.filename, limit)
            except CatalogError as exc:
                raise ContactError("qr_image", exc.message) from exc
            qr_image = f"qr{secrets.token_hex(16)}{checked.extension}"
            folder = Path(current_app.config["UPLOAD_DIR"])
            folder.mkdir(parents=True, exist_ok=True)
            written = folder / qr_image
            written.write_bytes(checked.data)
        save_contact(
            phone=form.get("phone", ""),
            wechat_id=form.get("wechat_id", ""),
            kefu_enabled=form.get("kefu_enabled") == "1",
            kefu_note=form.get("kefu_note", ""),
            qr_image=qr_image,
        )
        db.session.commit()
    except ContactError as exc:
        db.session.rollback()
        if written is not None:
            written.unlink(missing_ok=True)
        shown = SimpleNamespace(  # what was typed, shown again with the reason
            phone=form.get("phone", "")[:64],
            wechat_id=form.get("wechat_id", "")[:64],
            kefu_note=form.get("kefu_note", "")[:400],
            kefu_enabled=form.get("kefu_enabled") == "1",
            qr_image=get_contact().qr_image,
        )
        return _render(shown, exc.message, exc.field, 422)
    flash("客服设置已保存", "success")
    return redirect(url_for("admin.settings_service"))
