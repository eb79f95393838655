"""Template-message notifications (模板消息): an outbox in the database, sent by RQ jobs.

Who gets what (``KINDS``): staff hear of paid orders, buyers of shipments, distributors of
commissions earned and settled, of their withdrawals approved and paid, and of customers
bound to them. Each kind has a template id and an on/off switch (``NotificationSetting``,
admin 公众号 page); a kind that is off or has no template id records nothing.

How a notification travels (the outbox):

1. The domain announces the event (``app/signals.py``); the receivers of
   ``app/wechat/listeners.py`` call the ``notify_*`` functions below inside the sender's
   transaction, and ``queue_notification`` inserts an ``OutboundMessage`` with
   ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING id``: the dedupe key (e.g.
   ``order_shipped:42``) makes "notify once" a unique key, however often a job or a notice
   runs. It only flushes, and the row commits or rolls back with the event it reports.
2. After that transaction commits (a SQLAlchemy ``after_commit`` hook on the session), the
   new ids are queued as ``jobs.notifications.send_outbound_message`` RQ jobs
   (``app/wechat/outbox.py``). A rollback queues nothing. Enqueuing never raises into the
   request: if Redis is down, the row stays ``pending``.
3. The job posts the stored payload to ``/cgi-bin/message/template/send``. Failures are
   recorded (``attempts``, ``last_error``) and retried with backoff (rq ``Retry``); after
   the last try, or at once for errors a retry cannot fix (bad openid or template, not a
   follower), the row is ``failed``. A periodic sweep (``jobs.notifications.sweep_outbox``)
   re-queues ``pending`` rows whose job was lost.

Staff recipients of ``order_paid`` are openids the owner types on the admin page, kept
one per line in the ``order_paid`` row's ``recipients``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import and_, bindparam, case, event, func, or_, select
from sqlalchemy.orm import aliased

from app.accounts.models import User
from app.core.money import format_yuan
from app.core.sql import dialect_insert, insert_rows_chunked
from app.core.time import shop_time_text, utcnow
from app.distribution.models import Distributor
from app.extensions import db
from app.ledger.kinds import (
    EARNED_LABELS,
    LEVEL_KINDS,
    LINE_EARNING_KINDS,
    REVERSAL,
    REVERSED,
    SETTLEABLE_KINDS,
)
from app.ledger.models import LedgerEntry
from app.orders.models import Order, OrderLine
from app.wechat.models import NotificationSetting, OutboundMessage
from app.wechat.outbox import enqueue_sends

log = logging.getLogger(__name__)

MAX_STAFF_OPENIDS = 20
OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
TEMPLATE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PENDING_KEY = "wechat_outbox_pending"
_HOOKED_KEY = "wechat_outbox_hooked"


@dataclass(frozen=True)
class Kind:
    """One notification kind: who receives it and the template fields it fills."""

    label: str
    to: str
    fields: tuple[tuple[str, str], ...]  # (template keyword, what it holds)


# Field names follow WeChat's typed keywords (thing ≤ 20 chars, character_string ≤ 32,
# amount, time): choose a template in the account's library with these keywords.
KINDS: dict[str, Kind] = {
    "order_paid": Kind(
        "新订单付款",
        "商家员工",
        (
            ("character_string1", "订单号"),
            ("amount2", "实付金额"),
            ("thing3", "商品"),
            ("time4", "付款时间"),
        ),
    ),
    "order_shipped": Kind(
        "订单已发货",
        "买家",
        (
            ("character_string1", "订单号"),
            ("thing2", "快递公司"),
            ("character_string3", "快递单号"),
            ("time4", "发货时间"),
        ),
    ),
    "commission_earned": Kind(
        "获得佣金",
        "分销员",
        (
            ("character_string1", "订单号"),
            ("amount2", "佣金金额"),
            ("thing3", "说明"),
            ("time4", "时间"),
        ),
    ),
    "commission_settled": Kind(
        "佣金已结算",
        "分销员",
        (("amount1", "结算金额"), ("thing2", "说明"), ("time3", "结算时间")),
    ),
    "withdrawal_approved": Kind(
        "提现审核通过",
        "分销员",
        (("amount1", "提现金额"), ("thing2", "说明"), ("time3", "审核时间")),
    ),
    "withdrawal_paid": Kind(
        "提现已到账",
        "分销员",
        (("amount1", "到账金额"), ("thing2", "说明"), ("time3", "到账时间")),
    ),
    "member_bound": Kind(
        "新客户绑定",
        "分销员",
        (("thing1", "客户"), ("thing2", "来源"), ("time3", "绑定时间")),
    ),
    "grade_upgraded": Kind(
        "分销员等级提升",
        "分销员",
        (("thing1", "新等级"), ("thing2", "说明"), ("time3", "升级时间")),
    ),
}
BIND_SOURCES = {"link": "通过您的推广链接", "qr": "扫描您的推广二维码", "staff": "商家为您调整"}
# WeChat's limits on keyword values, by type prefix (longer values are refused with 47003).
_LIMITS = {"thing": 20, "character_string": 32, "phrase": 5, "name": 10, "car_number": 8}


# --- settings -----------------------------------------------------------------------------


def notification_settings() -> dict[str, NotificationSetting]:
    """Every kind's settings row, created (flushed, off) where missing."""
    rows = {
        row.kind: row
        for row in db.session.scalars(
            select(NotificationSetting).where(NotificationSetting.kind.in_(KINDS))
        )
    }
    for kind in KINDS:
        if kind not in rows:
            rows[kind] = NotificationSetting(kind=kind, template_id="", enabled=False)
            db.session.add(rows[kind])
    db.session.flush()
    return rows


