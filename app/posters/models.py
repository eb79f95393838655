"""Poster templates the merchant chooses from in the admin."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import UtcDateTime, utcnow
from app.extensions import db

POSTER_KINDS = ("shop", "product")


class PosterTemplate(db.Model):
    """A poster layout with its colours and optional background image.

    ``version`` goes up on every save, so cached posters made from the old design are
    never served again. At most one template per kind is ``active``.
    """

    __tablename__ = "poster_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # shop or product
    name: Mapped[str] = mapped_column(String(32))
    layout: Mapped[str] = mapped_column(String(32))  # key of a layout in app/posters/layouts.py
    background_color: Mapped[str] = mapped_column(String(7), default="#E4393C")
    accent_color: Mapped[str] = mapped_column(String(7), default="#FFFFFF")
    background_image: Mapped[str | None] = mapped_column(String(128))  # file under UPLOAD_DIR
    slogan: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
