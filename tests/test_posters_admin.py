"""Poster templates in the admin, through the real forms: list, create with a background
picture (checked like product images), edit (version up), make active per kind, and the
preview of unsaved values with sample data."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.posters.models import PosterTemplate
from tests.support.admin import fresh_client, post, text
from tests.support.poster import decode_qr, open_jpeg


@pytest.fixture
def client(app):
    return fresh_client(app)


@pytest.fixture
def staff_client(client, login_as, make):
    login_as(client, make.staff("poster-clerk"))
    return client


def _picture(colour=(30, 90, 200), size=(750, 1334), fmt="PNG") -> io.BytesIO:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt)
    out.seek(0)
    return out


FORM = {
    "kind": "shop",
    "name": "双十一红",
    "layout": "immersive",
    "background_color": "#c81e2a",
    "accent_color": "#FFFFFF",
    "slogan": "全场好物 限时特惠",
}


def _templates() -> list[PosterTemplate]:
    db.session.rollback()
    return list(db.session.scalars(select(PosterTemplate).order_by(PosterTemplate.id)))


def test_list_page_shows_both_kinds_and_the_default(staff_client):
    html = text(staff_client.get("/admin/posters"))
    assert "店铺海报" in html and "商品海报" in html and "默认样式" in html
    assert "推广海报" in text(staff_client.get("/admin/"))  # in the nav


def test_create_with_a_background_picture_then_edit_and_activate(app, staff_client):
    response = post(
        staff_client,
        "/admin/posters/new",
        {**FORM, "background": (_picture(), "bg.png")},
        token_from="/admin/posters/new",
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, text(response)
    (template,) = _templates()
    assert (template.kind, template.layout, template.version) == ("shop", "immersive", 1)
    assert template.background_color == "#C81E2A" and not template.active
    stored = Path(app.config["UPLOAD_DIR"], template.background_image)
    assert stored.exists() and stored.name.startswith("poster-bg-")

    preview = staff_client.get(f"/admin/posters/{template.id}/preview.jpg")
    assert preview.status_code == 200 and preview.mimetype == "image/jpeg"
    poster = open_jpeg(preview.data)
    r, _g, b = poster.getpixel((20, 620))  # the background picture, not the colour
    assert b > 150 and r < 80

    edit = post(
        staff_client,
        f"/admin/posters/{template.id}/edit",
        {**FORM, "kind": "product", "name": "改名", "remove_background": "1"},
        token_from=f"/admin/posters/{template.id}/edit",
    )
    assert edit.status_code == 302
    (template,) = _templates()
    assert (template.name, template.kind, template.version) == ("改名", "shop", 2)
    assert template.background_image is None and not stored.exists()

    post(staff_client, f"/admin/posters/{template.id}/activate", token_from="/admin/posters")
    second = PosterTemplate(kind="shop", name="第二个", layout="classic")
    db.session.add(second)
    db.session.commit()
    post(staff_client, f"/admin/posters/{second.id}/activate", token_from="/admin/posters")
    active = {t.name: t.active for t in _templates()}
    assert active == {"改名": False, "第二个": True}
    assert "使用中" in text(staff_client.get("/admin/posters"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("background_color", "red", "#RRGGBB"),
        ("accent_color", "#12345", "#RRGGBB"),
        ("layout", "fancy", "版式"),
        ("name", "", "模板名称"),
        ("slogan", "好" * 65, "64"),
    ],
)
def test_bad_values_come_back_on_the_form(staff_client, field, value, message):
    response = post(
        staff_client,
        "/admin/posters/new",
        {**FORM, field: value},
        token_from="/admin/posters/new",
    )
    assert response.status_code == 422
    assert message in text(response)
    assert _templates() == []


def test_a_fake_background_picture_is_refused_and_nothing_is_kept(app, staff_client):
    before = set(Path(app.config["UPLOAD_DIR"]).iterdir())
    response = post(
        staff_client,
        "/admin/posters/new",
        {**FORM, "background": (io.BytesIO(b"<svg></svg>"), "bg.png")},
        token_from="/admin/posters/new",
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "不是 JPEG" in text(response)
    assert _templates() == [] and set(Path(app.config["UPLOAD_DIR"]).iterdir()) == before


def test_preview_draws_the_unsaved_form_with_sample_data(app, staff_client):
    response = post(
        staff_client,
        "/admin/posters/preview",
        {**FORM, "kind": "product", "layout": "minimal", "background_color": "#0A7A3B"},
        token_from="/admin/posters/new",
    )
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    poster = open_jpeg(response.data)
    r, g, b = poster.getpixel((10, 10))
    assert g > 100 and r < 40  # the typed colour, though nothing was saved
    assert decode_qr(response.data).startswith(app.config["PUBLIC_BASE_URL"])
    assert _templates() == []

    with_upload = post(
        staff_client,
        "/admin/posters/preview",
        {**FORM, "background": (_picture((250, 200, 0), fmt="JPEG"), "bg.jpg")},
        token_from="/admin/posters/new",
        content_type="multipart/form-data",
    )
    assert with_upload.status_code == 200
    r, g, b = open_jpeg(with_upload.data).getpixel((10, 10))
    assert r > 200 and b < 60

    bad = post(
        staff_client,
        "/admin/posters/preview",
        {**FORM, "background_color": "nope"},
        token_from="/admin/posters/new",
    )
    assert bad.status_code == 422 and "背景色" in bad.get_data(as_text=True)


def test_edit_form_prefills_and_unknown_template_is_404(staff_client):
    template = PosterTemplate(kind="product", name="蓝色", layout="minimal", slogan="标语")
    db.session.add(template)
    db.session.commit()
    html = text(staff_client.get(f"/admin/posters/{template.id}/edit"))
    assert "蓝色" in html and "标语" in html and "商品海报" in html
    assert staff_client.get("/admin/posters/99999/edit").status_code == 404
    assert staff_client.get("/admin/posters/99999/preview.jpg").status_code == 404
