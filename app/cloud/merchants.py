"""Ordering merchants (订货商): who they are, their level and their parent.

An ordering merchant is a distributor (so its links ``?ref=CODE``, QR codes and customer
bindings are the distribution core's) with an ``OrderingMerchant`` row: a level 1-5 and
a parent ordering merchant. The merchant tree obeys two rules, checked on every change:

- the parent's level is numerically smaller (higher) than the child's: an L3 may sit
  under an L2 or an L1, never under another L3 or an L4;
- no cycles: the new parent's chain is walked up under row locks (``FOR UPDATE`` on
  PostgreSQL) and refused if it reaches the merchant itself. (The level rule already makes
  a cycle impossible; the walk is the guard should levels ever be edited out of order.)

Every status, parent and level change is written to ``status_changes`` with subject
``merchant``. Services flush; the edge commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app import regions
from app.accounts.models import User
from app.cloud.models import MerchantLevel, MerchantOrder, OrderingMerchant
from app.cloud.pricing import MAX_LEVEL, MerchantError, level_label, price_for
from app.core.models import StatusChange
from app.core.status import move_status, record_creation
from app.distribution.binding import current_binding
from app.distribution.distributors import create_distributor, distributor_for_user
from app.distribution.models import Distributor, OrderAttribution
from app.extensions import db
from app.ledger.balances import mask_name
from app.orders.addresses import PHONE_RE
from app.orders.models import CANCELLED, PENDING_PAYMENT, Order
from app.orders.services import OrderError, Receiver, check_remark, create_order, normalise_items

SUBJECT = "merchant"
MERCHANT_STATUSES = ("pending", "active", "disabled", "rejected")
# pending is an application (``apply_as_merchant``); rejected may apply again (→ pending).
MERCHANT_TRANSITIONS = {
    "pending": frozenset({"active", "disabled", "rejected"}),
    "active": frozenset({"disabled"}),
    "disabled": frozenset({"active"}),
    "rejected": frozenset({"pending"}),
}
MERCHANT_STATUS_LABELS = {
    "pending": "待审核",
    "active": "正常",
    "disabled": "已停用",
    "rejected": "未通过",
}


def merchant_for_user(user_id: int) -> OrderingMerchant | None:
    """The user's ordering-merchant row (any status), or None."""
    return db.session.scalar(
        select(OrderingMerchant)
        .join(Distributor, Distributor.id == OrderingMerchant.distributor_id)
        .where(Distributor.user_id == user_id)
    )


def merchant_for_distributor(distributor_id: int) -> OrderingMerchant | None:
    return db.session.scalar(
        select(OrderingMerchant).where(OrderingMerchant.distributor_id == distributor_id)
    )


def is_active(merchant: OrderingMerchant | None) -> bool:
    """Active as a merchant and as a distributor (a disabled distributor earns nothing)."""
    return (
        merchant is not None
        and merchant.status == "active"
        and merchant.distributor is not None
        and merchant.distributor.status == "active"
    )


def chain_up(merchant: OrderingMerchant) -> list[OrderingMerchant]:
    """The merchant, then its parent, grandparent, … up to the top (at most 5 + guard)."""
    found = [merchant]
    seen = {merchant.id}
    current = merchant
    while current.parent_id is not None and len(found) <= MAX_LEVEL + 1:
        parent = db.session.get(OrderingMerchant, current.parent_id)
        if parent is None or parent.id in seen:
            break
        found.append(parent)
        seen.add(parent.id)
        current = parent
    return found


def children_of(merchant_id: int) -> list[OrderingMerchant]:
    """Direct children, lowest level number first."""
    return list(
        db.session.scalars(
            select(OrderingMerchant)
            .where(OrderingMerchant.parent_id == merchant_id)
            .order_by(OrderingMerchant.level, OrderingMerchant.id)
        )
    )


# --- checks ---------------------------------------------------------------------------------


def _check_level(level: object) -> int:
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= MAX_LEVEL:
        raise MerchantError("invalid_level", "等级需为 1 到 5", field="level")
    if db.session.scalar(select(MerchantLevel.id).where(MerchantLevel.level == level)) is None:
        raise MerchantError("unknown_level", f"没有{level}级，请先在等级设置中添加", field="level")
    return level


