"""Invite rewards (邀请奖励): a fixed reward to the inviter once per invitee, for a real sale.

Rule. When a distributor's direct invitee (an active distributor whose ``parent_id`` is
them) has a *first paid purchase* — their earliest paid order not refunded in full — the
inviter (if active) earns ``IncentiveSettings.invite_reward_fen`` as one pending
``invite_reward`` entry keyed ``invite:<invitee>`` (once per invitee, however often the
events run). Joining alone never earns anything: no sale, no reward (paying per head is
pyramid selling). The entry carries the purchase's ``order_id`` so the centre can say why
it is not available yet.

Refund. If that purchase is refunded in full before the reward settles, the reward is
reversed (``reverse_reward``, app/ledger/entries.py). The key stays used: the reward is
once per invitee, so a later purchase of the same invitee earns nothing more. A partial
refund keeps it (a real sale remains).

Settlement. Like the purchase's commissions: ``settlement_eligible`` (app/ledger/
settlement.py) on the purchase, run by the incentives job.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, cast, exists, literal, select

from app.core.sql import single_row
from app.core.time import utcnow
from app.distribution.distributors import distributor_for_user
from app.distribution.models import Distributor
from app.extensions import db
from app.incentives.models import IncentiveSettings
from app.ledger.entries import reverse_reward, settle_reward, write_reward
from app.ledger.holds import not_held
from app.ledger.kinds import INVITE_REWARD, PENDING
from app.ledger.models import LedgerEntry
from app.ledger.settlement import settle_after_for, settlement_eligible
from app.orders.models import Order


def get_incentive_settings() -> IncentiveSettings:
    """The single settings row (id 1), created with defaults when first read (race-safe)."""
    return single_row(IncentiveSettings)


MAX_INVITE_REWARD_FEN = 100_000_00


class IncentiveSettingsError(ValueError):
    """Incentive settings that cannot be saved, with a Chinese message."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def update_incentive_settings(
    settings: IncentiveSettings, invite_enabled: bool, invite_fen: int, leaderboards: bool
) -> IncentiveSettings:
    """Save the invite reward (on/off, amount in fen) and the leaderboard switch; flushes.

    The one place these rules live, for the admin page and the Open API alike.
    """
    if isinstance(invite_fen, bool) or not isinstance(invite_fen, int) or invite_fen < 0:
        raise IncentiveSettingsError("邀请奖励金额：须为不小于 0 的整数（分）")
    if invite_fen > MAX_INVITE_REWARD_FEN:
        raise IncentiveSettingsError("邀请奖励金额：金额过大")
    if invite_enabled and invite_fen <= 0:
        raise IncentiveSettingsError("开启邀请奖励时金额必须大于 0")
    settings.invite_reward_enabled = invite_enabled
    settings.invite_reward_fen = invite_fen
    settings.leaderboards_enabled = leaderboards
    db.session.flush()
    return settings


def first_purchase(user_id: int) -> Order | None:
    """The customer's earliest paid order that is not refunded in full."""
    return db.session.scalar(
        select(Order)
        .where(
            Order.user_id == user_id,
            Order.paid_at.is_not(None),
            Order.items_fen > Order.refunded_fen,
        )
        .order_by(Order.paid_at, Order.id)
        .limit(1)
    )


def reward_key(invitee_id: int) -> str:
    """The once-only key of the invite reward for ``invitee_id``."""
    return f"invite:{invitee_id}"


def evaluate_invitee(invitee: Distributor, now: datetime | None = None) -> int | None:
    """Write the inviter's reward if the invitee qualifies (flushes); the new entry's id."""
    settings = get_incentive_settings()
    if not settings.invite_reward_enabled or settings.invite_reward_fen <= 0:
        return None
    if invitee.parent_id is None or invitee.status != "active":
        return None
    inviter = db.session.get(Distributor, invitee.parent_id)
    if inviter is None or inviter.status != "active":
        return None
    order = first_purchase(invitee.user_id)
    if order is None:
        return None
    return write_reward(
        distributor_id=inviter.id,
        kind=INVITE_REWARD,
        amount_fen=settings.invite_reward_fen,
        reward_key=reward_key(invitee.id),
        rule_source=f"invite:{invitee.id}",
        note=f"邀请的分销员首单付款（订单 {order.number}）",
        order_id=order.id,
        settle_after=settle_after_for(order.id),
        now=now,
    )


def on_order_paid(order: Order) -> int | None:
    """The paid-order event: the buyer may be someone's invitee making a first purchase."""
    invitee = distributor_for_user(order.user_id)
    return evaluate_invitee(invitee) if invitee is not None else None


def on_refund(order: Order, refund_id: int | None = None) -> list[int]:
    """The refund event: reverse pending invite rewards of an order now refunded in full."""
    if order.items_fen > order.refunded_fen:
        return []
    written = []
    rewards = db.session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.kind == INVITE_REWARD,
            LedgerEntry.order_id == order.id,
            LedgerEntry.state == PENDING,
        )
    ).all()
    for entry in rewards:
        done = reverse_reward(entry, f"邀请首单（订单 {order.number}）已全额退款", refund_id)
        if done is not None:
            written.append(done)
    db.session.flush()
    return written


def evaluate_all() -> list[int]:
    """Every active invitee without a reward yet (the periodic job; flushes)."""
    settings = get_incentive_settings()
    if not settings.invite_reward_enabled or settings.invite_reward_fen <= 0:
        return []
    key = literal("invite:", String) + cast(Distributor.id, String)
    rewarded = exists().where(LedgerEntry.reward_key == key)
    bought = exists().where(
        Order.user_id == Distributor.user_id,
        Order.paid_at.is_not(None),
        Order.items_fen > Order.refunded_fen,
    )
    invitees = db.session.scalars(
        select(Distributor).where(
            Distributor.parent_id.is_not(None),
            Distributor.status == "active",
            bought,
            ~rewarded,
        )
    ).all()
    written = [i for i in (evaluate_invitee(d) for d in invitees) if i is not None]
    db.session.flush()
    return written


def settle_invite_rewards(now: datetime | None = None) -> int:
    """Settle pending invite rewards whose purchase ``settlement_eligible`` allows (the
    same rule as that purchase's commissions; flushes); return how many."""
    now = now or utcnow()
    due = db.session.scalars(
        select(LedgerEntry.id)
        .join(Order, Order.id == LedgerEntry.order_id)
        .where(
            LedgerEntry.kind == INVITE_REWARD,
            LedgerEntry.state == PENDING,
            settlement_eligible(now),
            not_held(),  # held for risk review (app/ledger/holds.py): waits for staff
        )
    ).all()
    settled = sum(settle_reward(entry_id, now) for entry_id in due)
    db.session.flush()
    return settled