# Built once with a bound parameter: every paid order asks it.
_SETTING_OF_KIND = select(NotificationSetting).where(NotificationSetting.kind == bindparam("kind"))


def notification_setting(kind: str) -> NotificationSetting | None:
    """The setting of one kind of template message (None until staff save it)."""
    return db.session.scalar(_SETTING_OF_KIND, {"kind": kind})


def save_setting(kind: str, template_id: str, enabled: bool) -> NotificationSetting:
    """Set one kind's template id and switch (flushes). Raises ValueError in Chinese."""
    if kind not in KINDS:
        raise ValueError("未知的通知类型")
    template_id = (template_id or "").strip()
    if template_id and not TEMPLATE_ID_RE.match(template_id):
        raise ValueError(f"{KINDS[kind].label}：模板 ID 只能包含字母、数字、- 和 _，最长 64 位")
    if enabled and not template_id:
        raise ValueError(f"{KINDS[kind].label}：开启前请填写模板 ID")
    row = notification_settings()[kind]
    row.template_id = template_id
    row.enabled = enabled
    db.session.flush()
    return row


def staff_openids() -> list[str]:
    """The openids that receive ``order_paid``, in the order the owner typed them."""
    row = notification_settings()["order_paid"]
    return [line for line in (row.recipients or "").splitlines() if line]


def parse_openids(text: str) -> list[str]:
    """Openids from what the owner typed (one per line, or separated by commas/spaces).

    Raises ValueError (Chinese) for a malformed openid or more than MAX_STAFF_OPENIDS.
    """
    found: list[str] = []
    for item in re.split(r"[\s,，;；]+", text or ""):
        if not item:
            continue
        if not OPENID_RE.match(item):
            raise ValueError(f"openid 格式不正确：{item[:40]}")
        if item not in found:
            found.append(item)
    if len(found) > MAX_STAFF_OPENIDS:
        raise ValueError(f"最多填写 {MAX_STAFF_OPENIDS} 个接收人")
    return found


def set_staff_openids(openids: list[str]) -> None:
    """Replace the staff recipients of ``order_paid`` (flushes)."""
    notification_settings()["order_paid"].recipients = "\n".join(openids)
    db.session.flush()


# --- the outbox ---------------------------------------------------------------------------


