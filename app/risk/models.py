"""Risk tables: flags raised by the checks, and the settings (one row)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.time import UtcDateTime, utcnow
from app.extensions import db

SHARED_RECEIVER = "shared_receiver"
SHARED_PAYER = "shared_payer"
SHARED_DEVICE = "shared_device"
RECEIVER_RING = "receiver_ring"
REFUND_RATE = "refund_rate"
BINDING_BURST = "binding_burst"
BINDING_IP_BURST = "binding_ip_burst"
THRESHOLD_REFUND = "threshold_refund"

SIGNALS = (
    SHARED_RECEIVER,
    SHARED_PAYER,
    SHARED_DEVICE,
    RECEIVER_RING,
    REFUND_RATE,
    BINDING_BURST,
    BINDING_IP_BURST,
    THRESHOLD_REFUND,
)

SIGNAL_LABELS = {
    SHARED_RECEIVER: "买家与分销员收货信息相同",
    SHARED_PAYER: "买家与分销员为同一微信付款人",
    SHARED_DEVICE: "买家与分销员同一设备/网络登录",
    RECEIVER_RING: "多个买家共用同一收货信息",
    REFUND_RATE: "结算后退款率远高于全店",
    BINDING_BURST: "短时间内大量新绑定",
    BINDING_IP_BURST: "同一 IP 大量新绑定",
    THRESHOLD_REFUND: "刚达任务/等级门槛后退款",
}


class RiskFlag(db.Model):
    """One signal raised on one subject. ``subject_key`` is the signal's own key (e.g.
    ``order:12:d:3``, ``dist:3:burst:2026120710``): unique with the signal, so a rerun
    of the checks flags once. ``evidence`` is what staff see side by side."""

    __tablename__ = "risk_flags"
    __table_args__ = (
        UniqueConstraint("signal", "subject_key"),
        Index("ix_risk_flags_distributor", "distributor_id", "id"),
        Index("ix_risk_flags_order", "order_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    signal: Mapped[str] = mapped_column(String(32))
    subject_key: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    distributor_id: Mapped[int | None] = mapped_column(ForeignKey("distributors.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    summary: Mapped[str] = mapped_column(String(200), default="")
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RiskSettings(db.Model):
    """Each signal on or off and its thresholds (row id 1). The defaults raise no flag on
    the demo data: an honest shop has no ring of buyers on one receiver and no bursts."""

    __tablename__ = "risk_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    shared_receiver_on: Mapped[bool] = mapped_column(default=True)
    shared_payer_on: Mapped[bool] = mapped_column(default=True)
    shared_device_on: Mapped[bool] = mapped_column(default=True)
    receiver_ring_on: Mapped[bool] = mapped_column(default=True)
    ring_min_buyers: Mapped[int] = mapped_column(default=3)
    refund_rate_on: Mapped[bool] = mapped_column(default=True)
    refund_rate_min_orders: Mapped[int] = mapped_column(default=10)
    refund_rate_factor_pct: Mapped[int] = mapped_column(default=300)  # × the shop's rate
    refund_rate_floor_bp: Mapped[int] = mapped_column(default=2000)  # and at least 20%
    binding_burst_on: Mapped[bool] = mapped_column(default=True)
    binding_burst_per_hour: Mapped[int] = mapped_column(default=50)
    binding_ip_per_hour: Mapped[int] = mapped_column(default=10)
    threshold_refund_on: Mapped[bool] = mapped_column(default=True)
    threshold_window_hours: Mapped[int] = mapped_column(default=72)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
