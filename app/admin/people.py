"""Finding and naming people for staff: the pickers' search and the names on admin pages.

Staff never type ids: they search a person by nickname, phone (any of their addresses),
distributor code or number, and the page shows names ("演示·小美（分销员）"). A form still
posts the id it picked (a hidden input), so every server check stays where it was.

One query answers a search: users with their distributor and ordering-merchant rows
joined, the phone from the newest default address as a scalar subquery, at most
``LIMIT`` rows; a search never scans more than it must return.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import exists, or_, select

from app.accounts.models import ApiToken, Staff, User
from app.accounts.names import display_name
from app.cloud.models import OrderingMerchant, RegionAgent
from app.core.params import MAX_ID
from app.distribution.models import Distributor
from app.extensions import db
from app.orders.models import Address

KINDS = ("user", "distributor", "merchant")
KIND_ROLES = {"user": "顾客", "distributor": "分销员", "merchant": "订货商"}
LIMIT = 10
MAX_QUERY = 32


@dataclass(frozen=True)
class Person:
    """One search hit: a user and, when they have them, their distributor and merchant."""

    user_id: int
    nickname: str
    phone: str
    distributor_id: int | None
    code: str
    merchant_id: int | None

    @property
    def name(self) -> str:
        """The nickname, or ``微信用户0427``."""
        return display_name(self.nickname, self.user_id)

    def role(self) -> str:
        """What the person is to the shop, the highest first."""
        if self.merchant_id is not None:
            return "订货商"
        if self.distributor_id is not None:
            return "分销员"
        return "顾客"

    def label(self) -> str:
        """``演示·小美（分销员）``: what a picker shows once chosen."""
        return f"{self.name}（{self.role()}）"

    def as_json(self, kind: str) -> dict:
        """The picker's row: ``id`` is the id of ``kind`` (what the form posts)."""
        ids = {"user": self.user_id, "distributor": self.distributor_id}
        ids["merchant"] = self.merchant_id
        details = [f"用户 {self.user_id}"]
        if self.code:
            details.append(f"推广码 {self.code}")
        if self.phone:
            details.append(self.phone)
        return {
            "id": ids[kind],
            "user_id": self.user_id,
            "distributor_id": self.distributor_id,
            "merchant_id": self.merchant_id,
            "name": self.name,
            "role": self.role(),
            "label": self.label(),
            "phone": self.phone,
            "code": self.code,
            "detail": " · ".join(details),
        }


