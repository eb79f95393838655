"""The staff review queue: held earnings with their evidence, released or rejected once.

``queue`` lists the holds (open first), each with the flags of its order and distributor
and the distributor's own flags, side by side. ``decide`` ends one hold: ``release`` lets
the money settle, ``reject`` reverses it through the ledger's one reversal rule; each
decision happens once (the ledger's conditional UPDATE from ``held``) and writes one audit
row with the staff member's reason. Services flush; the edge commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, or_, select

from app.accounts.models import User
from app.accounts.traces import traces_of
from app.core.audit import record
from app.core.time import utcnow
from app.distribution.models import Distributor
from app.extensions import db
from app.ledger import holds
from app.ledger.kinds import PENDING
from app.ledger.models import HOLD_HELD, LedgerEntry, LedgerHold
from app.orders.models import Order
from app.risk import signals
from app.risk.models import RiskFlag

RELEASE = "release"
REJECT = "reject"


class ReviewError(ValueError):
    """A decision refused, in Chinese."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class QueueItem:
    hold: LedgerHold
    order: Order
    buyer: User
    distributor: Distributor
    distributor_user: User
    amount_fen: int  # the held pending earnings
    flags: list[RiskFlag] = field(default_factory=list)


def _flags_for(pairs: set[tuple[int, int]], distributor_ids: set[int]) -> list[RiskFlag]:
    if not pairs and not distributor_ids:
        return []
    order_ids = {o for o, _d in pairs}
    return list(
        db.session.scalars(
            select(RiskFlag)
            .where(
                or_(
                    RiskFlag.order_id.in_(order_ids),
                    RiskFlag.order_id.is_(None) & RiskFlag.distributor_id.in_(distributor_ids),
                )
            )
            .order_by(RiskFlag.id)
        )
    )


def queue(state: str = HOLD_HELD, limit: int = 50) -> list[QueueItem]:
    """Holds in ``state`` (oldest first while open, newest first once decided)."""
    order = LedgerHold.id.asc() if state == HOLD_HELD else LedgerHold.decided_at.desc()
    rows = db.session.scalars(
        select(LedgerHold).where(LedgerHold.state == state).order_by(order).limit(limit)
    ).all()
    return items(rows)


def items(rows) -> list[QueueItem]:
    """Queue items of these holds (a few queries for the lot)."""
    if not rows:
        return []
    orders = {
        o.id: o
        for o in db.session.scalars(select(Order).where(Order.id.in_({h.order_id for h in rows})))
    }
    distributors = {
        d.id: d
        for d in db.session.scalars(
            select(Distributor).where(Distributor.id.in_({h.distributor_id for h in rows}))
        )
    }
    user_ids = {o.user_id for o in orders.values()} | {d.user_id for d in distributors.values()}
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))}
    amounts = {
        (o, d): int(total)
        for o, d, total in db.session.execute(
            select(
                LedgerEntry.order_id, LedgerEntry.distributor_id, func.sum(LedgerEntry.amount_fen)
            )
            .where(
                LedgerEntry.order_id.in_(orders),
                LedgerEntry.distributor_id.in_(distributors),
                LedgerEntry.state == PENDING,
            )
            .group_by(LedgerEntry.order_id, LedgerEntry.distributor_id)
        )
    }
    pairs = {(h.order_id, h.distributor_id) for h in rows}
    flags = _flags_for(pairs, set(distributors))
    result = []
    for h in rows:
        order = orders[h.order_id]
        distributor = distributors[h.distributor_id]
        mine = [
            f
            for f in flags
            if (f.order_id == h.order_id and f.distributor_id == h.distributor_id)
            or (f.order_id is None and f.distributor_id == h.distributor_id)
        ]
        result.append(
            QueueItem(
                hold=h,
                order=order,
                buyer=users[order.user_id],
                distributor=distributor,
                distributor_user=users[distributor.user_id],
                amount_fen=amounts.get((h.order_id, h.distributor_id), 0),
                flags=mine,
            )
        )
    return result


def names(user_ids) -> dict[int, str]:
    """{user id: nickname (or 用户#id)} for showing people by name."""
    ids = {i for i in user_ids if isinstance(i, int)}
    if not ids:
        return {}
    rows = db.session.execute(select(User.id, User.nickname).where(User.id.in_(ids)))
    return {uid: nickname or f"用户#{uid}" for uid, nickname in rows}


def open_count() -> int:
    return int(
        db.session.scalar(
            select(func.count()).select_from(LedgerHold).where(LedgerHold.state == HOLD_HELD)
        )
    )


def decide(hold_id: int, decision: str, actor: str, note: str) -> LedgerHold:
    """Release or reject a hold once, audited (flushes). ``ReviewError`` when the decision
    is unknown, a rejection has no reason, or the hold was decided already."""
    note = (note or "").strip()
    if decision not in (RELEASE, REJECT):
        raise ReviewError("请选择通过或驳回")
    if len(note) > 200:
        raise ReviewError("审核说明不能超过 200 字")
    if decision == REJECT and not note:
        raise ReviewError("驳回须填写原因（将记入审计日志）")
    item = db.session.get(LedgerHold, hold_id)
    if item is None:
        raise ReviewError("审核记录不存在")
    now = utcnow()
    before = {"state": item.state}
    if decision == RELEASE:
        done = holds.release(hold_id, actor, note, now)
        reversed_ids: list[int] = []
    else:
        result = holds.reject(hold_id, actor, note, now)
        done = result is not None
        reversed_ids = result or []
    if not done:
        raise ReviewError("该订单已审核过，请刷新页面")
    db.session.refresh(item)
    record(
        actor,
        f"risk.{decision}",
        "ledger_hold",
        hold_id,
        before,
        {
            "state": item.state,
            "order_id": item.order_id,
            "distributor_id": item.distributor_id,
            "note": note,
            "reversed_entries": reversed_ids,
        },
    )
    return item


@dataclass
class EvidenceRow:
    label: str
    buyer: str
    distributor: str
    same: bool


def side_by_side(item: QueueItem) -> list[EvidenceRow]:
    """Buyer and distributor, one row per thing the signals compare (a few queries)."""
    order = item.order
    phones, places = signals.receivers_of(item.distributor.user_id)
    phone, place = signals.normalise_phone(order.receiver_phone), signals.order_address(order)
    payer = signals.payer_openid(order.id) or ""
    buyer_devices = {(t.ip, t.ua_hash) for t in traces_of([item.buyer.id]) if t.ip}
    seller_devices = {(t.ip, t.ua_hash) for t in traces_of([item.distributor.user_id]) if t.ip}

    def devices(found) -> str:
        return "、".join(sorted(f"{ip}（{ua[:6]}）" for ip, ua in found)) or "—"

    return [
        EvidenceRow(
            "收货电话", order.receiver_phone, "、".join(sorted(phones)) or "—", phone in phones
        ),
        EvidenceRow(
            "收货地址",
            f"{order.province}{order.city}{order.district}{order.address_detail}",
            f"{len(places)} 个地址" if places else "—",
            place in places,
        ),
        EvidenceRow(
            "微信付款人",
            payer or "—",
            item.distributor_user.openid,
            bool(payer) and payer == item.distributor_user.openid,
        ),
        EvidenceRow(
            "登录设备",
            devices(buyer_devices),
            devices(seller_devices),
            bool(buyer_devices & seller_devices),
        ),
    ]
