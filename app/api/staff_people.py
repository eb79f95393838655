"""``GET /api/v1/staff/people?q=``: the admin pickers' search (staff session required).

Not the Open API (no bearer token): the merchant admin's own pages call it with the staff
sign-in cookie, as they call ``/api/v1/regions``. A customer's session answers 403.
"""

from __future__ import annotations

from typing import Literal

from flask_login import current_user
from pydantic import BaseModel, Field
from spectree import Response

from app.admin.people import LIMIT, MAX_QUERY, search_people
from app.api.blueprints import bp
from app.api.schemas import ErrorResponse, Query, QueryText
from app.api.spec import COOKIE, spec
from app.core.errors import ApiError

TAGS = ["staff"]


class PeopleQuery(Query):
    q: QueryText = Field("", max_length=MAX_QUERY, description="昵称、手机号、推广码或编号")
    kind: Literal["user", "distributor", "merchant"] = Field(
        "user", description="返回谁的编号：顾客 user、分销员 distributor、订货商 merchant"
    )


class PersonOut(BaseModel):
    id: int = Field(description="kind 所指的编号（表单提交的值）")
    user_id: int
    distributor_id: int | None
    merchant_id: int | None
    name: str
    role: str
    label: str
    phone: str
    code: str
    detail: str


class PeopleList(BaseModel):
    items: list[PersonOut]


@bp.get("/staff/people")
@spec.validate(
    resp=Response(HTTP_200=PeopleList, HTTP_401=ErrorResponse, HTTP_403=ErrorResponse),
    tags=TAGS,
    security={COOKIE: []},
)
def staff_people(query: PeopleQuery):
    """Search users, distributors or ordering merchants by nickname, phone or code (at most
    10), for the admin's pickers. Staff only: 401 signed out, 403 for a customer."""
    if not current_user.is_authenticated:
        raise ApiError(401, "unauthorized", "请先登录商家后台")
    if not getattr(current_user, "is_staff", False):
        raise ApiError(403, "forbidden", "仅限商家员工")
    found = search_people(query.q, query.kind, LIMIT)
    return PeopleList(items=[PersonOut(**p.as_json(query.kind)) for p in found])
