"""Money is an integer number of fen (1 yuan = 100 fen). Never a float.

Only this module turns fen into text for people; templates use the ``yuan`` filter.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def format_yuan(fen: int | None, symbol: bool = True) -> str:
    """Format fen as yuan with two decimals: 1234 -> '¥12.34', -5 -> '-¥0.05'."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{'¥' if symbol else ''}{whole}.{cents:02d}"


def parse_yuan(text: str) -> int:
    """Parse what a person typed in yuan ('12.3', '12.34', '¥12') into fen.

    Raises ValueError on anything that is not a non-negative amount with at most two
    decimals; Decimal keeps it exact (no float ever sees the value).
    """
    cleaned = (text or "").strip().replace("¥", "").replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("金额格式不正确") from None
    if not value.is_finite() or value < 0:
        raise ValueError("金额不能为负数")
    if value.as_tuple().exponent < -2:
        raise ValueError("金额最多两位小数")
    fen = int(value * 100)
    if fen > 100_000_000_00:
        raise ValueError("金额过大")
    return fen
