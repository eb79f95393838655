"""Worked cases of the commission arithmetic (app/distribution/rules.py)."""

import pytest

from app.distribution.rules import (
    FIXED,
    NONE,
    PERCENT,
    Beneficiary,
    Rule,
    floor_commission,
    format_bp,
    line_shares,
)

pytestmark = pytest.mark.postgresql  # money, ledger, orders or stock

DEFAULT = Rule(PERCENT, (1000, 500, 200), "店铺默认")  # 10% / 5% / 2%
GOLD = Rule(PERCENT, (1500, 800, 300), "等级 金牌")


def chain(*levels, grade=None):
    return [Beneficiary(level, 100 + level, grade) for level in levels]


def amounts(shares):
    return {s.level: s.amount_fen for s in shares}


@pytest.mark.parametrize(
    ("levels", "expected"),
    [(1, {1: 1000}), (2, {1: 1000, 2: 500}), (3, {1: 1000, 2: 500, 3: 200})],
)
def test_levels_configured(levels, expected):
    shares = line_shares(
        paid_fen=10000, quantity=1, chain=chain(1, 2, 3), levels=levels, default_rule=DEFAULT
    )
    assert amounts(shares) == expected


def test_missing_ancestor_share_stays_with_the_merchant():
    shares = line_shares(
        paid_fen=10000, quantity=1, chain=chain(1, 3), levels=3, default_rule=DEFAULT
    )
    assert amounts(shares) == {1: 1000, 3: 200}


def test_grade_beats_default_and_product_beats_grade():
    by_grade = line_shares(
        paid_fen=10000, quantity=1, chain=chain(1, 2, grade=GOLD), levels=2, default_rule=DEFAULT
    )
    assert amounts(by_grade) == {1: 1500, 2: 800}
    product = Rule(PERCENT, (2000, 0, 0), "商品规则")
    by_product = line_shares(
        paid_fen=10000,
        quantity=1,
        chain=chain(1, 2, grade=GOLD),
        levels=2,
        default_rule=DEFAULT,
        product_rule=product,
    )
    assert amounts(by_product) == {1: 2000}
    assert by_product[0].source == "商品规则"


def test_sku_rule_beats_product_rule():
    shares = line_shares(
        paid_fen=10000,
        quantity=1,
        chain=chain(1),
        levels=1,
        default_rule=DEFAULT,
        product_rule=Rule(PERCENT, (2000, 0, 0), "商品规则"),
        sku_rule=Rule(PERCENT, (300, 0, 0), "SKU 规则"),
    )
    assert amounts(shares) == {1: 300}


def test_fixed_per_unit_is_capped_by_what_was_paid():
    fixed = Rule(FIXED, (500, 200, 0), "商品规则")
    shares = line_shares(
        paid_fen=3000,
        quantity=3,
        chain=chain(1, 2),
        levels=2,
        default_rule=DEFAULT,
        product_rule=fixed,
    )
    assert amounts(shares) == {1: 1500, 2: 600}
    capped = line_shares(
        paid_fen=100,
        quantity=1,
        chain=chain(1),
        levels=1,
        default_rule=DEFAULT,
        product_rule=fixed,
    )
    assert amounts(capped) == {1: 100}


def test_excluded_product_pays_nobody():
    shares = line_shares(
        paid_fen=10000,
        quantity=1,
        chain=chain(1, 2),
        levels=2,
        default_rule=DEFAULT,
        product_rule=Rule(NONE, (0, 0, 0), "商品规则"),
    )
    assert shares == []


@pytest.mark.parametrize(
    ("base", "bp", "fen"),
    [(1, 1000, 0), (9, 1000, 0), (10, 1000, 1), (19, 1000, 1), (1999, 333, 66), (0, 500, 0)],
)
def test_rounding_is_down_to_the_fen(base, bp, fen):
    assert floor_commission(base, bp) == fen


def test_more_than_three_levels_is_refused():
    with pytest.raises(ValueError):
        line_shares(paid_fen=1, quantity=1, chain=[], levels=4, default_rule=DEFAULT)


def test_format_bp():
    assert [format_bp(v) for v in (1000, 1050, 5, 0)] == ["10%", "10.5%", "0.05%", "0%"]
