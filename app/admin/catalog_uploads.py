"""JSON doors of the product editor's script: staged gallery images and description images.

- ``POST /admin/products/staged-images`` (token, images): check and stage images for a
  product not saved yet (app/admin/staging.py); answers the batch's images.
- ``POST /admin/products/staged-images/delete`` (token, id): drop one staged image.
- ``POST /admin/products/description-images`` (image): check, re-encode and store one image
  for the rich description; answers its ``/media/`` URL, which the sanitiser accepts.

Uploads are checked exactly like gallery images (app/admin/images.py). Errors are JSON
``{"error": {"code", "message"}}`` with a 4xx status. CSRF: the form's ``csrf_token``.
"""

from __future__ import annotations

from flask import current_app, jsonify, request, url_for

from app.admin import bp, staging
from app.admin.decorators import staff_required
from app.admin.images import check_image, remove_files, store_file
from app.catalog.models import StagedImage
from app.catalog.services import CatalogError
from app.core.params import bounded_int
from app.extensions import db


def _error(code: str, message: str, status: int = 422):
    return jsonify({"error": {"code": code, "message": message}}), status


def _image_json(row: StagedImage) -> dict:
    return {
        "id": row.id,
        "url": url_for("core.media", filename=row.filename),
        "width": row.width,
        "height": row.height,
    }


def _batch_json(token: str, batch: str):
    return jsonify({"token": token, "images": [_image_json(r) for r in staging.staged(batch)]})


@bp.post("/products/staged-images")
@staff_required
def product_images_stage():
    """Stage the chosen images of a new product's form under its signed token."""
    token = request.form.get("token") or ""
    batch = staging.batch_of(token)
    if batch is None:
        return _error("invalid_staging_token", "页面已过期，请刷新后重新选择图片", 400)
    files = [f for f in request.files.getlist("images") if f and f.filename]
    if not files:
        return _error("no_image", "请选择要上传的图片")
    limit = current_app.config["MAX_IMAGE_BYTES"]
    upload_dir = current_app.config["UPLOAD_DIR"]
    try:
        checked = [check_image(f.stream.read(limit + 1), f.filename or "", limit) for f in files]
        old_files = staging.expired(upload_dir)
        _rows, written = staging.stage(batch, checked, upload_dir)
    except CatalogError as exc:
        db.session.rollback()
        return _error("invalid_image", exc.message)
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        remove_files(written)
        raise
    remove_files(old_files)
    return _batch_json(token, batch)


@bp.post("/products/staged-images/delete")
@staff_required
def product_images_unstage():
    """Drop one staged image (by ``id``) of the form's batch."""
    token = request.form.get("token") or ""
    batch = staging.batch_of(token)
    if batch is None:
        return _error("invalid_staging_token", "页面已过期，请刷新后重新选择图片", 400)
    staged_id = bounded_int(request.form.get("id"))
    upload_dir = current_app.config["UPLOAD_DIR"]
    path = staging.unstage(batch, staged_id, upload_dir) if staged_id else None
    if path is None:
        return _error("not_found", "图片不存在或已删除", 404)
    db.session.commit()
    remove_files([path])
    return _batch_json(token, batch)


@bp.post("/products/description-images")
@staff_required
def product_description_image():
    """Store one image for a product description; answers ``{"url": "/media/..."}``."""
    upload = request.files.get("image")
    if upload is None or not upload.filename:
        return _error("no_image", "请选择要插入的图片")
    limit = current_app.config["MAX_IMAGE_BYTES"]
    try:
        checked = check_image(upload.stream.read(limit + 1), upload.filename or "", limit)
    except CatalogError as exc:
        return _error("invalid_image", exc.message)
    path = store_file(checked, current_app.config["UPLOAD_DIR"])
    return jsonify(
        {
            "url": url_for("core.media", filename=path.name),
            "width": checked.width,
            "height": checked.height,
        }
    )
