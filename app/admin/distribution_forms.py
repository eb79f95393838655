"""Reading the distribution pages' forms into the typed values the services take.

People type percentages (``10``, ``12.5``) and yuan (``1.50``); the services take basis
points and fen. Conversions are exact (``Decimal`` from the text, never a float); a value
that cannot be read raises ``SettingsError`` naming the field, so the page shows the same
kind of message the services give for a value out of range. CSRF is checked by
CSRFProtect (global) on every POST; the range checks are the services'.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from werkzeug.datastructures import MultiDict

from app.core.money import format_yuan, parse_yuan
from app.distribution.admin_input import SettingsError
from app.distribution.admin_settings import GRADE_FIELDS, SETTINGS_FIELDS
from app.distribution.models import DistributionSettings, Grade

BOOL_FIELDS = ("enabled", "self_purchase")
CHOICE_FIELDS = ("join_mode", "bind_mode", "payout_channel")
FEN_SUFFIX = "_fen"
BP_SUFFIX = "_bp"


def parse_percent(text: str, field: str, label: str) -> int:
    """``12.5`` (percent) → 1250 basis points; at most two decimals; '' is refused."""
    cleaned = (text or "").strip().rstrip("%").strip()
    if not cleaned:
        raise SettingsError(field, "required", f"请填写{label}")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise SettingsError(field, "invalid_number", f"{label}应为数字，如 10 或 12.5") from None
    if not value.is_finite():
        raise SettingsError(field, "invalid_number", f"{label}应为数字，如 10 或 12.5")
    bp = value * 100
    if bp != bp.to_integral_value():
        raise SettingsError(field, "invalid_number", f"{label}最多两位小数")
    if abs(bp) > 10**9:
        raise SettingsError(field, "out_of_range", f"{label}需在 0% 到 100% 之间")
    return int(bp)


def parse_fen(text: str, field: str, label: str) -> int:
    """What a person typed in yuan → fen, with the field named on error."""
    try:
        return parse_yuan(text or "")
    except ValueError as exc:
        raise SettingsError(field, "invalid_amount", f"{label}：{exc}") from None


def parse_int(text: str, field: str, label: str) -> int:
    """A whole number typed in a box ('' is refused)."""
    cleaned = (text or "").strip()
    if not cleaned:
        raise SettingsError(field, "required", f"请填写{label}")
    if (
        not (cleaned.isdecimal() or (cleaned[0] == "-" and cleaned[1:].isdecimal()))
        or len(cleaned) > 12
    ):
        raise SettingsError(field, "invalid_number", f"{label}应为整数")
    return int(cleaned)


def _typed(form: MultiDict, field: str, label: str) -> object:
    if field in BOOL_FIELDS:
        return form.get(field) in ("1", "y", "on", "true")
    if field in CHOICE_FIELDS:
        return form.get(field, "")
    raw = form.get(field, "")
    if field.endswith(FEN_SUFFIX):
        return parse_fen(raw, field, label)
    if field.endswith(BP_SUFFIX):
        return parse_percent(raw, field, label)
    return parse_int(raw, field, label)


def settings_from_form(form: MultiDict) -> dict[str, object]:
    """Every setting from the settings page (an unticked box is ``False``). The payout cap
    is left as it is when the form has no box for it (a page from before it existed)."""
    return {
        field: _typed(form, field, label)
        for field, (label, _r) in SETTINGS_FIELDS.items()
        if field != "payout_cap_bp" or field in form
    }


def settings_to_form(settings: DistributionSettings) -> dict[str, str]:
    """The saved settings as the page's boxes show them."""
    values = {}
    for field in SETTINGS_FIELDS:
        value = getattr(settings, field)
        if field in BOOL_FIELDS:
            values[field] = "1" if value else ""
        elif field.endswith(FEN_SUFFIX):
            values[field] = format_yuan(value, symbol=False)
        elif field.endswith(BP_SUFFIX):
            values[field] = bp_text(value)
        else:
            values[field] = str(value)
    return values


def bp_text(bp: int) -> str:
    """1250 → '12.5' (what the percentage box shows)."""
    whole, frac = divmod(bp, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".")


def grade_from_form(form: MultiDict) -> dict[str, object]:
    """A grade from the grades page (name as typed; the service trims and checks it)."""
    data: dict[str, object] = {"name": form.get("name", "")}
    for field, (label, _r) in GRADE_FIELDS.items():
        if field == "name":
            continue
        raw = form.get(field, "")
        if field.endswith(FEN_SUFFIX):
            data[field] = parse_fen(raw or "0", field, label)
        elif field.endswith(BP_SUFFIX):
            data[field] = parse_percent(raw or "0", field, label)
        else:
            data[field] = parse_int(raw or "0", field, label)
    return data


def grade_to_form(grade: Grade) -> dict[str, str]:
    """A saved grade as its row's boxes show it."""
    return {
        "name": grade.name,
        "rank": str(grade.rank),
        "level1_bp": bp_text(grade.level1_bp),
        "level2_bp": bp_text(grade.level2_bp),
        "level3_bp": bp_text(grade.level3_bp),
        "upgrade_team_sales_fen": format_yuan(grade.upgrade_team_sales_fen, symbol=False),
        "upgrade_direct_count": str(grade.upgrade_direct_count),
    }


def rule_from_form(form: MultiDict) -> tuple[str, list[int]]:
    """A commission rule: mode, and the three levels as percent (percent) or yuan (fixed)."""
    mode = form.get("mode", "")
    if mode not in ("percent", "fixed", "none"):
        raise SettingsError("mode", "invalid_choice", "请选择分佣方式")
    if mode == "none":
        return mode, [0, 0, 0]
    values = []
    for level in (1, 2, 3):
        field, label = f"level{level}", f"{'一二三'[level - 1]}级佣金"
        raw = form.get(field, "").strip() or "0"
        if mode == "percent":
            values.append(parse_percent(raw, field, label))
        else:
            values.append(parse_fen(raw, field, label))
    return mode, values
