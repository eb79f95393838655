"""A person's risk page: accounts linked by a shared receiver phone, address, payer or
device, their orders and refunds, and the binding history."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select

from app.accounts.models import User
from app.accounts.traces import SignInTrace, traces_of
from app.distribution.models import BindingEvent, Distributor
from app.extensions import db
from app.orders.models import Address, Order, PaymentTransaction, Refund
from app.risk.models import RiskFlag
from app.risk.signals import normalise_address, normalise_phone, order_address, payer_openid


@dataclass
class Link:
    user: User
    reasons: set[str] = field(default_factory=set)


@dataclass
class Person:
    user: User
    distributor: Distributor | None
    phones: set[str]
    places: set[str]
    links: list[Link]
    orders: list[Order]
    refunds: list[Refund]
    bindings: list[BindingEvent]
    flags: list[RiskFlag]
    traces: list[SignInTrace]


def _receivers(user_id: int) -> tuple[set[str], set[str], list[Order]]:
    orders = list(
        db.session.scalars(
            select(Order).where(Order.user_id == user_id).order_by(Order.id.desc()).limit(100)
        )
    )
    phones = {normalise_phone(o.receiver_phone) for o in orders}
    places = {order_address(o) for o in orders}
    for a in db.session.scalars(select(Address).where(Address.user_id == user_id)):
        phones.add(normalise_phone(a.phone))
        places.add(normalise_address(a.province, a.city, a.district, a.detail))
    phones.discard("")
    places.discard("")
    return phones, places, orders


def person(user: User) -> Person:
    """Everything the risk page shows about ``user``."""
    phones, places, orders = _receivers(user.id)
    links: dict[int, Link] = {}

    def link(other_id: int, reason: str) -> None:
        if other_id != user.id:
            links.setdefault(other_id, Link(user=None)).reasons.add(reason)  # type: ignore[arg-type]

    # Shared phone or address: other people's orders and saved addresses.
    raw_phones = {o.receiver_phone for o in orders} | {
        a.phone for a in db.session.scalars(select(Address).where(Address.user_id == user.id))
    }
    if raw_phones:
        for other, phone in db.session.execute(
            select(Order.user_id, Order.receiver_phone)
            .where(Order.receiver_phone.in_(raw_phones), Order.user_id != user.id)
            .limit(500)
        ):
            if normalise_phone(phone) in phones:
                link(other, "收货电话相同")
        for other, phone in db.session.execute(
            select(Address.user_id, Address.phone)
            .where(Address.phone.in_(raw_phones), Address.user_id != user.id)
            .limit(500)
        ):
            if normalise_phone(phone) in phones:
                link(other, "收货电话相同")
    districts = {o.district for o in orders}
    if districts:
        for other in db.session.scalars(
            select(Order).where(Order.district.in_(districts), Order.user_id != user.id).limit(2000)
        ):
            if order_address(other) in places:
                link(other.user_id, "收货地址相同")
    # Same payer: orders of others paid by this user's openid, and this user's orders paid
    # by someone else's openid.
    for order in orders:
        payer = payer_openid(order.id)
        if payer and payer != user.openid:
            found = db.session.scalar(select(User.id).where(User.openid == payer))
            if found:
                link(found, "付款人相同")
    for other, payload in db.session.execute(
        select(Order.user_id, PaymentTransaction.payload)
        .join(Order, Order.id == PaymentTransaction.order_id)
        .where(PaymentTransaction.kind == "paid", Order.user_id != user.id)
        .order_by(PaymentTransaction.id.desc())
        .limit(2000)
    ):
        payer = payload.get("payer") if isinstance(payload, dict) else None
        if isinstance(payer, dict) and payer.get("openid") == user.openid:
            link(other, "付款人相同")
    traces = traces_of([user.id])
    for trace in traces:
        if not trace.ip:
            continue
        for other in db.session.scalars(
            select(SignInTrace.user_id)
            .where(
                SignInTrace.ip == trace.ip,
                SignInTrace.ua_hash == trace.ua_hash,
                SignInTrace.user_id != user.id,
            )
            .limit(100)
        ):
            link(other, "同一设备登录")
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(links)))}
    for user_id, item in links.items():
        item.user = users.get(user_id)
    distributor = db.session.scalar(select(Distributor).where(Distributor.user_id == user.id))
    order_ids = [o.id for o in orders]
    refunds = (
        list(
            db.session.scalars(
                select(Refund).where(Refund.order_id.in_(order_ids)).order_by(Refund.id.desc())
            )
        )
        if order_ids
        else []
    )
    binding_filter = BindingEvent.user_id == user.id
    if distributor is not None:
        binding_filter = or_(binding_filter, BindingEvent.distributor_id == distributor.id)
    bindings = list(
        db.session.scalars(
            select(BindingEvent).where(binding_filter).order_by(BindingEvent.id.desc()).limit(100)
        )
    )
    flag_filter = RiskFlag.user_id == user.id
    if distributor is not None:
        flag_filter = or_(flag_filter, RiskFlag.distributor_id == distributor.id)
    flags = list(
        db.session.scalars(
            select(RiskFlag).where(flag_filter).order_by(RiskFlag.id.desc()).limit(100)
        )
    )
    return Person(
        user=user,
        distributor=distributor,
        phones=phones,
        places=places,
        links=sorted((i for i in links.values() if i.user is not None), key=lambda i: i.user.id),
        orders=orders,
        refunds=refunds,
        bindings=bindings,
        flags=flags,
        traces=traces,
    )
