"""Delivery addresses over JSON, and the GB/T 2260 region tree that feeds the picker.

An address stores the 6-digit district code; the province, city and district names are
always taken from the code (app.orders.addresses.save_address), never from the client.
Another customer's address answers 404, like one that does not exist.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictBool, StrictStr
from spectree import Response

from app import regions
from app.accounts.guards import customer_id, customer_required
from app.api.blueprints import bp
from app.api.orders import order_errors
from app.api.schemas import MAX_ID, Body, ErrorResponse, Query, Text, omitted
from app.api.spec import COOKIE, spec
from app.core.errors import ApiError
from app.extensions import db
from app.orders.addresses import delete_address, list_addresses, save_address, set_default_address
from app.orders.models import Address

TAGS = ["addresses"]
SECURITY = {COOKIE: []}
ERRORS = {"HTTP_401": ErrorResponse, "HTTP_404": ErrorResponse}
BODY_ERRORS = {**ERRORS, "HTTP_400": ErrorResponse, "HTTP_422": ErrorResponse}
ADDRESS_ID = "<int:address_id>"
REGIONS_MAX_AGE = 86400  # the dataset changes with a release, not during a day


class AddressIn(Body):
    name: Text = Field(min_length=1, max_length=32, description="收货人")
    phone: Text = Field(min_length=1, max_length=20, description="11 位手机号码")
    district_code: StrictStr = Field(pattern=r"^\d{6}$", description="区县的 GB/T 2260 六位代码")
    detail: Text = Field(min_length=1, max_length=200, description="详细地址（街道门牌）")
    is_default: StrictBool = False


class AddressPatch(Body):
    """Only the fields given change."""

    name: Text = omitted(min_length=1, max_length=32)
    phone: Text = omitted(min_length=1, max_length=20)
    district_code: StrictStr = omitted(pattern=r"^\d{6}$")
    detail: Text = omitted(min_length=1, max_length=200)
    is_default: StrictBool = omitted()


class AddressOut(BaseModel):
    id: int
    name: str
    phone: str
    province: str
    city: str
    district: str
    district_code: str
    detail: str
    is_default: bool


class AddressList(BaseModel):
    items: list[AddressOut]


class RegionQuery(Query):
    parent: str | None = Field(
        None,
        pattern=r"^\d{6}$",
        description="省代码给出其城市，城市代码给出其区县；不填给出全部省份",
    )


class RegionOut(BaseModel):
    code: str
    name: str


class RegionList(BaseModel):
    level: Literal["province", "city", "district"]
    items: list[RegionOut]


def address_out(row: Address) -> AddressOut:
    return AddressOut(
        id=row.id,
        name=row.name,
        phone=row.phone,
        province=row.province,
        city=row.city,
        district=row.district,
        district_code=row.district_code,
        detail=row.detail,
        is_default=row.is_default,
    )


def _own_address(address_id: int) -> Address:
    row = db.session.get(Address, address_id) if address_id <= MAX_ID else None
    if row is None or row.user_id != customer_id():
        raise ApiError(404, "not_found", "地址不存在")
    return row


@bp.get("/addresses")
@customer_required
@spec.validate(
    resp=Response(HTTP_200=AddressList, HTTP_401=ErrorResponse), tags=TAGS, security=SECURITY
)
def get_addresses():
    """The customer's addresses, default first."""
    return AddressList(items=[address_out(a) for a in list_addresses(customer_id())])


@bp.post("/addresses")
@customer_required
@spec.validate(resp=Response(HTTP_201=AddressOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def create_address(json: AddressIn):
    """Add an address; the first one becomes the default."""
    with order_errors():
        row = save_address(
            customer_id(),
            name=json.name,
            phone=json.phone,
            district_code=json.district_code,
            detail=json.detail,
            is_default=json.is_default,
        )
        db.session.commit()
    return address_out(row), 201


@bp.patch(f"/addresses/{ADDRESS_ID}")
@customer_required
@spec.validate(resp=Response(HTTP_200=AddressOut, **BODY_ERRORS), tags=TAGS, security=SECURITY)
def patch_address(address_id: int, json: AddressPatch):
    """Change the fields given (``is_default: true`` makes it the only default)."""
    row = _own_address(address_id)
    given = json.model_fields_set
    with order_errors():
        save_address(
            customer_id(),
            name=json.name if "name" in given else row.name,
            phone=json.phone if "phone" in given else row.phone,
            district_code=json.district_code if "district_code" in given else row.district_code,
            detail=json.detail if "detail" in given else row.detail,
            address=row,
        )
        if json.is_default:
            set_default_address(customer_id(), row)
        db.session.commit()
    return address_out(row)


@bp.delete(f"/addresses/{ADDRESS_ID}")
@customer_required
@spec.validate(resp=Response("HTTP_204", **ERRORS), tags=TAGS, security=SECURITY)
def remove_address(address_id: int):
    """Delete an address (placed orders keep their own copy)."""
    row = _own_address(address_id)
    with order_errors():
        delete_address(customer_id(), row)
        db.session.commit()
    return "", 204


@bp.get("/regions")
@spec.validate(resp=Response(HTTP_200=RegionList, HTTP_404=ErrorResponse), tags=TAGS)
def get_regions(query: RegionQuery):
    """The picker's next column: provinces, a province's cities, or a city's districts.

    Public and cacheable (a day): the tree is the GB2260 dataset, the same for everyone.
    """
    if query.parent is None:
        level, found = "province", regions.provinces()
    elif query.parent.endswith("0000") and regions.cities(query.parent):
        level, found = "city", regions.cities(query.parent)
    else:
        level, found = "district", regions.districts(query.parent)
    if not found:
        raise ApiError(404, "not_found", "没有该地区")
    body = RegionList(level=level, items=[RegionOut(code=r.code, name=r.name) for r in found])
    return body, 200, {"Cache-Control": f"public, max-age={REGIONS_MAX_AGE}"}
