"""What the distributor centre (H5 pages and the customer JSON API) reads and does.

Joining (open / by application / by purchase threshold), the share links, the count of
the distributor's customers and their withdrawals (the customer and team lists are
``customers.py`` and ``members.py``). Every query is keyed by the
distributor's own id: the caller finds it from the signed-in user, never from input, so
nobody can read another distributor's customers, team or money. Services flush; the
edge commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from app.core.models import StatusChange
from app.core.money import format_yuan
from app.core.status import record_creation
from app.core.time import utcnow
from app.distribution.binding import current_binding
from app.distribution.distributors import (
    DistributionError,
    create_distributor,
    distributor_for_user,
    get_distribution_settings,
)
from app.distribution.joining import paid_purchases_fen
from app.distribution.models import (
    Binding,
    DistributionSettings,
    Distributor,
    RefTouch,
    Withdrawal,
)
from app.extensions import db

PER_PAGE = 20
JOIN_MODE_LABELS = {"open": "自由加入", "apply": "申请审核", "threshold": "消费满额自动成为"}
STATUS_LABELS = {
    "active": "正常",
    "pending": "审核中",
    "rejected": "未通过",
    "disabled": "已停用",
}


# --- share links ------------------------------------------------------------------------


def share_url(base_url: str, code: str, path: str = "/") -> str:
    """A link that carries the distributor's code: ``{base}{path}?ref=CODE``."""
    sep = "&" if "?" in path else "?"
    return f"{base_url.rstrip('/')}{path}{sep}ref={quote(code)}"


def product_share_url(base_url: str, code: str, product_id: int) -> str:
    """The share link of one product: ``{base}/product/ID?ref=CODE``."""
    return share_url(base_url, code, f"/product/{product_id}")


# --- joining ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinState:
    """Where a customer stands with joining, for the join page and the API."""

    settings: DistributionSettings
    distributor: Distributor | None
    paid_fen: int  # cumulative paid purchases (threshold mode), 0 otherwise
    rejection_reason: str

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def threshold_reached(self) -> bool:
        return self.paid_fen >= self.settings.join_threshold_fen


def join_state(user_id: int) -> JoinState:
    """The settings, the user's distributor row (any status) and the threshold progress."""
    settings = get_distribution_settings()
    distributor = distributor_for_user(user_id)
    paid = paid_purchases_fen(user_id) if settings.join_mode == "threshold" else 0
    reason = ""
    if distributor is not None and distributor.status == "rejected":
        reason = (
            db.session.scalar(
                select(StatusChange.reason)
                .where(
                    StatusChange.subject == "distributor",
                    StatusChange.subject_id == distributor.id,
                    StatusChange.to_status == "rejected",
                )
                .order_by(StatusChange.id.desc())
                .limit(1)
            )
            or ""
        )
    return JoinState(settings, distributor, paid, reason)


def inviter_for(user_id: int) -> Distributor | None:
    """Who invited the user: the distributor they are bound to, else the last ref they
    arrived with (bind-on-first-payment keeps refs unbound until a payment). Active only."""
    binding = current_binding(user_id)
    candidate_id = binding.distributor_id if binding is not None else None
    if candidate_id is None:
        touch = db.session.get(RefTouch, user_id)
        candidate_id = touch.distributor_id if touch is not None else None
    if candidate_id is None:
        return None
    candidate = db.session.get(Distributor, candidate_id)
    if candidate is None or candidate.status != "active" or candidate.user_id == user_id:
        return None
    return candidate


def apply_to_join(user_id: int) -> Distributor:
    """Become a distributor (open mode), apply for it (apply mode: pending until staff
    approve) or join once purchases reach the threshold. Never a fee.

    Already a distributor (active or pending): returns that row unchanged. Refuses with
    ``DistributionError``: distribution switched off, a rejected or disabled distributor,
    purchases below the threshold. Joins under the inviter (``inviter_for``). Flushes.
    """
    settings = get_distribution_settings()
    existing = distributor_for_user(user_id)
    if existing is not None:
        if existing.status in ("active", "pending"):
            return existing
        if existing.status == "rejected":
            raise DistributionError("application_rejected", "你的申请未通过审核", 409)
        raise DistributionError("distributor_disabled", "你的分销员资格已停用，请联系商家", 403)
    if not settings.enabled:
        raise DistributionError("distribution_disabled", "本店暂未开放分销", 403)
    status, why = "active", "自助加入"
    if settings.join_mode == "apply":
        status, why = "pending", "提交申请"
    elif settings.join_mode == "threshold":
        paid = paid_purchases_fen(user_id)
        if paid < settings.join_threshold_fen:
            raise DistributionError(
                "below_threshold",
                f"累计消费满 {format_yuan(settings.join_threshold_fen)} 即可成为分销员"
                f"（当前 {format_yuan(paid)}）",
                409,
            )
        why = "消费满额加入"
    parent = inviter_for(user_id)
    try:
        with db.session.begin_nested():
            distributor = create_distributor(user_id, parent, status)
    except IntegrityError:  # a double tap: the other request made the row first
        found = distributor_for_user(user_id)
        if found is None:
            raise
        return found
    record_creation("distributor", distributor.id, status, f"user:{user_id}", why)
    db.session.flush()
    return distributor


# --- customers (the list: customers.py) ---------------------------------------------------


def _live_binding(now: datetime):
    return or_(Binding.expires_at.is_(None), Binding.expires_at > now)


def customer_count(distributor_id: int, now: datetime | None = None) -> int:
    """How many customers are bound to the distributor now."""
    now = now or utcnow()
    return db.session.scalar(
        select(func.count())
        .select_from(Binding)
        .where(Binding.distributor_id == distributor_id, _live_binding(now))
    )


# --- withdrawals ------------------------------------------------------------------------


def withdrawals_of(
    distributor_id: int, page: int = 1, per_page: int = PER_PAGE
) -> list[Withdrawal]:
    """A page of the distributor's withdrawals, newest first."""
    return list(
        db.session.scalars(
            select(Withdrawal)
            .where(Withdrawal.distributor_id == distributor_id)
            .order_by(Withdrawal.id.desc())
            .limit(per_page)
            .offset((max(page, 1) - 1) * per_page)
        )
    )
