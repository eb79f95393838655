"""The risk checks. ``jobs/risk.py`` runs them after a paid order's follow-up, after a
refund, and in a periodic catch-up; never on a request path.

Per paid order and each distributor earning on it (not the buyer themself):

- ``shared_receiver``: the order's receiver phone or normalised address is one the
  distributor uses (their saved addresses, the receivers of their own orders);
- ``shared_payer``: WeChat Pay says the distributor's openid paid the buyer's order
  (the paid notice's ``payer``);
- ``shared_device``: buyer and distributor signed in from the same address with the same
  browser (``accounts/traces.py``);
- ``receiver_ring``: at least ``ring_min_buyers`` different buyers of the distributor
  ship to one phone or one normalised address: every order of the ring is flagged.

Per distributor: ``refund_rate`` (customers' refunds after settlement far above the
shop's), ``binding_burst`` / ``binding_ip_burst`` (new bindings in one hour, in all or from
one address), ``threshold_refund`` (an order followed within the window by a task reward
or a grade upgrade, then refunded).

A flag is one ``RiskFlag`` row, unique per (signal, subject): a rerun flags once. A flag
about an order holds the distributor's earnings on it (``ledger.holds.hold``); a flag
about a distributor holds their earnings still pending. Every function flushes only.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import func, or_, select

from app.accounts.models import User
from app.accounts.traces import SignInTrace
from app.core.sql import dialect_insert, single_row
from app.core.time import utcnow
from app.distribution.models import Binding, Distributor
from app.extensions import db
from app.incentives.models import GradeChange
from app.ledger.holds import hold
from app.ledger.kinds import (
    LEVEL_KINDS,
    LINE_EARNING_KINDS,
    PENDING,
    REVERSAL,
    SETTLED,
    TASK_REWARD,
    WITHDRAWN,
)
from app.ledger.models import LedgerEntry
from app.orders.models import Address, Order, PaymentTransaction
from app.risk.models import (
    BINDING_BURST,
    BINDING_IP_BURST,
    RECEIVER_RING,
    REFUND_RATE,
    SHARED_DEVICE,
    SHARED_PAYER,
    SHARED_RECEIVER,
    SIGNAL_LABELS,
    THRESHOLD_REFUND,
    RiskFlag,
    RiskSettings,
)

_PUNCTUATION = re.compile(r"[\s\-_,，.。·#/\\()（）]+")


# A check compares one order with hundreds of a distributor's orders, the same few
# thousand texts again and again (the tree's distributors share their customers' orders):
# each text is normalised once per worker process.
@lru_cache(maxsize=8192)
def normalise_phone(phone: str | None) -> str:
    """Digits only, the last 11 (``+86 138-0000-0000`` is ``13800000000``)."""
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", phone or "") if ch.isdecimal())
    return digits[-11:]


@lru_cache(maxsize=8192)
def normalise_address(province: str, city: str, district: str, detail: str) -> str:
    """One comparable text: full-width folded, spaces and punctuation dropped, lower case."""
    text = unicodedata.normalize("NFKC", f"{province}{city}{district}{detail}")
    return _PUNCTUATION.sub("", text).lower()


def order_address(order: Order) -> str:
    """The order's receiver address, normalised (``normalise_address``)."""
    return normalise_address(order.province, order.city, order.district, order.address_detail)


def get_risk_settings() -> RiskSettings:
    """The settings row, created with the defaults on first use (race-safe)."""
    return single_row(RiskSettings)


# --- flags ----------------------------------------------------------------------------------


def raise_flag(
    signal: str,
    subject_key: str,
    *,
    order_id: int | None = None,
    distributor_id: int | None = None,
    user_id: int | None = None,
    evidence: dict | None = None,
    now: datetime | None = None,
) -> int | None:
    """Write the flag once; its id when new, None when it was raised before."""
    return db.session.scalar(
        dialect_insert(RiskFlag)
        .values(
            signal=signal,
            subject_key=subject_key[:64],
            order_id=order_id,
            distributor_id=distributor_id,
            user_id=user_id,
            summary=SIGNAL_LABELS[signal],
            evidence=evidence or {},
            created_at=now or utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["signal", "subject_key"])
        .returning(RiskFlag.id)
    )


def _flag_order(signal, order: Order, distributor_id: int, evidence: dict, now) -> bool:
    return _flag_order_id(signal, order.id, order.user_id, distributor_id, evidence, now)


