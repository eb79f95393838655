"""Product image upload: real images accepted and re-encoded, anything else refused."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from app.catalog.models import ProductImage
from app.extensions import db
from tests.support.admin import csrf_token, fresh_client, post, text


@pytest.fixture
def client(app):
    """Overrides conftest's client: a fresh ``g`` per request (see FreshClient)."""
    return fresh_client(app)


@pytest.fixture
def staff_client(client, login_as, make):
    login_as(client, make.staff("clerk"))
    return client


@pytest.fixture
def product(make):
    return make.product("相框")


def image_bytes(fmt: str, size=(120, 80), color=(200, 30, 30), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt, **save)
    return out.getvalue()


def upload(client, product_id: int, *files: tuple[bytes, str]):
    token = csrf_token(client, f"/admin/products/{product_id}/edit")
    fields = MultiDict([("csrf_token", token)])
    for raw, name in files:
        fields.add("images", FileStorage(io.BytesIO(raw), filename=name))
    # Encoded in memory: the test client's own encoder spools big bodies to a temporary
    # file that nobody closes (a ResourceWarning, an error under filterwarnings=error).
    boundary, body = encode_multipart(fields)
    return client.post(
        f"/admin/products/{product_id}/images",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def stored_files(app) -> set[str]:
    return {p.name for p in Path(app.config["UPLOAD_DIR"]).iterdir()}


def image_count() -> int:
    return db.session.scalar(select(func.count(ProductImage.id)))


def test_png_and_jpeg_are_accepted_reencoded_and_served(app, staff_client, product):
    # A JPEG carrying EXIF (camera data) that must not survive re-encoding.
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    jpeg = image_bytes("JPEG", size=(300, 200), exif=exif.tobytes())
    png = image_bytes("PNG", size=(64, 64))
    response = upload(staff_client, product.id, (png, "a.png"), (jpeg, "photo.JPG"))
    assert response.status_code == 302, text(response)
    images = db.session.scalars(select(ProductImage).order_by(ProductImage.sort)).all()
    assert [(i.width, i.height, i.sort) for i in images] == [(64, 64, 0), (300, 200, 1)]
    png_row, jpeg_row = images
    assert png_row.filename.endswith(".png") and jpeg_row.filename.endswith(".jpg")
    assert png_row.filename not in ("a.png",) and len(png_row.filename) > 20  # random name
    stored = Path(app.config["UPLOAD_DIR"]) / jpeg_row.filename
    with Image.open(stored) as saved:
        assert saved.format == "JPEG"
        assert 0x010F not in saved.getexif()
    with staff_client.get(f"/media/{jpeg_row.filename}") as served:
        assert served.status_code == 200 and served.data == stored.read_bytes()
    page = text(staff_client.get(f"/admin/products/{product.id}/edit"))
    assert f"/media/{png_row.filename}" in page and "封面" in page


def test_webp_is_accepted(staff_client, product):
    response = upload(staff_client, product.id, (image_bytes("WEBP"), "x.webp"))
    assert response.status_code == 302
    assert db.session.scalar(select(ProductImage.filename)).endswith(".webp")


def test_text_file_renamed_jpg_is_refused(app, staff_client, product):
    before = stored_files(app)
    response = upload(
        staff_client, product.id, (b"just some text, not a picture\n" * 20, "cat.jpg")
    )
    assert response.status_code == 422
    assert "“cat.jpg”不是 JPEG、PNG 或 WebP 图片" in text(response)
    assert image_count() == 0 and stored_files(app) == before


def test_gif_is_refused_even_though_it_is_an_image(staff_client, product):
    response = upload(staff_client, product.id, (image_bytes("GIF"), "anim.png"))
    assert response.status_code == 422
    assert "不是 JPEG、PNG 或 WebP 图片" in text(response)
    assert image_count() == 0


def test_oversized_file_is_refused(app, staff_client, product):
    # Incompressible noise, so the PNG is really bigger than MAX_IMAGE_BYTES (5 MB).
    side = 1400
    noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=0)
    raw = out.getvalue()
    assert len(raw) > app.config["MAX_IMAGE_BYTES"]
    response = upload(staff_client, product.id, (raw, "huge.png"))
    assert response.status_code == 422
    assert "超过 5 MB" in text(response)
    assert image_count() == 0


def test_tiny_truncated_and_empty_images_are_refused(staff_client, product):
    tiny = upload(staff_client, product.id, (image_bytes("PNG", size=(10, 10)), "dot.png"))
    assert tiny.status_code == 422 and "太小" in text(tiny)
    truncated = image_bytes("PNG", size=(400, 400))[:200]
    broken = upload(staff_client, product.id, (truncated, "broken.png"))
    assert broken.status_code == 422
    assert "broken.png" in text(broken)
    empty = upload(staff_client, product.id, (b"", "empty.jpg"))
    assert empty.status_code == 422
    assert image_count() == 0


def test_one_bad_file_keeps_the_whole_batch_out(app, staff_client, product):
    before = stored_files(app)
    response = upload(
        staff_client, product.id, (image_bytes("PNG"), "good.png"), (b"nope", "bad.jpg")
    )
    assert response.status_code == 422
    assert "bad.jpg" in text(response)
    assert image_count() == 0 and stored_files(app) == before


def test_no_file_chosen(staff_client, product):
    token = csrf_token(staff_client, f"/admin/products/{product.id}/edit")
    response = staff_client.post(
        f"/admin/products/{product.id}/images",
        data={"csrf_token": token},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "请选择要上传的图片" in text(response)


def test_reorder_and_delete_images(app, staff_client, product):
    upload(
        staff_client,
        product.id,
        (image_bytes("PNG", color=(255, 0, 0)), "1.png"),
        (image_bytes("PNG", color=(0, 255, 0)), "2.png"),
        (image_bytes("PNG", color=(0, 0, 255)), "3.png"),
    )
    first, second, third = db.session.scalars(
        select(ProductImage).order_by(ProductImage.sort)
    ).all()
    ids = (first.id, second.id, third.id)
    url = f"/admin/products/{product.id}/images"
    response = post(staff_client, f"{url}/{third.id}/move", {"direction": "up"})
    assert response.status_code == 302
    db.session.expire_all()
    order = db.session.scalars(select(ProductImage.id).order_by(ProductImage.sort)).all()
    assert order == [ids[0], ids[2], ids[1]]

    path = Path(app.config["UPLOAD_DIR"]) / first.filename
    assert path.exists()
    response = post(staff_client, f"{url}/{ids[0]}/delete")
    assert response.status_code == 302
    assert db.session.get(ProductImage, ids[0]) is None
    assert not path.exists()


def test_image_of_another_product_is_404(staff_client, make, product):
    other = make.product("别的")
    upload(staff_client, other.id, (image_bytes("PNG"), "x.png"))
    image_id = db.session.scalar(select(ProductImage.id))
    response = post(staff_client, f"/admin/products/{product.id}/images/{image_id}/delete")
    assert response.status_code == 404
    assert db.session.get(ProductImage, image_id) is not None