def _fit(keyword: str, value: object) -> str:
    text = str(value)
    for prefix, limit in _LIMITS.items():
        if keyword.startswith(prefix) and len(text) > limit:
            return text[: limit - 1] + "…"
    return text


def china_time(moment: datetime | None = None) -> str:
    """A ``time`` keyword value: Beijing time to the minute."""
    return shop_time_text(moment or utcnow())


def _outbox_row(
    setting: NotificationSetting,
    kind: str,
    openid: str,
    data: dict[str, object],
    dedupe_key: str,
    url: str,
    now: datetime,
) -> dict:
    payload = {
        "touser": openid,
        "template_id": setting.template_id,
        "data": {key: {"value": _fit(key, value)} for key, value in data.items()},
        # WeChat's anti-reentry id: the same openid + id within 10 minutes is sent once.
        "client_msg_id": hashlib.sha1(dedupe_key.encode()).hexdigest()[:32],  # noqa: S324
    }
    if url:
        payload["url"] = url
    return {
        "dedupe_key": dedupe_key[:160],
        "kind": kind,
        "openid": openid,
        "payload": json.dumps(payload, ensure_ascii=False),
        "status": "pending",
        "attempts": 0,
        "last_error": "",
        "created_at": now,
    }


def queue_notification(
    kind: str, openid: str | None, data: dict[str, object], dedupe_key: str, url: str = ""
) -> int | None:
    """Record a template message for ``openid`` once per ``dedupe_key``; send after commit.

    Returns the new outbox row's id, or None when nothing was recorded: the kind is off or
    has no template id, there is no openid, or ``dedupe_key`` was recorded before. Flushes
    only; the caller commits (see the module docstring for what happens then).
    """
    setting = notification_setting(kind)
    if setting is None or not setting.enabled or not setting.template_id or not openid:
        return None
    message_id = db.session.scalar(
        dialect_insert(OutboundMessage)
        .values(**_outbox_row(setting, kind, openid, data, dedupe_key, url, utcnow()))
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        # RETURNING rather than rowcount: psycopg reports -1 for ORM-executed inserts.
        .returning(OutboundMessage.id)
    )
    if message_id is not None:
        _send_after_commit(message_id)
    return message_id


_OUTBOX_COLUMNS = (
    "dedupe_key",
    "kind",
    "openid",
    "payload",
    "status",
    "attempts",
    "last_error",
    "created_at",
)


def queue_notifications(
    kind: str,
    messages: Sequence[tuple[str | None, dict[str, object], str, str]],
    setting: NotificationSetting,
    now: datetime,
) -> list[int]:
    """``queue_notification`` for many messages of one kind at once (one INSERT):
    ``messages`` are (openid, data, dedupe key, url); ``setting`` is the kind's setting,
    already read and found on. Messages without an openid, and dedupe keys recorded
    before, are skipped; returns the new rows' ids, in the order given. Flushes only.
    """
    rows = [
        _outbox_row(setting, kind, openid, data, dedupe_key, url, now)
        for openid, data, dedupe_key, url in messages
        if openid
    ]
    if not rows:
        return []
    # Multi-row INSERTs built once per row count (``insert_rows_chunked``): a dialect
    # insert of many rows would be compiled afresh on every call.
    table = OutboundMessage.__table__
    written = insert_rows_chunked(
        table,
        _OUTBOX_COLUMNS,
        rows,
        conflict=("dedupe_key",),
        returning=(table.c.id, table.c.dedupe_key),
    )
    ids = {key: message_id for message_id, key in written}
    queued = [ids[row["dedupe_key"]] for row in rows if row["dedupe_key"] in ids]
    for message_id in queued:
        _send_after_commit(message_id)
    return queued


def _send_after_commit(message_id: int) -> None:
    """Queue the send job for ``message_id`` once the session's transaction commits."""
    session = db.session()
    session.info.setdefault(_PENDING_KEY, []).append(message_id)
    if not session.info.get(_HOOKED_KEY):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
        session.info[_HOOKED_KEY] = True


