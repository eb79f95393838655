"""Delivery addresses: validated against the GB/T 2260 tree, owned by one customer."""

from __future__ import annotations

import re

from sqlalchemy import func, select, update

from app import regions
from app.extensions import db
from app.orders.models import Address
from app.orders.services import OrderError

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
MAX_ADDRESSES = 20


def list_addresses(user_id: int) -> list[Address]:
    """The customer's addresses, default first."""
    return list(
        db.session.scalars(
            select(Address)
            .where(Address.user_id == user_id)
            .order_by(Address.is_default.desc(), Address.id.desc())
        )
    )


def save_address(
    user_id: int,
    *,
    name: str,
    phone: str,
    district_code: str,
    detail: str,
    is_default: bool = False,
    address: Address | None = None,
) -> Address:
    """Create (or update ``address``) after checking every field; names come from the code."""
    name = (name or "").strip()
    phone = re.sub(r"[\s-]", "", phone or "")
    detail = (detail or "").strip()
    if not 1 <= len(name) <= 32:
        raise OrderError("invalid_name", "请填写收货人姓名（最多 32 个字）")
    if not PHONE_RE.match(phone):
        raise OrderError("invalid_phone", "请填写 11 位手机号码")
    resolved = regions.resolve(str(district_code or ""))
    if resolved is None:
        raise OrderError("invalid_district", "请选择正确的省市区")
    if not 2 <= len(detail) <= 200:
        raise OrderError("invalid_detail", "请填写详细地址（2-200 个字）")
    if address is None:
        count = db.session.scalar(select(func.count(Address.id)).where(Address.user_id == user_id))
        if count >= MAX_ADDRESSES:
            raise OrderError("too_many_addresses", f"最多保存 {MAX_ADDRESSES} 个地址")
        address = Address(user_id=user_id)
        db.session.add(address)
        is_default = is_default or count == 0  # the first address is the default
    elif address.user_id != user_id:
        raise OrderError("not_found", "地址不存在", status=404)
    address.name = name
    address.phone = phone
    address.province = resolved.province.name
    address.city = resolved.city.name
    address.district = resolved.district.name
    address.district_code = resolved.district.code
    address.detail = detail
    db.session.flush()
    if is_default:
        set_default_address(user_id, address)
    return address


def set_default_address(user_id: int, address: Address) -> None:
    """Make ``address`` the customer's only default."""
    db.session.execute(
        update(Address)
        .where(Address.user_id == user_id, Address.id != address.id)
        .values(is_default=False)
        .execution_options(synchronize_session=False)
    )
    address.is_default = True
    db.session.flush()


def default_address(user_id: int) -> Address | None:
    """The default address, else the newest, else None."""
    found = list_addresses(user_id)
    return found[0] if found else None


def delete_address(user_id: int, address: Address) -> None:
    """Delete one of the customer's addresses (orders keep their own copy)."""
    if address.user_id != user_id:
        raise OrderError("not_found", "地址不存在", status=404)
    db.session.delete(address)
    db.session.flush()
