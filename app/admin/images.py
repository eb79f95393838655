"""Product image uploads: checked by decoding them, re-encoded clean, stored by random name.

The type is what Pillow finds inside the file, never the extension or the browser's
content type. Re-encoding drops EXIF (GPS, camera data) and anything hidden after the
image data. Functions here take bytes and rows, not requests; the caller commits.
"""

from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from app.catalog.models import Product, ProductImage
from app.catalog.services import CatalogError
from app.extensions import db

ALLOWED_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
MIN_SIDE = 50
MAX_SIDE = 8000
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding
STORED_MAX_SIDE = 2000  # larger pictures are scaled down: phones need no more
MAX_IMAGES_PER_PRODUCT = 20


@dataclass
class CheckedImage:
    """An upload that passed the checks, re-encoded and ready to write."""

    data: bytes
    extension: str
    width: int
    height: int


def check_image(raw: bytes, name: str, max_bytes: int) -> CheckedImage:
    """Validate one uploaded file and return it re-encoded; CatalogError when refused."""
    label = f"“{name}”" if name else "图片"
    if not raw:
        raise CatalogError(f"{label}是空文件", "images")
    if len(raw) > max_bytes:
        raise CatalogError(f"{label}超过 {max_bytes // (1024 * 1024)} MB", "images")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as probe:
                fmt = probe.format
                width, height = probe.size
                if fmt not in ALLOWED_FORMATS:
                    raise CatalogError(f"{label}不是 JPEG、PNG 或 WebP 图片", "images")
                _check_size(label, width, height)
                probe.verify()  # structural check of the whole file
            # verify() leaves the image unusable: decode again for real.
            with Image.open(io.BytesIO(raw)) as image:
                image.load()
                return _reencode(image, fmt)
    except CatalogError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CatalogError(f"{label}不是 JPEG、PNG 或 WebP 图片", "images") from None
    except (OSError, SyntaxError, ValueError):  # truncated or corrupt image data
        raise CatalogError(f"{label}已损坏，无法读取", "images") from None


def _check_size(label: str, width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise CatalogError(f"{label}太小（至少 {MIN_SIDE}×{MIN_SIDE} 像素）", "images")
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise CatalogError(f"{label}尺寸过大（最长边不超过 {MAX_SIDE} 像素）", "images")


def _reencode(image: Image.Image, fmt: str) -> CheckedImage:
    image = ImageOps.exif_transpose(image)  # keep the photo upright once EXIF is gone
    image.thumbnail((STORED_MAX_SIDE, STORED_MAX_SIDE))
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True, progressive=True)
    elif fmt == "PNG":
        keep = "RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB"
        image.convert(keep).save(out, "PNG", optimize=True)
    else:
        keep = "RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB"
        image.convert(keep).save(out, "WEBP", quality=85)
    return CheckedImage(out.getvalue(), ALLOWED_FORMATS[fmt], image.width, image.height)


def store_file(checked: CheckedImage, upload_dir: str) -> Path:
    """Write one checked image under ``upload_dir`` by a random name; returns its path."""
    folder = Path(upload_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"p{secrets.token_hex(16)}{checked.extension}"
    path.write_bytes(checked.data)
    return path


def add_images(product: Product, images: list[CheckedImage], upload_dir: str) -> list[Path]:
    """Write checked images under ``upload_dir`` and add them to the end of the gallery.

    Returns the written paths so the caller can remove them if its commit fails.
    """
    if len(product.images) + len(images) > MAX_IMAGES_PER_PRODUCT:
        raise CatalogError(f"每个商品最多 {MAX_IMAGES_PER_PRODUCT} 张图片", "images")
    folder = Path(upload_dir)
    folder.mkdir(parents=True, exist_ok=True)
    next_sort = max((img.sort for img in product.images), default=-1) + 1
    written: list[Path] = []
    try:
        for offset, checked in enumerate(images):
            filename = f"p{secrets.token_hex(16)}{checked.extension}"
            path = folder / filename
            path.write_bytes(checked.data)
            written.append(path)
            product.images.append(
                ProductImage(
                    filename=filename,
                    width=checked.width,
                    height=checked.height,
                    sort=next_sort + offset,
                )
            )
        db.session.flush()
    except Exception:
        remove_files(written)
        raise
    return written


def move_image(product: Product, image: ProductImage, step: int) -> None:
    """Move ``image`` one place earlier (step -1) or later (+1) in the gallery."""
    ordered = sorted(product.images, key=lambda i: (i.sort, i.id))
    index = ordered.index(image)
    target = index + (1 if step > 0 else -1)
    if 0 <= target < len(ordered):
        ordered[index], ordered[target] = ordered[target], ordered[index]
    for sort, row in enumerate(ordered):  # renumber: old rows may share a sort value
        row.sort = sort
    db.session.flush()


def delete_image(image: ProductImage, upload_dir: str) -> Path:
    """Remove the image row; returns the file to delete once the caller has committed."""
    path = Path(upload_dir) / image.filename
    db.session.delete(image)
    db.session.flush()
    return path


def remove_files(paths: list[Path]) -> None:
    """Delete files, ignoring ones already gone."""
    for path in paths:
        path.unlink(missing_ok=True)