def _flag_order_id(
    signal, order_id: int, buyer_id: int, distributor_id: int, evidence: dict, now
) -> bool:
    """Flag the distributor's earnings on the order (once) and hold them."""
    new = raise_flag(
        signal,
        f"order:{order_id}:d:{distributor_id}",
        order_id=order_id,
        distributor_id=distributor_id,
        user_id=buyer_id,
        evidence=evidence,
        now=now,
    )
    hold(order_id, distributor_id, SIGNAL_LABELS[signal], now)
    return new is not None


def _hold_pending(distributor_id: int, reason: str, now) -> int:
    """Hold every order on which the distributor still has pending earnings."""
    order_ids = db.session.scalars(
        select(LedgerEntry.order_id)
        .where(
            LedgerEntry.distributor_id == distributor_id,
            LedgerEntry.state == PENDING,
            LedgerEntry.order_id.is_not(None),
            LedgerEntry.amount_fen > 0,
        )
        .distinct()
    ).all()
    return sum(1 for order_id in order_ids if hold(order_id, distributor_id, reason, now))


# --- per order -------------------------------------------------------------------------------


def earning_distributors(order_id: int) -> list[Distributor]:
    """Distributors with a positive earning on the order (line earnings and rewards)."""
    ids = db.session.scalars(
        select(LedgerEntry.distributor_id)
        .where(LedgerEntry.order_id == order_id, LedgerEntry.amount_fen > 0)
        .distinct()
    ).all()
    if not ids:
        return []
    return list(db.session.scalars(select(Distributor).where(Distributor.id.in_(ids))))


def receivers_of(user_id: int) -> tuple[set[str], set[str]]:
    """(phones, addresses) a user ships to: saved addresses and their own orders."""
    phones: set[str] = set()
    places: set[str] = set()
    for a in db.session.scalars(select(Address).where(Address.user_id == user_id)):
        phones.add(normalise_phone(a.phone))
        places.add(normalise_address(a.province, a.city, a.district, a.detail))
    for phone, *place in db.session.execute(
        select(
            Order.receiver_phone, Order.province, Order.city, Order.district, Order.address_detail
        )
        .where(Order.user_id == user_id, Order.paid_at.is_not(None))
        .order_by(Order.id.desc())
        .limit(200)
    ):
        phones.add(normalise_phone(phone))
        places.add(normalise_address(*place))
    phones.discard("")
    places.discard("")
    return phones, places


def payer_openid(order_id: int) -> str | None:
    """The openid WeChat Pay says paid the order (the paid notice's ``payer``), if known."""
    for payload in db.session.scalars(
        select(PaymentTransaction.payload).where(
            PaymentTransaction.order_id == order_id, PaymentTransaction.kind == "paid"
        )
    ):
        payer = (payload or {}).get("payer") if isinstance(payload, dict) else None
        if isinstance(payer, dict) and isinstance(payer.get("openid"), str):
            return payer["openid"]
    return None


def shared_devices(user_a: int, user_b: int) -> list[tuple[str, str]]:
    """(address, browser hash) pairs both users signed in from."""
    a = SignInTrace.__table__.alias("a")
    b = SignInTrace.__table__.alias("b")
    rows = db.session.execute(
        select(a.c.ip, a.c.ua_hash)
        .join(b, (a.c.ip == b.c.ip) & (a.c.ua_hash == b.c.ua_hash))
        .where(a.c.user_id == user_a, b.c.user_id == user_b, a.c.ip != "")
        .limit(5)
    ).all()
    return [(ip, ua) for ip, ua in rows]


# The most recent orders a ring check compares with (a distributor with thousands of
# customers in one district would otherwise be read whole on every order).
RING_CANDIDATES = 500


def _ring(settings: RiskSettings, order: Order, distributor_id: int, now) -> int:
    """Orders of the distributor whose buyers share this order's phone or address."""
    phone, place = normalise_phone(order.receiver_phone), order_address(order)
    owner = db.session.scalar(select(Distributor.user_id).where(Distributor.id == distributor_id))
    earned_on = select(LedgerEntry.order_id).where(
        LedgerEntry.distributor_id == distributor_id,
        LedgerEntry.kind.in_(LINE_EARNING_KINDS),
    )
    # Plain rows, not orders: only these columns are compared.
    candidates = db.session.execute(
        select(
            Order.id,
            Order.user_id,
            Order.receiver_phone,
            Order.province,
            Order.city,
            Order.district,
            Order.address_detail,
        )
        .where(
            Order.id.in_(earned_on),
            Order.paid_at.is_not(None),
            Order.user_id != owner,
            or_(Order.receiver_phone == order.receiver_phone, Order.district == order.district),
        )
        .order_by(Order.id.desc())
        .limit(RING_CANDIDATES)
    ).all()
    by_phone = {row.id: row for row in candidates if normalise_phone(row.receiver_phone) == phone}
    by_place = {
        row.id: row
        for row in candidates
        if normalise_address(row.province, row.city, row.district, row.address_detail) == place
    }
    flagged = 0
    for label, group in (("phone", by_phone), ("address", by_place)):
        buyers = {row.user_id for row in group.values()}
        if len(buyers) < settings.ring_min_buyers:
            continue
        evidence = {
            "shared": label,
            "value": phone if label == "phone" else place,
            "buyers": sorted(buyers),
            "orders": sorted(group),
        }
        for member in group.values():
            flagged += _flag_order_id(
                RECEIVER_RING, member.id, member.user_id, distributor_id, evidence, now
            )
    return flagged


