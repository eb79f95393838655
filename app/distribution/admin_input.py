"""Reading what staff type into the distribution forms (admin pages and Open API alike):
the limits, the field readers, and ``SettingsError``, which names the refused field."""

from __future__ import annotations

from collections.abc import Mapping

from app.distribution.distributors import DistributionError
from app.distribution.rules import BP_DENOMINATOR

MAX_DAYS = 3650
MAX_HOLD_DAYS = 365
MAX_DAILY_WITHDRAWALS = 100
MAX_FEN = 100_000_000_00  # ¥100,000,000: anything above is a typo
MAX_GRADE_RANK = 1000
MAX_COUNT = 1_000_000


class SettingsError(DistributionError):
    """Input refused, naming the field it concerns (422)."""

    def __init__(self, field: str, code: str, message: str, status: int = 422):
        super().__init__(code, message, status)
        self.field = field


# --- reading input ----------------------------------------------------------------------


def read_int(data: Mapping, field: str, label: str, low: int, high: int) -> int:
    """``data[field]`` as an integer in ``low..high``, or ``SettingsError``."""
    value = data[field]
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(field, "invalid_number", f"{label}应为整数")
    if value < low or value > high:
        raise SettingsError(field, "out_of_range", f"{label}需在 {low} 到 {high} 之间")
    return value


def read_bp(data: Mapping, field: str, label: str) -> int:
    """``data[field]`` as a rate in basis points (0 to 100%), or ``SettingsError``."""
    value = data[field]
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(field, "invalid_number", f"{label}应为整数（万分比）")
    if not 0 <= value <= BP_DENOMINATOR:
        raise SettingsError(field, "out_of_range", f"{label}需在 0% 到 100% 之间")
    return value


def read_fen(data: Mapping, field: str, label: str) -> int:
    """``data[field]`` as an amount in fen (0 to ``MAX_FEN``), or ``SettingsError``."""
    value = data[field]
    if not isinstance(value, int) or isinstance(value, bool):
        raise SettingsError(field, "invalid_number", f"{label}应为整数（单位分）")
    if value < 0:
        raise SettingsError(field, "out_of_range", f"{label}不能为负数")
    if value > MAX_FEN:
        raise SettingsError(field, "out_of_range", f"{label}过大")
    return value


def read_bool(data: Mapping, field: str, label: str) -> bool:
    """``data[field]`` as a strict boolean, or ``SettingsError``."""
    value = data[field]
    if not isinstance(value, bool):
        raise SettingsError(field, "invalid_boolean", f"{label}应为是或否")
    return value


def read_choice(data: Mapping, field: str, label: str, choices: Mapping[str, str]) -> str:
    """``data[field]`` as one of the keys of ``choices``, or ``SettingsError``."""
    value = data[field]
    if value not in choices:
        options = "、".join(f"{k}（{v}）" for k, v in choices.items())
        raise SettingsError(field, "invalid_choice", f"{label}只能是 {options}")
    return value
