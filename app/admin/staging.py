"""Images for a product that is not saved yet: staged under a signed token, attached on save.

The new-product form carries a staging token: a random batch id signed with the app's
secret (itsdangerous, salt ``product-image-staging``, valid ``MAX_AGE`` seconds). Images
chosen on that form are checked and re-encoded like gallery uploads (app/admin/images.py),
written under UPLOAD_DIR and recorded as ``StagedImage`` rows of the batch, either at once
(the page's script posts each choice to ``/admin/products/staged-images``) or with the
form's own POST (no script). A form that fails validation shows its staged images again,
so nothing is chosen twice. Saving the product moves the batch into its gallery in the
order staged. Batches never saved are removed (rows and files) after ``MAX_AGE``, the next
time anything is staged.

A token cannot be forged (signature) nor reused for long (age); the batch id in it is
random, so one form never sees another's images. Functions here flush; callers commit.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from app.admin.images import MAX_IMAGES_PER_PRODUCT, CheckedImage, remove_files, store_file
from app.catalog.models import Product, ProductImage, StagedImage
from app.catalog.services import CatalogError
from app.core.time import utcnow
from app.extensions import db

SALT = "product-image-staging"
MAX_AGE = 24 * 3600


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)


def new_token() -> str:
    """A fresh staging token for one new-product form."""
    return _signer().dumps(secrets.token_hex(16))


def batch_of(token: str | None) -> str | None:
    """The batch id inside ``token``, or None when it is missing, forged or too old."""
    if not token or len(token) > 200:
        return None
    try:
        batch = _signer().loads(token, max_age=MAX_AGE)
    except BadSignature:  # also SignatureExpired
        return None
    return batch if isinstance(batch, str) and len(batch) == 32 else None


def staged(batch: str) -> list[StagedImage]:
    """The batch's images in the order staged."""
    return list(
        db.session.scalars(
            select(StagedImage).where(StagedImage.batch == batch).order_by(StagedImage.id)
        )
    )


def stage(batch: str, images: list[CheckedImage], upload_dir: str) -> tuple[list, list[Path]]:
    """Write checked images and record them in ``batch``; returns (rows, written paths) so
    the caller can remove the files if its commit fails. CatalogError past the gallery's
    limit."""
    if len(staged(batch)) + len(images) > MAX_IMAGES_PER_PRODUCT:
        raise CatalogError(f"每个商品最多 {MAX_IMAGES_PER_PRODUCT} 张图片", "images")
    rows, written = [], []
    try:
        for checked in images:
            path = store_file(checked, upload_dir)
            written.append(path)
            row = StagedImage(
                batch=batch, filename=path.name, width=checked.width, height=checked.height
            )
            db.session.add(row)
            rows.append(row)
        db.session.flush()
    except Exception:
        remove_files(written)
        raise
    return rows, written


def unstage(batch: str, staged_id: int, upload_dir: str) -> Path | None:
    """Drop one staged image of ``batch``; returns its file to delete after the commit."""
    row = db.session.get(StagedImage, staged_id)
    if row is None or row.batch != batch:
        return None
    db.session.delete(row)
    db.session.flush()
    return Path(upload_dir) / row.filename


def attach(product: Product, batch: str) -> int:
    """Move the batch's images to the end of ``product``'s gallery; returns how many."""
    rows = staged(batch)
    if len(product.images) + len(rows) > MAX_IMAGES_PER_PRODUCT:
        raise CatalogError(f"每个商品最多 {MAX_IMAGES_PER_PRODUCT} 张图片", "images")
    next_sort = max((img.sort for img in product.images), default=-1) + 1
    for offset, row in enumerate(rows):
        product.images.append(
            ProductImage(
                filename=row.filename, width=row.width, height=row.height, sort=next_sort + offset
            )
        )
        db.session.delete(row)
    db.session.flush()
    return len(rows)


def expired(upload_dir: str) -> list[Path]:
    """Delete batches older than MAX_AGE; returns their files to remove after the commit."""
    cutoff = utcnow() - timedelta(seconds=MAX_AGE)
    rows = list(db.session.scalars(select(StagedImage).where(StagedImage.created_at < cutoff)))
    for row in rows:
        db.session.delete(row)
    db.session.flush()
    return [Path(upload_dir) / row.filename for row in rows]