def _locked(merchant_id: int) -> OrderingMerchant | None:
    return db.session.scalar(
        select(OrderingMerchant)
        .where(OrderingMerchant.id == merchant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _check_parent(merchant_id: int | None, parent_id: int | None, level: int) -> None:
    """Parent's level must be higher (smaller); walking up from it must not meet us."""
    if parent_id is None:
        return
    parent = _locked(parent_id)
    if parent is None:
        raise MerchantError("unknown_parent", "上级订货商不存在", 404, field="parent_id")
    if parent.id == merchant_id:
        raise MerchantError("cycle", "不能把自己设为上级", 409, field="parent_id")
    if parent.level >= level:
        raise MerchantError(
            "parent_level",
            f"上级的等级需高于{level_label(level)}（等级数字更小），"
            f"所选上级是{level_label(parent.level)}",
            field="parent_id",
        )
    # Walk up under row locks: a concurrent re-parenting of an ancestor waits for us.
    seen = {parent.id}
    current = parent
    while current.parent_id is not None:
        if current.parent_id == merchant_id:
            raise MerchantError(
                "cycle", "不能设为自己下级的下级：会形成循环", 409, field="parent_id"
            )
        if current.parent_id in seen:
            break  # an old cycle in the data; refusing here would not fix it
        seen.add(current.parent_id)
        current = _locked(current.parent_id)
        if current is None:
            break


def _audit(merchant: OrderingMerchant, old: str, new: str, actor: str, reason: str) -> None:
    db.session.add(
        StatusChange(
            subject=SUBJECT,
            subject_id=merchant.id,
            from_status=old[:20],
            to_status=new[:20],
            actor=actor[:64],
            reason=reason[:200],
        )
    )


# --- changes --------------------------------------------------------------------------------


def create_merchant(
    user_id: int,
    level: int,
    parent_id: int | None,
    actor: str,
    status: str = "active",
    note: str = "",
) -> OrderingMerchant:
    """Make ``user_id`` an ordering merchant of ``level`` under ``parent_id`` (flushes).

    The user becomes a distributor first if they are not one (under the parent merchant's
    distributor), so links and QR codes work at once. ``status`` ``pending`` is an
    application staff approve later. ``note`` replaces the audited creation reason.
    """
    if status not in ("pending", "active"):
        raise MerchantError("invalid_status", "状态需为 pending 或 active", field="status")
    level = _check_level(level)
    if merchant_for_user(user_id) is not None:
        raise MerchantError("already_merchant", "该用户已经是订货商", 409, field="user_id")
    _check_parent(None, parent_id, level)
    distributor = distributor_for_user(user_id)
    if distributor is None:
        parent = db.session.get(OrderingMerchant, parent_id) if parent_id else None
        distributor = create_distributor(user_id, parent.distributor if parent else None)
    elif distributor.status != "active":
        raise MerchantError(
            "distributor_inactive", "该用户的分销员资格未生效，请先审核或启用", 409, field="user_id"
        )
    merchant = OrderingMerchant(
        distributor_id=distributor.id, level=level, parent_id=parent_id, status=status
    )
    db.session.add(merchant)
    db.session.flush()
    record_creation(
        SUBJECT, merchant.id, status, actor, note or f"成为订货商：{level_label(level)}"
    )
    db.session.flush()
    return merchant


def move_merchant(merchant: OrderingMerchant, to: str, actor: str, reason: str = "") -> None:
    """Approve (pending → active), disable or re-enable, audited; raises InvalidTransition."""
    move_status(OrderingMerchant, merchant, MERCHANT_TRANSITIONS, SUBJECT, to, actor, reason or to)


def approve_merchant(merchant: OrderingMerchant, actor: str) -> None:
    """Approve a pending merchant."""
    move_merchant(merchant, "active", actor, "审核通过")


def change_merchant(
    merchant: OrderingMerchant,
    actor: str,
    *,
    level: int | None = None,
    parent_id: int | None = None,
    set_parent: bool = False,
) -> OrderingMerchant:
    """Change the level and/or the parent (``set_parent`` True to change the parent,
    ``parent_id`` None for none), both checked together; each change audited (flushes).

    A new level must stay below the parent's and above every child's.
    """
    merchant = _locked(merchant.id) or merchant
    new_level = merchant.level if level is None else _check_level(level)
    new_parent = parent_id if set_parent else merchant.parent_id
    _check_parent(merchant.id, new_parent, new_level)
    if new_level != merchant.level:
        for child in children_of(merchant.id):
            if child.level <= new_level:
                raise MerchantError(
                    "child_level",
                    f"下级中有{level_label(child.level)}，等级不能调到{level_label(new_level)}",
                    field="level",
                )
        _audit(
            merchant,
            f"level:{merchant.level}",
            f"level:{new_level}",
            actor,
            f"等级 {level_label(merchant.level)} → {level_label(new_level)}",
        )
        merchant.level = new_level
    if new_parent != merchant.parent_id:
        _audit(
            merchant,
            f"parent:{merchant.parent_id or '-'}",
            f"parent:{new_parent or '-'}",
            actor,
            f"上级 #{merchant.parent_id or '无'} → #{new_parent or '无'}",
        )
        merchant.parent_id = new_parent
    db.session.flush()
    return merchant


def history(merchant_id: int) -> list[StatusChange]:
    """The merchant's audited changes, newest first."""
    return list(
        db.session.scalars(
            select(StatusChange)
            .where(StatusChange.subject == SUBJECT, StatusChange.subject_id == merchant_id)
            .order_by(StatusChange.id.desc())
        )
    )


# --- applications ---------------------------------------------------------------------------

MAX_APPLY_NAME = 20
MAX_APPLY_REASON = 100


def parent_for_code(code: str) -> OrderingMerchant:
    """The active ordering merchant whose distributor code is ``code`` (an inviter's code,
    as in ``?ref=CODE``); raises ``MerchantError`` otherwise."""
    code = (code or "").strip().upper()
    distributor = (
        db.session.scalar(select(Distributor).where(Distributor.code == code))
        if 0 < len(code) <= 16
        else None
    )
    merchant = merchant_for_distributor(distributor.id) if distributor is not None else None
    if not is_active(merchant):
        raise MerchantError(
            "unknown_parent", "邀请码不是正常经营的订货商，请核对后再填", 404, field="parent_code"
        )
    return merchant


def bound_merchant(user_id: int) -> OrderingMerchant | None:
    """The active ordering merchant the user is bound to (the binding they came with)."""
    binding = current_binding(user_id)
    merchant = merchant_for_distributor(binding.distributor_id) if binding is not None else None
    return merchant if is_active(merchant) else None


def _application_note(level: int, parent, name: str, phone: str, reason: str) -> str:
    """The application as staff read it (kept as the audited reason of the move to
    pending, so no column is needed): level wanted, parent, name, phone and why."""
    above = f"#{parent.id} {parent.distributor.code}" if parent is not None else "总部"
    note = f"申请{level_label(level)}｜上级：{above}｜姓名：{name}｜电话：{phone}"
    return f"{note}｜理由：{reason}" if reason else note


def apply_as_merchant(
    user_id: int,
    level: object,
    *,
    name: str,
    phone: str,
    reason: str = "",
    parent_code: str = "",
) -> OrderingMerchant:
    """A signed-in customer applies to be an ordering merchant (pending until staff decide).

    The parent is the merchant whose code the applicant gives (an inviter's code); with
    no code, the merchant the applicant is bound to when its level is above the one
    wanted, else headquarters. The same rules as staff changes hold (level known, parent
    higher, no cycles). Someone refused before applies again on the same row (rejected →
    pending). Raises ``MerchantError`` (Chinese message) or ``InvalidTransition``. Flushes.
    """
    if isinstance(level, str):
        level = int(level) if level.isdecimal() and len(level) == 1 else 0
    level = _check_level(level)
    name = " ".join((name or "").split())
    phone = "".join((phone or "").replace("-", "").split())
    reason = " ".join((reason or "").split())
    if not 1 <= len(name) <= MAX_APPLY_NAME:
        raise MerchantError(
            "invalid_name", f"请填写姓名（最多 {MAX_APPLY_NAME} 个字）", field="name"
        )
    if not PHONE_RE.match(phone):
        raise MerchantError("invalid_phone", "请填写 11 位手机号码", field="phone")
    if len(reason) > MAX_APPLY_REASON:
        raise MerchantError(
            "invalid_reason", f"申请理由最多 {MAX_APPLY_REASON} 个字", field="reason"
        )
    if (parent_code or "").strip():
        parent = parent_for_code(parent_code)
        if parent.distributor.user_id == user_id:
            raise MerchantError("cycle", "不能填写自己的邀请码", 409, field="parent_code")
        if parent.level >= level:
            raise MerchantError(
                "parent_level",
                f"邀请人是{level_label(parent.level)}，只能申请比它低的等级（数字更大）",
                field="level",
            )
    else:
        parent = bound_merchant(user_id)
        if parent is not None and parent.level >= level:
            parent = None  # the bound merchant cannot be above this level: headquarters
    distributor = distributor_for_user(user_id)
    if distributor is not None and distributor.status != "active":
        raise MerchantError(
            "distributor_inactive", "你的分销员资格未生效或已被停用，暂不能申请订货商", 409
        )
    actor = f"user:{user_id}"
    note = _application_note(level, parent, name, phone, reason)
    existing = merchant_for_user(user_id)
    if existing is None:
        return create_merchant(
            user_id, level, parent.id if parent else None, actor, status="pending", note=note
        )
    if existing.status == "pending":
        raise MerchantError("already_applied", "你的申请正在审核中，请耐心等待", 409)
    if existing.status != "rejected":
        raise MerchantError("already_merchant", "你已经是订货商", 409)
    change_merchant(
        existing, actor, level=level, parent_id=parent.id if parent else None, set_parent=True
    )
    move_merchant(existing, "pending", actor, note)
    return existing


def approve_application(
    merchant: OrderingMerchant, actor: str, *, level: int | None, parent_id: int | None
) -> OrderingMerchant:
    """Staff approve an application at ``level`` under ``parent_id`` (None: headquarters),
    which may differ from what was asked: both go through ``change_merchant`` (parent
    higher, no cycles), then pending → active. Flushes; raises ``MerchantError`` or
    ``InvalidTransition`` (not pending any more)."""
    if merchant.status != "pending":
        raise MerchantError("not_pending", "该申请已处理，请刷新页面", 409)
    change_merchant(merchant, actor, level=level, parent_id=parent_id, set_parent=True)
    approve_merchant(merchant, actor)
    return merchant


def reject_application(merchant: OrderingMerchant, actor: str, reason: str) -> None:
    """Staff refuse an application with a reason the applicant sees (pending → rejected)."""
    reason = (reason or "").strip()
    if not reason:
        raise MerchantError("reason_required", "请填写驳回原因", field="reason")
    move_merchant(merchant, "rejected", actor, reason[:200])


def _last_reason(merchant: OrderingMerchant, status: str) -> str:
    return (
        db.session.scalar(
            select(StatusChange.reason)
            .where(
                StatusChange.subject == SUBJECT,
                StatusChange.subject_id == merchant.id,
                StatusChange.to_status == status,
            )
            .order_by(StatusChange.id.desc())
            .limit(1)
        )
        or ""
    )


def application_note(merchant: OrderingMerchant) -> str:
    """What the applicant wrote in their latest application ("" for staff-made rows)."""
    note = _last_reason(merchant, "pending")
    return note if note.startswith("申请") else ""


def rejection_reason(merchant: OrderingMerchant) -> str:
    """Why staff refused the latest application."""
    return _last_reason(merchant, "rejected")


# --- orders at level price ------------------------------------------------------------------


def place_merchant_order(
    merchant: OrderingMerchant,
    items: list,
    *,
    name: str,
    phone: str,
    district_code: str,
    detail: str,
    remark: str = "",
    now=None,
):
    """An order ``merchant`` places for its customer at its level price (flushes).

    The merchant is the buyer (it pays with WeChat Pay through the usual pay flow); the
    customer is the receiver. Stock is taken from headquarters' one stock number by the
    same conditional UPDATEs as any order (``create_order``): nothing moves to the
    merchant, headquarters ships (drop shipping). A ``MerchantOrder`` row marks it, so
    the payment follow-up pays the ancestors' 级差 and M nothing on its own purchase.
    Raises ``OrderError`` (bad input, sold out) or ``MerchantError`` (not active).
    """
    if not is_active(merchant):
        raise MerchantError("merchant_inactive", "订货商资格未生效或已停用，不能下单", 403)
    remark = check_remark(remark)
    wanted = normalise_items(items)
    name = (name or "").strip()
    phone = "".join((phone or "").replace("-", "").split())
    detail = (detail or "").strip()
    if not 1 <= len(name) <= 32:
        raise OrderError("invalid_name", "请填写客户姓名（最多 32 个字）")
    if not PHONE_RE.match(phone):
        raise OrderError("invalid_phone", "请填写客户的 11 位手机号码")
    resolved = regions.resolve(str(district_code or ""))
    if resolved is None:
        raise OrderError("invalid_district", "请选择正确的省市区")
    if not 2 <= len(detail) <= 200:
        raise OrderError("invalid_detail", "请填写详细地址（2-200 个字）")
    receiver = Receiver(
        name,
        phone,
        resolved.province.name,
        resolved.city.name,
        resolved.district.name,
        resolved.district.code,
        detail,
    )

    def at_level_price(sku) -> int:
        price = price_for(merchant.level, sku)
        if price is None:
            raise MerchantError("unknown_level", "你的等级暂无订货价，请联系商家", 409)
        return price

    user_id = merchant.distributor.user_id
    order = create_order(
        user_id,
        wanted,
        receiver,
        remark,
        price_of=at_level_price,
        actor=f"user:{user_id}",
        now=now,
    )
    db.session.add(
        MerchantOrder(
            order_id=order.id, merchant_id=merchant.id, level=merchant.level, customer_name=name
        )
    )
    db.session.flush()
    return order


# --- what the merchant centre lists ---------------------------------------------------------


@dataclass(frozen=True)
class OrderRow:
    """An order as its merchant sees it: its own order (full receiver) or a bound
    customer's (masked buyer), with shipping status and tracking."""

    order: object
    own: bool
    customer: str


def orders_query(merchant: OrderingMerchant):
    """Orders ``merchant`` may see: those it placed at level price, and its bound
    customers' orders (level-1 attribution) once paid. Keyed by the merchant only."""
    from sqlalchemy import or_

    own = select(MerchantOrder.order_id).where(MerchantOrder.merchant_id == merchant.id)
    bound = select(OrderAttribution.order_id).where(
        OrderAttribution.level == 1, OrderAttribution.distributor_id == merchant.distributor_id
    )
    return select(Order).where(
        or_(
            Order.id.in_(own),
            Order.id.in_(bound) & Order.status.not_in((PENDING_PAYMENT, CANCELLED)),
        )
    )


def orders_of(
    merchant: OrderingMerchant, page: int = 1, per_page: int = 20
) -> tuple[list[OrderRow], int]:
    """A page of the merchant's orders, newest first, and the total."""
    from sqlalchemy import func

    query = orders_query(merchant)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    orders = db.session.scalars(
        query.order_by(Order.id.desc()).limit(per_page).offset((max(page, 1) - 1) * per_page)
    ).all()
    mine = {
        row.order_id: row
        for row in db.session.scalars(
            select(MerchantOrder).where(MerchantOrder.order_id.in_([o.id for o in orders]))
        )
    }
    names = dict(
        db.session.execute(
            select(User.id, User.nickname).where(User.id.in_({o.user_id for o in orders}))
        ).all()
    )
    rows = []
    for order in orders:
        row = mine.get(order.id)
        if row is not None and row.merchant_id == merchant.id:
            rows.append(OrderRow(order, True, row.customer_name or order.receiver_name))
        else:
            rows.append(OrderRow(order, False, mask_name(names.get(order.user_id), order.user_id)))
    return rows, int(total)
