"""Tables of the customer pages: search history and hot terms, the 联系客服 contact."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import UtcDateTime, utcnow
from app.extensions import db


class SearchTerm(db.Model):
    """How often a term was searched and found something: the source of 热门搜索."""

    __tablename__ = "search_terms"

    id: Mapped[int] = mapped_column(primary_key=True)
    term: Mapped[str] = mapped_column(String(64), unique=True)
    count: Mapped[int] = mapped_column(default=0)
    last_searched_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RecentSearch(db.Model):
    """One customer's recent search (one row per term, its time moved on each search)."""

    __tablename__ = "recent_searches"
    __table_args__ = (UniqueConstraint("user_id", "term"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    term: Mapped[str] = mapped_column(String(64))
    searched_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class CustomerService(db.Model):
    """What 联系客服 on 我的 shows (one row, id 1): any of a phone number, a WeChat ID,
    a QR image (an uploaded file name) and the official account's 客服 message."""

    __tablename__ = "customer_service"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), default="")
    wechat_id: Mapped[str] = mapped_column(String(64), default="")
    qr_image: Mapped[str] = mapped_column(String(255), default="")
    kefu_enabled: Mapped[bool] = mapped_column(default=False)
    kefu_note: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)

    @property
    def configured(self) -> bool:
        """Whether the merchant set any way to reach them."""
        return bool(self.phone or self.wechat_id or self.qr_image or self.kefu_enabled)
