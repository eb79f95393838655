"""Helpers of the operations tests: reading /metrics, and jobs that fail on purpose."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def metric_values(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label items): value} of a Prometheus text page."""
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(text: str, name: str, **labels) -> float:
    """One sample's value (0 when absent: a counter not counted yet)."""
    return metric_values(text).get((name, tuple(sorted(labels.items()))), 0.0)


def total(text: str, name: str, **labels) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(
        v for (n, items), v in metric_values(text).items() if n == name and wanted <= set(items)
    )


def always_fails() -> None:
    """A job that raises (the worker counts its retries and its failure)."""
    raise RuntimeError("failing on purpose")
