"""Pydantic models of the JSON API: they validate requests and describe the OpenAPI document.

Request bodies are strict (``12.5`` or ``"12"`` is not an integer, ``"true"`` is not a
boolean) and refuse unknown fields, so a typo never passes silently. A JSON number whose
fraction is zero (``1.0``, ``1e3``) is the integer it names: JSON Schema's ``integer``, which
the OpenAPI document uses, includes it, and some JSON encoders write every number that way.
Query strings arrive as text, so their models convert ``"2"`` to 2 but still refuse ``abc``.
Every id is bounded to PostgreSQL's integer range: a larger number is a validation error,
not a database error.
Money is an integer number of fen in fields ending in ``_fen``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from app.catalog.services import (
    MAX_PRICE_FEN,
    MAX_PURCHASE_LIMIT,
    MAX_SKUS,
    MAX_SPECS,
    MAX_STOCK,
)

MAX_ID = 2**31 - 1
MAX_PER_PAGE = 50
MAX_PAGE = 10_000
MAX_SORT = 1_000_000

# NUL cannot be stored in PostgreSQL text; refuse it here rather than fail in the database.
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"  # and at least one visible character
Text = Annotated[StrictStr, Field(pattern=NO_NUL)]
Name = Annotated[StrictStr, Field(pattern=NOT_BLANK)]
SpecName = Annotated[StrictStr, Field(min_length=1, max_length=10, pattern=NOT_BLANK)]
SpecValue = Annotated[StrictStr, Field(min_length=1, max_length=20, pattern=NOT_BLANK)]
QueryText = Annotated[str, Field(pattern=NO_NUL)]
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
Fen = Annotated[StrictInt, Field(ge=0, le=MAX_PRICE_FEN, description="金额，单位分")]
Stock = Annotated[StrictInt, Field(ge=0, le=MAX_STOCK)]
QueryId = Annotated[int, Field(ge=1, le=MAX_ID)]


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omitted(**kwargs: Any) -> Any:
    """A PATCH field: absent means "leave as is"; ``null`` is refused unless the type allows it."""
    return Field(default=None, json_schema_extra=_drop_default, **kwargs)


# How deep whole_numbers looks: a body's own fields and lists or maps of numbers in them.
# Nested bodies are Body models that convert their own fields; deeper input is refused by
# the schema anyway (and walking it could exhaust the stack).
WHOLE_NUMBER_DEPTH = 3


def whole_numbers(value: Any, depth: int = WHOLE_NUMBER_DEPTH) -> Any:
    """``value`` with every float whose fraction is zero (``1.0``) turned into that int.

    Other floats (``1.5``, ``inf``) stay floats, so strict integer fields still refuse them.
    """
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if depth <= 0:
        return value
    if isinstance(value, list):
        return [whole_numbers(item, depth - 1) for item in value]
    if isinstance(value, dict):
        return {key: whole_numbers(item, depth - 1) for key, item in value.items()}
    return value


class Body(BaseModel):
    """Base of every JSON request body: strict types, unknown fields refused, whole floats
    (``1.0``) taken as integers."""

    model_config = ConfigDict(strict=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _whole_floats_are_integers(cls, data: Any) -> Any:
        return whole_numbers(data) if isinstance(data, dict) else data


class Query(BaseModel):
    """Base of query-string models: text converted to numbers; unknown parameters ignored
    (WeChat and CDNs append their own, e.g. ``from=singlemessage``)."""

    model_config = ConfigDict(extra="ignore")


# --- errors -------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """One offending input."""

    field: str = Field(description="出错的字段路径，如 skus.0.price_fen")
    code: str
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="snake_case 错误码，如 validation_error、not_found")
    message: str = Field(description="中文说明，可直接展示")
    details: list[ErrorDetail] | None = None
    link: str | None = Field(
        None, description="可帮助解决问题的页面路径，如待付款订单 /orders?status=pending_payment"
    )


class ErrorResponse(BaseModel):
    """Every 4xx answer of the API."""

    error: ErrorBody


# --- shared pieces ------------------------------------------------------------------------


class PageQuery(Query):
    page: int = Field(1, ge=1, le=MAX_PAGE, description="页码；超过最后一页时返回空列表（200）")
    per_page: int = Field(20, ge=1, le=MAX_PER_PAGE)


class PageMeta(BaseModel):
    page: int
    per_page: int
    total: int
    pages: int


class PageInfo(BaseModel):
    """Where a page stands, for lists fetched one row past the page (no total count)."""

    page: int
    per_page: int
    has_next: bool

    @classmethod
    def of(cls, query: PageQuery, fetched: int) -> PageInfo:
        """The page info when ``fetched`` rows came back for ``per_page + 1`` asked."""
        return cls(page=query.page, per_page=query.per_page, has_next=fetched > query.per_page)


class SkuOut(BaseModel):
    """A buyable SKU as customers see it."""

    id: int
    specs: dict[str, str] = Field(description="规格值，如 {'颜色': '红', '尺码': 'M'}")
    price_fen: int
    original_price_fen: int
    stock: int


class ImageOut(BaseModel):
    url: str
    width: int
    height: int


# --- customer side ------------------------------------------------------------------------


class CategoryOut(BaseModel):
    id: int
    name: str
    sort: int


class CategoryList(BaseModel):
    items: list[CategoryOut]


class ProductListQuery(PageQuery):
    category_id: QueryId | None = None
    q: QueryText | None = Field(None, max_length=50, description="按标题、副标题搜索")


class ProductSummary(BaseModel):
    id: int
    title: str
    subtitle: str
    category_id: int | None
    min_price_fen: int = Field(description="最低 SKU 价格")
    original_price_fen: int = Field(description="最低价 SKU 的原价（划线价）")
    cover_url: str | None = Field(description="封面图绝对地址")
    stock: int = Field(description="所有 SKU 库存之和")


class ProductPage(BaseModel):
    items: list[ProductSummary]
    meta: PageMeta


class ProductDetail(ProductSummary):
    description: str
    purchase_limit: int = Field(description="每人限购件数；0 表示不限购")
    spec_names: list[str] = Field(description="规格项名称，按展示顺序，如 ['颜色', '尺码']")
    images: list[ImageOut]
    skus: list[SkuOut]
    discount_ends_at: datetime | None = Field(
        None, description="限时折扣结束时间（进行中时；SKU 的 price_fen 已是折扣价）"
    )


class Me(BaseModel):
    id: int
    openid: str
    nickname: str
    avatar_url: str
    is_distributor: bool


# --- merchant Open API --------------------------------------------------------------------


class AdminProductQuery(PageQuery):
    category_id: QueryId | None = None
    q: QueryText | None = Field(None, max_length=50)
    on_shelf: bool | None = Field(None, description="true 仅在售，false 仅已下架")


class CommissionRuleOut(BaseModel):
    """A product's (``sku_id`` null) or one SKU's own commission rule."""

    product_id: int
    sku_id: int | None
    mode: str = Field(description="percent（按比例）、fixed（每件固定金额）或 none（不参与分佣）")
    level1: int = Field(description="一级：percent 为万分比（1000 = 10%），fixed 为每件分数")
    level2: int = Field(description="二级，单位同 level1")
    level3: int = Field(description="三级，单位同 level1")
    description: str = Field(description="中文说明，如“按比例 一级 10% · 二级 5% · 三级 0%”")


class CommissionRuleIn(Body):
    """A commission rule to save. SKU rule > product rule > distributor grade > shop default."""

    mode: Literal["percent", "fixed", "none"] = Field(
        description="percent（按比例）、fixed（每件固定金额）或 none（不参与分佣）"
    )
    level1: StrictInt = Field(0, description="percent：万分比 0-10000；fixed：每件分数 ≥ 0")
    level2: StrictInt = Field(0, description="二级，单位同 level1")
    level3: StrictInt = Field(0, description="三级，单位同 level1；店铺只开两级时不发放")


class AdminSkuOut(SkuOut):
    code: str | None
    commission_rule: CommissionRuleOut | None = Field(
        None, description="该 SKU 自己的佣金规则；null 表示沿用商品规则、等级或店铺默认"
    )


class AdminProduct(BaseModel):
    id: int
    title: str
    subtitle: str
    description: str
    category_id: int | None
    spec_names: list[str]
    on_shelf: bool
    featured: bool
    purchase_limit: int = Field(
        description="每人限购件数（待付款与已付款订单合计，退款不计）；0 表示不限购"
    )
    sort: int
    min_price_fen: int
    stock: int
    images: list[ImageOut]
    skus: list[AdminSkuOut]
    commission_rule: CommissionRuleOut | None = Field(
        None, description="商品自己的佣金规则；null 表示沿用分销员等级或店铺默认比例"
    )
    created_at: datetime
    updated_at: datetime


class AdminProductPage(BaseModel):
    items: list[AdminProduct]
    meta: PageMeta


class SkuCreate(Body):
    specs: dict[SpecName, SpecValue] = Field(
        default_factory=dict, description="每个规格项一个值；无规格商品为 {}"
    )
    price_fen: Fen
    original_price_fen: Fen = 0
    stock: Stock = 0
    code: Text | None = Field(None, max_length=64, description="商家编码，全店唯一")


class SkuUpdate(Body):
    """A SKU in a PATCH. With an ``id``: that SKU is kept and only the fields given change.
    Without: a new SKU (``price_fen`` required, the rest default as on create)."""

    id: Id | None = Field(None, description="已有 SKU 的 id；不填表示新增")
    specs: dict[SpecName, SpecValue] = omitted()
    price_fen: Fen = omitted()
    original_price_fen: Fen = omitted()
    stock: Stock = omitted()
    code: Text | None = omitted(max_length=64)

    @model_validator(mode="after")
    def _new_sku_has_price(self) -> SkuUpdate:
        if self.id is None and "price_fen" not in self.model_fields_set:
            raise ValueError("新增的 SKU 需要 price_fen")
        return self


class ProductCreate(Body):
    title: Name = Field(min_length=1, max_length=100)
    subtitle: Text = Field("", max_length=200)
    description: Text = Field("", max_length=20_000)
    category_id: Id | None = None
    spec_names: list[SpecName] = Field(default_factory=list, max_length=MAX_SPECS)
    skus: list[SkuCreate] = Field(min_length=1, max_length=MAX_SKUS)
    on_shelf: StrictBool = True
    featured: StrictBool = False
    purchase_limit: StrictInt = Field(
        0, ge=0, le=MAX_PURCHASE_LIMIT, description="每人限购件数；0 表示不限购"
    )
    sort: StrictInt = Field(0, ge=-MAX_SORT, le=MAX_SORT, description="小的在前")


class ProductPatch(Body):
    """Only the fields given change. ``skus``, when given, is the whole new list: SKUs with
    an ``id`` are kept and updated, those without are added, the product's others removed."""

    title: Name = omitted(min_length=1, max_length=100)
    subtitle: Text = omitted(max_length=200)
    description: Text = omitted(max_length=20_000)
    category_id: Id | None = omitted(description="null 表示不归入分类")
    spec_names: list[SpecName] = omitted(max_length=MAX_SPECS)
    skus: list[SkuUpdate] = omitted(min_length=1, max_length=MAX_SKUS)
    on_shelf: StrictBool = omitted()
    featured: StrictBool = omitted()
    purchase_limit: StrictInt = omitted(ge=0, le=MAX_PURCHASE_LIMIT, description="0 表示不限购")
    sort: StrictInt = omitted(ge=-MAX_SORT, le=MAX_SORT)
    commission_rule: CommissionRuleIn | None = omitted(
        description="商品的佣金规则；null 删除（改用等级或店铺默认）。SKU 规则见 "
        "/products/{id}/skus/{sku_id}/commission-rule"
    )


class StockSet(Body):
    stock: Stock = Field(description="新的库存数（绝对值）")


class StockAdjust(Body):
    delta: StrictInt = Field(
        ge=-MAX_STOCK, le=MAX_STOCK, description="增减数量；减少后不能低于 0，否则 409"
    )
