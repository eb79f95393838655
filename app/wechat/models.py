"""Official-account tables: fans, seen messages (dedupe), distributor QR codes,
notification settings and the outbox of messages sent to WeChat."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import UtcDateTime, utcnow
from app.extensions import db


class WechatFan(db.Model):
    """A follower of the official account, by openid; linked to the customer with that openid."""

    __tablename__ = "wechat_fans"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    subscribed: Mapped[bool] = mapped_column(default=False)
    subscribed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    subscribe_scene: Mapped[str] = mapped_column(String(64), default="")
    qr_scene: Mapped[str] = mapped_column(String(64), default="")
    nickname: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class WechatMessageSeen(db.Model):
    """One row per message or event WeChat pushed, so a retry or duplicate is handled once.

    ``dedupe_key`` is ``msg:<MsgId>`` for messages and ``event:<FromUserName>:<CreateTime>``
    (plus the event name) for events, as WeChat advises.
    """

    __tablename__ = "wechat_messages_seen"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # text, subscribe, SCAN, CLICK, ...
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class DistributorQrcode(db.Model):
    """A distributor's parametric QR code (temporary or permanent), cached until it expires."""

    __tablename__ = "distributor_qrcodes"
    __table_args__ = (UniqueConstraint("distributor_id", "permanent"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    distributor_id: Mapped[int] = mapped_column(
        ForeignKey("distributors.id", ondelete="CASCADE"), index=True
    )
    permanent: Mapped[bool] = mapped_column(default=False)
    scene: Mapped[str] = mapped_column(String(64), index=True)
    ticket: Mapped[str] = mapped_column(String(256))
    url: Mapped[str] = mapped_column(String(256), default="")  # the QR's content URL
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # None = permanent
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class NotificationSetting(db.Model):
    """One notification kind: its template id and whether it is on (admin settings)."""

    __tablename__ = "notification_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), unique=True)  # order_paid, order_shipped, ...
    template_id: Mapped[str] = mapped_column(String(64), default="")
    enabled: Mapped[bool] = mapped_column(default=False)
    # Extra recipients, one openid per line (staff who get "new order paid").
    recipients: Mapped[str] = mapped_column(Text, default="", server_default="")


class OutboundMessage(db.Model):
    """A message to send to WeChat (template or customer-service), sent by an RQ job.

    ``dedupe_key`` (e.g. ``order_paid:123:staff:4``) makes "notify once" a unique key.
    """

    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_messages_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    openid: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, default="")  # JSON sent to WeChat
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
