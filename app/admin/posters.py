"""Admin pages of poster templates: list, create and edit (layout, colours, slogan,
background picture), make one active per kind, and preview with sample data before saving.

Background uploads go through the product-image checks (app.admin.images.check_image):
decoded by Pillow, re-encoded clean, stored under a random name. Saving bumps the
template's version, so every cached poster made from the old design is made again.
"""

from __future__ import annotations

import io
from pathlib import Path

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from PIL import Image

from app.admin import bp
from app.admin.decorators import staff_required
from app.admin.images import check_image
from app.catalog.services import CatalogError
from app.core.params import bounded_int
from app.extensions import db
from app.posters import services
from app.posters.models import POSTER_KINDS, PosterTemplate
from app.posters.render import LAYOUTS, PosterStyle

DEFAULTS = {
    "name": "",
    "layout": "classic",
    "background_color": "#E4393C",
    "accent_color": "#FFFFFF",
    "slogan": "",
}


def _values(template: PosterTemplate | None, kind: str) -> dict[str, str]:
    if template is None:
        return {**DEFAULTS, "kind": kind}
    return {
        "kind": template.kind,
        "name": template.name,
        "layout": template.layout,
        "background_color": template.background_color,
        "accent_color": template.accent_color,
        "slogan": template.slogan,
    }


def _render_form(template, values, error=None, field=None, status=200):
    return (
        render_template(
            "admin/posters_form.html",
            template=template,
            values=values,
            layouts=LAYOUTS,
            kind_labels=services.KIND_LABELS,
            error=error,
            error_field=field,
            max_image_mb=current_app.config["MAX_IMAGE_BYTES"] // (1024 * 1024),
        ),
        status,
    )


def _uploaded_background():
    """The checked background upload, or None when no file was chosen."""
    upload = request.files.get("background")
    if upload is None or not upload.filename:
        return None
    limit = current_app.config["MAX_IMAGE_BYTES"]
    try:
        return check_image(upload.stream.read(limit + 1), upload.filename, limit)
    except CatalogError as exc:
        raise services.PosterError("invalid_image", exc.message, 422, "background") from None


@bp.get("/posters")
@staff_required
def posters():
    """Templates by kind, with the active one marked and a sample of each."""
    rows = db.session.scalars(
        db.select(PosterTemplate).order_by(PosterTemplate.kind, PosterTemplate.id)
    ).all()
    return render_template(
        "admin/posters.html",
        groups=[(kind, [t for t in rows if t.kind == kind]) for kind in POSTER_KINDS],
        kind_labels=services.KIND_LABELS,
        layouts=LAYOUTS,
    )


@bp.get("/posters/new")
@staff_required
def poster_new():
    """An empty template form for ``?kind=shop|product``."""
    kind = request.args.get("kind", "shop")
    kind = kind if kind in POSTER_KINDS else "shop"
    return _render_form(None, _values(None, kind))


@bp.get("/posters/<int:poster_template_id>/edit")
@staff_required
def poster_edit(poster_template_id: int):
    """Edit a template."""
    template = db.get_or_404(PosterTemplate, poster_template_id)
    return _render_form(template, _values(template, template.kind))


@bp.post("/posters/new")
@staff_required
def poster_create():
    """Save a new template (inactive until made active)."""
    return _save(None)


@bp.post("/posters/<int:poster_template_id>/edit")
@staff_required
def poster_update(poster_template_id: int):
    """Save changes to a template; its version goes up."""
    return _save(db.get_or_404(PosterTemplate, poster_template_id))


def _save(template: PosterTemplate | None):
    typed = {k: request.form.get(k, "") for k in ("kind", *DEFAULTS)}
    if template is not None:
        typed["kind"] = template.kind
    written = None
    try:
        values = services.clean_template(request.form, template.kind if template else None)
        checked = _uploaded_background()
        if checked is not None:
            written = services.store_background(checked.data, checked.extension)
        remove = request.form.get("remove_background") == "1"
        template, old_file = services.save_template(template, values, written, remove)
        db.session.commit()
    except services.PosterError as err:
        db.session.rollback()
        _remove(written)
        return _render_form(template, typed, err.message, err.field, err.status)
    except Exception:
        db.session.rollback()
        _remove(written)
        raise
    _remove(old_file)
    flash(f"海报模板“{template.name}”已保存", "success")
    return redirect(url_for("admin.posters"))


def _remove(filename: str | None) -> None:
    path = services.upload_path(filename)
    if path is not None:
        path.unlink(missing_ok=True)


@bp.post("/posters/<int:poster_template_id>/activate")
@staff_required
def poster_activate(poster_template_id: int):
    """Use this template for its kind from now on."""
    template = db.get_or_404(PosterTemplate, poster_template_id)
    services.activate_template(template)
    db.session.commit()
    flash(f"已启用“{template.name}”作为{services.KIND_LABELS[template.kind]}", "success")
    return redirect(url_for("admin.posters"))


@bp.get("/posters/<int:poster_template_id>/preview.jpg")
@staff_required
def poster_template_preview(poster_template_id: int):
    """A saved template drawn with sample data."""
    template = db.get_or_404(PosterTemplate, poster_template_id)
    key, data = services.template_preview(template)
    response = current_app.response_class(data, mimetype="image/jpeg")
    response.set_etag(key)
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)


@bp.post("/posters/preview")
@staff_required
def poster_preview():
    """The form's unsaved values drawn with sample data, as a JPEG (the 预览 button)."""
    template = None
    raw_id = request.form.get("template_id", "")
    if raw_id:
        template_id = bounded_int(raw_id)
        if template_id is None:
            abort(404)
        template = db.get_or_404(PosterTemplate, template_id)
    try:
        values = services.clean_template(
            {**request.form, "name": request.form.get("name") or "预览"},
            template.kind if template else None,
        )
        checked = _uploaded_background()
    except services.PosterError as err:
        # Plain text: the preview pane (or a new tab without JS) shows the reason as is.
        return err.message, err.status, {"Content-Type": "text/plain; charset=utf-8"}
    background: Path | Image.Image | None = None
    if checked is not None:
        background = Image.open(io.BytesIO(checked.data))
    elif template is not None and request.form.get("remove_background") != "1":
        background = services.upload_path(template.background_image)
    style = PosterStyle(
        layout=values.layout,
        background_color=values.background_color,
        accent_color=values.accent_color,
        background_image=background,
        slogan=values.slogan,
    )
    response = current_app.response_class(
        services.preview_poster(values.kind, style), mimetype="image/jpeg"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