def _after_commit(session) -> None:
    enqueue_sends(session.info.pop(_PENDING_KEY, []))


def _after_rollback(session) -> None:
    session.info.pop(_PENDING_KEY, None)  # the rows are gone with the transaction


# --- the events ---------------------------------------------------------------------------


def _site(path: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def _openid_of_user(user_id: int | None) -> str | None:
    user = db.session.get(User, user_id) if user_id else None
    return user.openid if user is not None else None


def _openid_of_distributor(distributor_id: int) -> str | None:
    distributor = db.session.get(Distributor, distributor_id)
    return _openid_of_user(distributor.user_id) if distributor is not None else None


def _paid_data(order, lines) -> dict[str, object]:
    goods = lines[0].title if lines else "商品"
    units = sum(line.quantity for line in lines)
    if len(lines) > 1 or units > 1:
        goods = f"{goods[:12]}等{units}件"
    return {
        "character_string1": order.number,
        "amount2": format_yuan(order.paid_fen or order.total_fen),
        "thing3": goods,
        "time4": china_time(order.paid_at),
    }


def notify_order_paid(order) -> int:
    """Tell every staff recipient that ``order`` was paid; return how many were recorded."""
    data = _paid_data(order, list(order.lines))
    url = _site(f"/admin/orders/{order.id}")
    recorded = 0
    for openid in staff_openids():
        if queue_notification("order_paid", openid, data, f"order_paid:{order.id}:{openid}", url):
            recorded += 1
    return recorded


def notify_orders_paid(orders) -> int:
    """``notify_order_paid`` for many orders at once: the same messages and dedupe keys,
    their lines read in one query and every message written in one INSERT; how many were
    recorded."""
    orders = list(orders)
    setting = notification_setting("order_paid")
    if not orders or setting is None or not setting.enabled or not setting.template_id:
        return 0
    openids = [line for line in (setting.recipients or "").splitlines() if line]
    if not openids:
        return 0
    lines: dict[int, list[OrderLine]] = {}
    for line in db.session.scalars(
        select(OrderLine)
        .where(OrderLine.order_id.in_([o.id for o in orders]))
        .order_by(OrderLine.id)
    ):
        lines.setdefault(line.order_id, []).append(line)
    messages = []
    for order in orders:
        data = _paid_data(order, lines.get(order.id, []))
        url = _site(f"/admin/orders/{order.id}")
        messages += [(o, data, f"order_paid:{order.id}:{o}", url) for o in openids]
    return len(queue_notifications("order_paid", messages, setting, utcnow()))


def notify_order_shipped(order) -> int | None:
    """Tell the buyer that ``order`` has shipped, with carrier and tracking number."""
    return queue_notification(
        "order_shipped",
        _openid_of_user(order.user_id),
        {
            "character_string1": order.number,
            "thing2": order.carrier or "快递",
            "character_string3": order.tracking_number or "-",
            "time4": china_time(order.shipped_at),
        },
        f"order_shipped:{order.id}",
        _site(f"/orders/{order.id}"),
    )


# The centre page that lists each group of earnings (``EARNED_LABELS``, app/ledger/kinds.py).
EARNED_PAGES = {
    "commission": "/distributor/commissions",
    "region_dividend": "/agent/dividends",
    "price_difference": "/merchant/earnings",
}


def notify_commissions_earned(order_ids: Collection[int]) -> int:
    """Tell each beneficiary what they earn on each of ``order_ids`` (one message per
    distributor and order, in order id then distributor id order); how many were recorded.

    Every per-line earning counts (``LINE_EARNING_KINDS``: commissions of levels 1-3,
    region dividends, price differences), net of the refund reversals written so far; an
    earning that lapsed (line refunded in full) counts for nothing. The message says which
    kinds make up the amount (佣金 / 区域分红 / 级差收益) and links the page that lists
    them; a distributor who earned commissions only reads the same text as before.

    A whole batch of orders costs four statements (the setting, the sums, the orders'
    numbers with the beneficiaries' openids, one multi-row outbox insert), not four per
    beneficiary; each message keeps its own dedupe key ``commission_earned:<order>:<distributor>``.
    """
    order_ids = sorted(set(order_ids))
    if not order_ids:
        return 0
    setting = notification_setting("commission_earned")
    if setting is None or not setting.enabled or not setting.template_id:
        return 0  # switched off: one query instead of the sums and a lookup per beneficiary
    earning = aliased(LedgerEntry)
    # A reversal counts under the kind of the earning it reverses.
    kind = case((LedgerEntry.kind == REVERSAL, earning.kind), else_=LedgerEntry.kind)
    rows = db.session.execute(
        select(
            LedgerEntry.order_id, LedgerEntry.distributor_id, kind, func.sum(LedgerEntry.amount_fen)
        )
        .outerjoin(earning, earning.id == LedgerEntry.reverses_id)
        .where(
            LedgerEntry.order_id.in_(order_ids),
            LedgerEntry.state != REVERSED,
            or_(
                LedgerEntry.kind.in_(LINE_EARNING_KINDS),
                and_(LedgerEntry.kind == REVERSAL, earning.kind.in_(LINE_EARNING_KINDS)),
            ),
        )
        .group_by(LedgerEntry.order_id, LedgerEntry.distributor_id, kind)
    ).all()
    earned: dict[tuple[int, int], dict[str, int]] = {}
    for order_id, distributor_id, row_kind, amount in rows:
        group = "commission" if row_kind in LEVEL_KINDS else row_kind
        mine = earned.setdefault((order_id, distributor_id), {})
        mine[group] = mine.get(group, 0) + int(amount or 0)
    if not earned:
        return 0
    numbers = dict(
        db.session.execute(
            select(Order.id, Order.number).where(Order.id.in_({o for o, _d in earned}))
        ).all()
    )
    openids = dict(
        db.session.execute(
            select(Distributor.id, User.openid)
            .join(User, User.id == Distributor.user_id)
            .where(Distributor.id.in_({d for _o, d in earned}))
        ).all()
    )
    now = utcnow()
    messages = []
    for order_id, distributor_id in sorted(earned):
        parts = {g: fen for g, fen in earned[order_id, distributor_id].items() if fen > 0}
        amount = sum(parts.values())
        if amount <= 0 or order_id not in numbers:
            continue
        groups = [g for g in EARNED_LABELS if g in parts]
        if groups == ["commission"]:
            note = "待结算，订单完成后可提现"
        else:
            note = "、".join(EARNED_LABELS[g] for g in groups) + "，待结算"
        messages.append(
            (
                openids.get(distributor_id),
                {
                    "character_string1": numbers[order_id],
                    "amount2": format_yuan(amount),
                    "thing3": note,
                    "time4": china_time(now),
                },
                f"commission_earned:{order_id}:{distributor_id}",
                _site(EARNED_PAGES[groups[0]] if len(groups) == 1 else "/distributor/commissions"),
            )
        )
    return len(queue_notifications("commission_earned", messages, setting, now))


def notify_commissions_settled(settled_at: datetime) -> int:
    """Tell each distributor how much settled in the run stamped ``settled_at``.

    ``settle_due(now)`` stamps every entry it settles with ``settled_at = now``, so the run's
    entries are exactly those; the smallest entry id of each distributor's share keys the
    message, so running this again for the same run records nothing new.

    The text names what settled, by the kind of each entry (a reversal counts under the
    kind it reverses, as in ``notify_commissions_earned``): "2笔佣金已结算" for commissions
    alone, "1笔区域分红已结算" / "3笔级差收益已结算" for one other kind, and
    "收益已结算：佣金、区域分红" when kinds are mixed; it links the page that lists them.
    """
    earning = aliased(LedgerEntry)
    kind = case((LedgerEntry.kind == REVERSAL, earning.kind), else_=LedgerEntry.kind)
    rows = db.session.execute(
        select(
            LedgerEntry.distributor_id,
            kind,
            func.sum(LedgerEntry.amount_fen),
            func.count(LedgerEntry.id),
            func.min(LedgerEntry.id),
        )
        .outerjoin(earning, earning.id == LedgerEntry.reverses_id)
        .where(LedgerEntry.settled_at == settled_at, LedgerEntry.kind.in_(SETTLEABLE_KINDS))
        .group_by(LedgerEntry.distributor_id, kind)
    ).all()
    # distributor -> {group: [amount, count]}, and the smallest entry id (the message key)
    shares: dict[int, dict[str, list[int]]] = {}
    first: dict[int, int] = {}
    for distributor_id, row_kind, amount, count, first_id in rows:
        # Commission levels 1-3 (and anything unnamed) read as 佣金.
        group = (
            row_kind if row_kind in EARNED_LABELS and row_kind not in LEVEL_KINDS else "commission"
        )
        mine = shares.setdefault(distributor_id, {}).setdefault(group, [0, 0])
        mine[0] += int(amount or 0)
        mine[1] += int(count)
        first[distributor_id] = min(first.get(distributor_id, first_id), first_id)
    recorded = 0
    for distributor_id in sorted(shares):
        amount = sum(fen for fen, _count in shares[distributor_id].values())
        if amount <= 0:
            continue
        parts = {g: v for g, v in shares[distributor_id].items() if v[0] > 0}
        groups = [g for g in EARNED_LABELS if g in parts]
        if len(groups) == 1:
            note = f"{parts[groups[0]][1]}笔{EARNED_LABELS[groups[0]]}已结算，可申请提现"
            page = "/distributor" if groups == ["commission"] else EARNED_PAGES[groups[0]]
        else:
            note = "收益已结算：" + "、".join(EARNED_LABELS[g] for g in groups)
            page = "/distributor"
        if queue_notification(
            "commission_settled",
            _openid_of_distributor(distributor_id),
            {"amount1": format_yuan(amount), "thing2": note, "time3": china_time(settled_at)},
            f"commission_settled:{distributor_id}:{first[distributor_id]}",
            _site(page),
        ):
            recorded += 1
    return recorded


def notify_withdrawal(withdrawal, status: str) -> int | None:
    """Tell the distributor their withdrawal was approved (``approved``) or paid (``paid``)."""
    if status == "approved":
        kind = "withdrawal_approved"
        note = "请在微信中确认收款" if withdrawal.channel == "wechat" else "商家将尽快为您打款"
        when = withdrawal.reviewed_at
    elif status == "paid":
        kind = "withdrawal_paid"
        note = "已转入微信零钱" if withdrawal.channel == "wechat" else "商家已为您打款"
        when = withdrawal.paid_at
    else:
        return None
    return queue_notification(
        kind,
        _openid_of_distributor(withdrawal.distributor_id),
        {"amount1": format_yuan(withdrawal.net_fen), "thing2": note, "time3": china_time(when)},
        f"{kind}:{withdrawal.id}",
        _site("/distributor/withdraw"),
    )


def notify_member_bound(user_id: int, distributor_id: int, source: str) -> int | None:
    """Tell a distributor that a customer is now bound to them."""
    user = db.session.get(User, user_id)
    if user is None:
        return None
    return queue_notification(
        "member_bound",
        _openid_of_distributor(distributor_id),
        {
            "thing1": user.display_name,
            "thing2": BIND_SOURCES.get(source, "新客户"),
            "time3": china_time(),
        },
        f"member_bound:{distributor_id}:{user_id}",
        _site("/distributor/customers"),
    )


def notify_grade_upgraded(distributor_id: int, grade, reason: str) -> int | None:
    """Tell a distributor they moved up to ``grade`` (a ``Grade`` row), once per grade."""
    return queue_notification(
        "grade_upgraded",
        _openid_of_distributor(distributor_id),
        {"thing1": grade.name, "thing2": reason or "业绩达标，等级提升", "time3": china_time()},
        f"grade_upgraded:{distributor_id}:{grade.id}",
        _site("/distributor"),
    )
