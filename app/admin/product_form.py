"""The specification and SKU grid of the product form: read, validate, rebuild.

The page's script builds one row per combination of specification values; without the
script, the "生成规格表" button asks the server to do the same (``build_rows``). Either
way the server reads the posted rows here and trusts none of them: prices go through
``parse_yuan``, the rest through the catalog services.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from werkzeug.datastructures import MultiDict

from app.catalog.models import Product
from app.catalog.services import MAX_SKUS, MAX_SPECS, CatalogError, SkuInput
from app.core.money import format_yuan, parse_yuan

MAX_VALUES = 30
# Values are typed in one box, separated by commas (either width), 、 or new lines.
VALUE_SEPARATORS = re.compile(r"[,，、;；\n\r]+")
ROW_KEY = re.compile(r"^sku-(\d{1,4})-price$")


@dataclass
class Spec:
    """One specification as typed: its name and its values in order."""

    name: str = ""
    values: list[str] = field(default_factory=list)

    @property
    def values_text(self) -> str:
        return "，".join(self.values)


@dataclass
class Row:
    """One SKU row as the form shows it (raw text, so typos are shown back as typed)."""

    values: list[str]
    id: str = ""
    price: str = ""
    original: str = ""
    stock: str = "0"
    code: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(self.values)

    @property
    def label(self) -> str:
        return " / ".join(self.values) or "默认规格"


@dataclass
class Grid:
    """Specifications (always ``MAX_SPECS`` slots, blanks included) and SKU rows."""

    specs: list[Spec]
    rows: list[Row]

    @property
    def used_specs(self) -> list[Spec]:
        return [s for s in self.specs if s.name or s.values]


def split_values(text: str) -> list[str]:
    """Split what was typed into distinct, trimmed values, keeping their order."""
    seen: dict[str, None] = {}
    for part in VALUE_SEPARATORS.split(text or ""):
        part = part.strip()
        if part:
            seen.setdefault(part, None)
    return list(seen)


def grid_from_product(product: Product | None) -> Grid:
    """The grid showing an existing product (or one empty row for a new one)."""
    if product is None:
        return Grid(_pad([]), [Row(values=[])])
    specs = []
    for name in product.spec_names:
        values: dict[str, None] = {}
        for sku in product.skus:
            values.setdefault(sku.specs.get(name, ""), None)
        specs.append(Spec(name, [v for v in values if v]))
    rows = [
        Row(
            values=[sku.specs.get(n, "") for n in product.spec_names],
            id=str(sku.id),
            price=format_yuan(sku.price_fen, symbol=False),
            original=format_yuan(sku.original_price_fen, symbol=False)
            if sku.original_price_fen
            else "",
            stock=str(sku.stock),
            code=sku.code or "",
        )
        for sku in product.skus
    ]
    return Grid(_pad(specs), rows or [Row(values=[])])


def grid_from_form(form: MultiDict) -> Grid:
    """The grid exactly as posted (no validation yet), for showing it back."""
    specs = [
        Spec(
            (form.get(f"spec_name_{i}") or "").strip()[:50],
            split_values(form.get(f"spec_values_{i}") or "")[: MAX_VALUES + 1],
        )
        for i in range(MAX_SPECS)
    ]
    indexes = sorted(int(m.group(1)) for k in form if (m := ROW_KEY.match(k)))
    rows = []
    for i in indexes[: MAX_SKUS + 1]:
        rows.append(
            Row(
                values=[(form.get(f"sku-{i}-v{k}") or "").strip() for k in range(MAX_SPECS)],
                id=(form.get(f"sku-{i}-id") or "").strip(),
                price=(form.get(f"sku-{i}-price") or "").strip(),
                original=(form.get(f"sku-{i}-original") or "").strip(),
                stock=(form.get(f"sku-{i}-stock") or "").strip(),
                code=(form.get(f"sku-{i}-code") or "").strip(),
            )
        )
    grid = Grid(specs, rows)
    # Rows carry one value per used specification, in order.
    width = len(grid.used_specs)
    for row in rows:
        row.values = row.values[:width]
    return grid


def build_rows(grid: Grid) -> Grid:
    """Rows for every combination of the specification values; typed rows are kept."""
    specs = validate_specs(grid)
    by_key = {row.key: row for row in grid.rows}
    combos = list(itertools.product(*(s.values for s in specs))) if specs else [()]
    if len(combos) > MAX_SKUS:
        raise CatalogError(f"规格组合最多 {MAX_SKUS} 个，请减少规格值", "skus")
    rows = []
    for combo in combos:
        old = by_key.get(tuple(combo))
        if old is None and not specs and grid.rows:
            old = grid.rows[0]  # no specifications: keep the single row's numbers
        rows.append(
            Row(
                values=list(combo),
                id=old.id if old else "",
                price=old.price if old else "",
                original=old.original if old else "",
                stock=old.stock if old else "0",
                code=old.code if old else "",
            )
        )
    return Grid(grid.specs, rows)


def validate_specs(grid: Grid) -> list[Spec]:
    """The used specifications, or CatalogError naming what is wrong."""
    specs = grid.used_specs
    for spec in specs:
        if not spec.name:
            raise CatalogError("请填写规格名称（如 颜色、尺码）", "spec_names")
        if len(spec.name) > 10:
            raise CatalogError(f"规格名称“{spec.name[:10]}…”太长，最多 10 个字", "spec_names")
        if not spec.values:
            raise CatalogError(f"请填写规格“{spec.name}”的规格值", "spec_names")
        if len(spec.values) > MAX_VALUES:
            raise CatalogError(f"规格“{spec.name}”最多 {MAX_VALUES} 个值", "spec_names")
        for value in spec.values:
            if len(value) > 20:
                raise CatalogError(f"规格值“{value[:20]}…”太长，最多 20 个字", "spec_names")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise CatalogError("规格名称不能重复", "spec_names")
    return specs


def skus_from_grid(grid: Grid) -> tuple[list[str], list[SkuInput]]:
    """Specification names and SKU inputs from the posted grid, or CatalogError."""
    specs = validate_specs(grid)
    names = [s.name for s in specs]
    if not grid.rows:
        raise CatalogError("至少需要一个规格（SKU），请先生成规格表", "skus")
    if len(grid.rows) > MAX_SKUS:
        raise CatalogError(f"规格组合最多 {MAX_SKUS} 个", "skus")
    skus = []
    for n, row in enumerate(grid.rows, start=1):
        label = f"第 {n} 行（{row.label}）"
        if len(row.values) != len(specs) or any(not v for v in row.values):
            raise CatalogError(f"{label}的规格值不完整，请重新生成规格表", "skus")
        for spec, value in zip(specs, row.values, strict=True):
            if value not in spec.values:
                raise CatalogError(
                    f"{label}的“{value}”不在规格“{spec.name}”的可选值中，请重新生成规格表",
                    "skus",
                )
        if not row.price:
            raise CatalogError(f"{label}请填写售价", "skus")
        price = _yuan(row.price, f"{label}的售价")
        original = _yuan(row.original, f"{label}的原价") if row.original else 0
        if not re.fullmatch(r"\d{1,9}", row.stock or "0"):
            raise CatalogError(f"{label}的库存需为不小于 0 的整数", "skus")
        sku_id = None
        if row.id:
            if not row.id.isdecimal() or len(row.id) > 12:
                raise CatalogError(f"{label}的 SKU 编号无效，请刷新页面", "skus")
            sku_id = int(row.id)
        skus.append(
            SkuInput(
                specs=dict(zip(names, row.values, strict=True)),
                price_fen=price,
                original_price_fen=original,
                stock=int(row.stock or "0"),
                code=row.code or None,
                id=sku_id,
            )
        )
    return names, skus


def _yuan(text: str, what: str) -> int:
    try:
        return parse_yuan(text)
    except ValueError as exc:
        raise CatalogError(f"{what}：{exc}", "skus") from None


def _pad(specs: list[Spec]) -> list[Spec]:
    return specs + [Spec() for _ in range(MAX_SPECS - len(specs))]
