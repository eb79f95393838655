"""Fen <-> yuan text: exact, never through a float."""

import pytest

from app.core.money import format_yuan, parse_yuan


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "¥0.00"), (5, "¥0.05"), (1234, "¥12.34"), (100000, "¥1000.00"), (-5, "-¥0.05")],
)
def test_format_yuan(fen, text):
    assert format_yuan(fen) == text


@pytest.mark.parametrize(
    ("text", "fen"),
    [("12.34", 1234), ("12.3", 1230), ("¥12", 1200), ("0.01", 1), (" 1,000.00 ", 100000)],
)
def test_parse_yuan(text, fen):
    assert parse_yuan(text) == fen


@pytest.mark.parametrize("text", ["", "abc", "-1", "12.345", "NaN", "Infinity", "1e12"])
def test_parse_yuan_refuses_bad_amounts(text):
    with pytest.raises(ValueError):
        parse_yuan(text)