def _phone():
    return (
        select(Address.phone)
        .where(Address.user_id == User.id)
        .order_by(Address.is_default.desc(), Address.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _base():
    return (
        select(
            User.id,
            User.nickname,
            _phone(),
            Distributor.id,
            Distributor.code,
            OrderingMerchant.id,
        )
        .select_from(User)
        .outerjoin(Distributor, Distributor.user_id == User.id)
        .outerjoin(OrderingMerchant, OrderingMerchant.distributor_id == Distributor.id)
    )


def _people(rows) -> list[Person]:
    return [
        Person(uid, nick or "", phone or "", did, code or "", mid)
        for uid, nick, phone, did, code, mid in rows
    ]


def search_people(q: str, kind: str = "user", limit: int = LIMIT) -> list[Person]:
    """People whose nickname contains ``q``, whose phone contains it (3 digits or more),
    whose distributor code is ``q``, or whose user, distributor or merchant number is
    ``q``; only distributors (merchants) for ``kind`` distributor (merchant)."""
    q = (q or "").strip()[:MAX_QUERY]
    if not q:
        return []
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    conditions = [
        User.nickname.ilike(f"%{escaped}%", escape="\\"),
        Distributor.code == q.upper(),
    ]
    if q.isascii() and q.isdecimal():
        if len(q) >= 3:
            conditions.append(
                exists().where(Address.user_id == User.id, Address.phone.like(f"%{q}%"))
            )
        if len(q) <= len(str(MAX_ID)) and int(q) <= MAX_ID:
            number = int(q)
            conditions += [
                User.id == number,
                Distributor.id == number,
                OrderingMerchant.id == number,
            ]
    query = _base().where(or_(*conditions))
    if kind == "distributor":
        query = query.where(Distributor.id.is_not(None))
    elif kind == "merchant":
        query = query.where(OrderingMerchant.id.is_not(None))
    return _people(db.session.execute(query.order_by(User.id.desc()).limit(limit)).all())


def people_by_user(user_ids: Iterable[int | None]) -> dict[int, Person]:
    """Each user id's Person (one query), for naming people on a page."""
    wanted = {i for i in user_ids if i}
    if not wanted:
        return {}
    rows = db.session.execute(_base().where(User.id.in_(wanted))).all()
    return {p.user_id: p for p in _people(rows)}


def people_by_openid(openids: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Each openid's (user id, label) (one query), for the message log's recipients."""
    wanted = {o for o in openids if o}
    if not wanted:
        return {}
    rows = db.session.execute(select(User.openid, User.id).where(User.openid.in_(wanted))).all()
    found = people_by_user(uid for _o, uid in rows)
    return {o: (uid, found[uid].label()) for o, uid in rows if uid in found}


def people_by_distributor(distributor_ids: Iterable[int | None]) -> dict[int, Person]:
    """Each distributor id's Person (one query)."""
    wanted = {i for i in distributor_ids if i}
    if not wanted:
        return {}
    rows = db.session.execute(_base().where(Distributor.id.in_(wanted))).all()
    return {p.distributor_id: p for p in _people(rows)}


def people_by_merchant(merchant_ids: Iterable[int | None]) -> dict[int, Person]:
    """Each ordering merchant id's Person (one query)."""
    wanted = {i for i in merchant_ids if i}
    if not wanted:
        return {}
    rows = db.session.execute(_base().where(OrderingMerchant.id.in_(wanted))).all()
    return {p.merchant_id: p for p in _people(rows)}


def agent_names(agent_ids: Iterable[int]) -> dict[int, str]:
    """``小王（区域代理）`` for each region agent id."""
    wanted = set(agent_ids)
    if not wanted:
        return {}
    rows = db.session.execute(
        select(RegionAgent.id, User.id, User.nickname)
        .join(User, User.id == RegionAgent.user_id)
        .where(RegionAgent.id.in_(wanted))
    ).all()
    return {aid: f"{display_name(nick, uid)}（区域代理）" for aid, uid, nick in rows}


def picked_label(kind: str, raw: str | None) -> str:
    """The label a picker shows for the id a form sent back (``""`` when none)."""
    raw = (raw or "").strip()
    if not (raw.isascii() and raw.isdecimal()) or len(raw) > 10 or int(raw) > MAX_ID:
        return ""
    number = int(raw)
    find = {"user": people_by_user, "distributor": people_by_distributor}
    find["merchant"] = people_by_merchant
    found = find[kind]([number]).get(number)
    return found.label() if found is not None else ""


ACTOR_WORDS = {"wechat": "微信支付", "system": "系统", "worker": "系统任务", "": "—"}


def actor_names(actors: Iterable[str | None]) -> dict[str, str]:
    """Readable names for ``actor`` strings (audit log, binding events): ``staff:3`` →
    ``clerk（员工）``, ``api:2`` → ``Open API（ERP）``, ``user:7`` → ``小美（顾客）``."""
    wanted: dict[str, set[int]] = {"staff": set(), "api": set(), "user": set()}
    for actor in actors:
        kind, _, ident = (actor or "").partition(":")
        if kind in wanted and ident.isascii() and ident.isdecimal() and len(ident) < 10:
            wanted[kind].add(int(ident))
    names = dict(ACTOR_WORDS)
    if wanted["staff"]:
        for row in db.session.scalars(select(Staff).where(Staff.id.in_(wanted["staff"]))):
            names[f"staff:{row.id}"] = f"{row.username}（{'店主' if row.is_owner else '员工'}）"
    if wanted["api"]:
        for row in db.session.scalars(select(ApiToken).where(ApiToken.id.in_(wanted["api"]))):
            names[f"api:{row.id}"] = f"Open API（{row.name}）"
    for uid, person in people_by_user(wanted["user"]).items():
        names[f"user:{uid}"] = f"{person.name}（顾客）"
    return names


def actor_text(actor: str | None, names: dict[str, str]) -> str:
    """``actor`` by its name in ``names``, else as a role (an account since deleted)."""
    actor = actor or ""
    if actor in names:
        return names[actor]
    kind, _, ident = actor.partition(":")
    role = {"staff": "员工", "api": "Open API", "user": "顾客"}.get(kind)
    return f"{role} #{ident}" if role else actor