def check_order(
    order_id: int, now: datetime | None = None, bindings_checked: set[int] | None = None
) -> int:
    """Run the per-order signals on a paid order; how many new flags (flushes).

    ``bindings_checked``: distributors whose binding bursts a caller checking several
    orders at one ``now`` has checked already (the check is per distributor and hour, and
    a seller earns on most of a batch's orders); filled in here.
    """
    now = now or utcnow()
    if bindings_checked is None:
        bindings_checked = set()
    order = db.session.get(Order, order_id)
    if order is None or order.paid_at is None:
        return 0
    settings = get_risk_settings()
    buyer = db.session.get(User, order.user_id)
    flagged = 0
    phone, place = normalise_phone(order.receiver_phone), order_address(order)
    payer = payer_openid(order_id) if settings.shared_payer_on else None
    for distributor in earning_distributors(order_id):
        if distributor.user_id == order.user_id:
            continue  # the buyer's own earning: self-purchase is a setting, not a risk
        owner = db.session.get(User, distributor.user_id)
        if settings.shared_receiver_on:
            phones, places = receivers_of(distributor.user_id)
            same = [
                k for k, hit in (("phone", phone in phones), ("address", place in places)) if hit
            ]
            if same:
                evidence = {"shared": same, "phone": phone, "address": place}
                flagged += _flag_order(SHARED_RECEIVER, order, distributor.id, evidence, now)
        if payer is not None and payer == owner.openid:  # None when the signal is off
            evidence = {"payer_openid": payer, "buyer_openid": buyer.openid}
            flagged += _flag_order(SHARED_PAYER, order, distributor.id, evidence, now)
        if settings.shared_device_on:
            devices = shared_devices(order.user_id, distributor.user_id)
            if devices:
                evidence = {"devices": [{"ip": ip, "ua": ua} for ip, ua in devices]}
                flagged += _flag_order(SHARED_DEVICE, order, distributor.id, evidence, now)
        if settings.receiver_ring_on:
            flagged += _ring(settings, order, distributor.id, now)
        if settings.binding_burst_on and distributor.id not in bindings_checked:
            bindings_checked.add(distributor.id)
            flagged += check_bindings(distributor.id, now)
    return flagged


# --- per distributor -------------------------------------------------------------------------


def _settled_refund_rate(distributor_id: int | None) -> tuple[int, int]:
    """(orders whose level commission settled, of them refunded after settlement), for one
    distributor or (None) the whole shop. A refund after settlement is a settled reversal."""
    earned = select(LedgerEntry.id, LedgerEntry.order_id).where(
        LedgerEntry.kind.in_(LEVEL_KINDS),
        LedgerEntry.state.in_((SETTLED, WITHDRAWN)),
    )
    if distributor_id is not None:
        earned = earned.where(LedgerEntry.distributor_id == distributor_id)
    earned = earned.subquery()
    reversal = LedgerEntry.__table__.alias("rev")
    settled = db.session.scalar(select(func.count(func.distinct(earned.c.order_id))))
    refunded = db.session.scalar(
        select(func.count(func.distinct(earned.c.order_id))).where(
            select(reversal.c.id)
            .where(
                reversal.c.reverses_id == earned.c.id,
                reversal.c.kind == REVERSAL,
                reversal.c.state.in_((SETTLED, WITHDRAWN)),
            )
            .exists()
        )
    )
    return int(settled or 0), int(refunded or 0)


