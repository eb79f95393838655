"""bench/cluster.py's verdict and send plan (pure functions; the bench itself is not run)."""

from __future__ import annotations

from collections import Counter

from bench.cluster import problems, send_plan


def good_facts() -> dict:
    """Three orders, each paid and followed up once, with their templates' earnings."""
    orders = {1: ("paid", 1990, 1990), 2: ("paid", 9900, 9900), 3: ("paid", 500, 500)}
    once = dict.fromkeys(orders, 1)
    return {
        "orders": orders,
        "paid_changes": dict(once),
        "paid_transactions": dict(once),
        "follow_ups": dict(once),
        "expected_earnings": {1: 3, 2: 6, 3: 0},
        "earnings": {1: 3, 2: 6},
        "duplicate_keys": 0,
        "team_sales": (12_390, 12_390),
        "outbox": {"sent": 12},
        "failed_jobs": [],
    }


def test_a_clean_run_has_no_problems():
    assert problems(good_facts()) == []


def test_each_kind_of_mismatch_is_named():
    cases = {
        "not paid": lambda f: f["orders"].__setitem__(3, ("pending_payment", 500, 500)),
        "paid_fen != total_fen": lambda f: f["orders"].__setitem__(2, ("paid", 9800, 9900)),
        "paid_changes": lambda f: f["paid_changes"].__setitem__(1, 2),
        "paid_transactions": lambda f: f["paid_transactions"].pop(2),
        "follow_ups": lambda f: f["follow_ups"].__setitem__(3, 0),
        "line earnings": lambda f: f["earnings"].__setitem__(2, 7),
        "more than once": lambda f: f.__setitem__("duplicate_keys", 1),
        "recount": lambda f: f.__setitem__("team_sales", (12_390, 12_000)),
        "outbox rows not sent": lambda f: f["outbox"].__setitem__("pending", 2),
        "failed jobs": lambda f: f["failed_jobs"].append("outbound-7 send: boom"),
        "not the run's": lambda f: f["follow_ups"].__setitem__(99, 1),
    }
    for words, spoil in cases.items():
        facts = good_facts()
        spoil(facts)
        found = problems(facts)
        assert len(found) == 1 and words in found[0], (words, found)


def test_an_order_without_earnings_expected_none_is_fine_but_missing_ones_are_not():
    facts = good_facts()
    facts["earnings"].pop(1)
    assert problems(facts) == [
        "1 orders with another number of line earnings than their template, e.g. [1]"
    ]


def test_the_plan_sends_every_order_once_and_the_duplicates_later_elsewhere():
    plan = send_plan(1000, 0.10, 3, seed=19)
    firsts = [(index, web) for index, web, dup in plan if not dup]
    again = [(index, web) for index, web, dup in plan if dup]
    assert sorted(index for index, _ in firsts) == list(range(1000))
    assert len(again) == 100 and len({index for index, _ in again}) == 100
    first_at = {index: n for n, (index, _web, dup) in enumerate(plan) if not dup}
    first_web = dict(firsts)
    for n, (index, web, dup) in enumerate(plan):
        if dup:
            assert n > first_at[index]  # after the first notice of the same order
            assert web != first_web[index]  # through another web process
    assert set(Counter(web for _, web in firsts).values()) == {334, 333}
    assert send_plan(1000, 0.10, 3, seed=19) == plan  # the same run every time


def test_a_single_web_process_takes_every_notice():
    plan = send_plan(50, 0.2, 1, seed=1)
    assert len(plan) == 60 and {web for _, web, _ in plan} == {0}