def check_refund_rate(distributor_id: int, now: datetime | None = None) -> int:
    """Flag the distributor when their customers' refund rate after settlement is at
    least ``refund_rate_factor_pct`` % of the shop's and ``refund_rate_floor_bp``, over at
    least ``refund_rate_min_orders`` settled orders; holds their pending earnings."""
    settings = get_risk_settings()
    if not settings.refund_rate_on:
        return 0
    settled, refunded = _settled_refund_rate(distributor_id)
    if settled < max(1, settings.refund_rate_min_orders):
        return 0
    shop_settled, shop_refunded = _settled_refund_rate(None)
    mine_bp = refunded * 10000 // settled
    shop_bp = shop_refunded * 10000 // shop_settled if shop_settled else 0
    if mine_bp < settings.refund_rate_floor_bp:
        return 0
    if mine_bp * 100 < shop_bp * settings.refund_rate_factor_pct:
        return 0
    new = raise_flag(
        REFUND_RATE,
        f"dist:{distributor_id}",
        distributor_id=distributor_id,
        evidence={"settled": settled, "refunded": refunded, "rate_bp": mine_bp, "shop_bp": shop_bp},
        now=now,
    )
    if new is not None:
        _hold_pending(distributor_id, SIGNAL_LABELS[REFUND_RATE], now or utcnow())
    return int(new is not None)


def check_bindings(distributor_id: int, now: datetime | None = None) -> int:
    """Flag more than ``binding_burst_per_hour`` new bindings to the distributor in the
    hour before ``now``, or more than ``binding_ip_per_hour`` of them from one address."""
    now = now or utcnow()
    settings = get_risk_settings()
    if not settings.binding_burst_on:
        return 0
    since = now - timedelta(hours=1)
    bound = db.session.scalars(
        select(Binding.user_id).where(
            Binding.distributor_id == distributor_id, Binding.bound_at >= since
        )
    ).all()
    hour = now.strftime("%Y%m%d%H")
    flagged = 0
    if len(bound) > settings.binding_burst_per_hour:
        new = raise_flag(
            BINDING_BURST,
            f"dist:{distributor_id}:{hour}",
            distributor_id=distributor_id,
            evidence={"bindings": len(bound), "since": since.isoformat()},
            now=now,
        )
        flagged += new is not None
    if bound:
        by_ip: dict[str, set[int]] = defaultdict(set)
        for user_id, ip in db.session.execute(
            select(SignInTrace.user_id, SignInTrace.ip).where(
                SignInTrace.user_id.in_(bound), SignInTrace.ip != ""
            )
        ):
            by_ip[ip].add(user_id)
        for ip, users in sorted(by_ip.items()):
            if len(users) > settings.binding_ip_per_hour:
                new = raise_flag(
                    BINDING_IP_BURST,
                    f"dist:{distributor_id}:{hour}:{ip}"[:64],
                    distributor_id=distributor_id,
                    evidence={"ip": ip, "bindings": len(users), "users": sorted(users)[:50]},
                    now=now,
                )
                flagged += new is not None
    if flagged:
        _hold_pending(distributor_id, SIGNAL_LABELS[BINDING_BURST], now)
    return flagged


def check_threshold_refund(order_id: int, now: datetime | None = None) -> int:
    """A refunded order that was followed, within ``threshold_window_hours`` of its
    payment, by a task reward or grade upgrade of a distributor earning on it."""
    now = now or utcnow()
    settings = get_risk_settings()
    order = db.session.get(Order, order_id)
    if not settings.threshold_refund_on or order is None or order.paid_at is None:
        return 0
    if not order.refunded_fen:
        return 0
    until = order.paid_at + timedelta(hours=settings.threshold_window_hours)
    flagged = 0
    for distributor in earning_distributors(order_id):
        if distributor.user_id == order.user_id:
            continue
        rewards = db.session.scalar(
            select(func.count()).where(
                LedgerEntry.distributor_id == distributor.id,
                LedgerEntry.kind == TASK_REWARD,
                LedgerEntry.created_at >= order.paid_at,
                LedgerEntry.created_at <= until,
            )
        )
        upgrades = db.session.scalar(
            select(func.count()).where(
                GradeChange.distributor_id == distributor.id,
                GradeChange.created_at >= order.paid_at,
                GradeChange.created_at <= until,
            )
        )
        if rewards or upgrades:
            evidence = {
                "task_rewards": int(rewards),
                "grade_changes": int(upgrades),
                "refunded_fen": order.refunded_fen,
            }
            flagged += _flag_order(THRESHOLD_REFUND, order, distributor.id, evidence, now)
    return flagged


def after_refund(order_id: int, now: datetime | None = None) -> int:
    """The checks a refund of the order may trip; how many new flags (flushes)."""
    flagged = check_threshold_refund(order_id, now)
    settings = get_risk_settings()
    if settings.refund_rate_on:
        for distributor in earning_distributors(order_id):
            flagged += check_refund_rate(distributor.id, now)
    return flagged
