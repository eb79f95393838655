"""Dependencies point down: packages never import the packages that sit above them.

Every import statement counts, at the top of a module or inside a function: the source is
parsed with ``ast``, nothing is imported. Each rule of ``RULES`` names a package (a folder
of the project), the modules it must not import (a module and everything under it), and
the modules of the package the rule leaves out (by file stem), with the reason.

``KNOWN`` lists the imports that break a rule today and are being moved by another part
of the same redesign; each must still exist (a stale entry fails too), so the list only
shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = (
    "app/orders",
    "app/distribution",
    "app/cloud",
    "app/incentives",
    "app/payments",
    "app/catalog",
    "app/risk",
)
# The shop's domain announces what happened (app/signals.py); the WeChat package, the
# Open API, the admin and the jobs listen or call it, never the other way round. A
# domain's views are the edge: they commit, then enqueue jobs.
RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = tuple(
    (package, forbidden, allowed_in)
    for package in DOMAIN
    for forbidden, allowed_in in (
        (("app.wechat", "app.api", "app.admin"), ()),
        (("jobs",), ("views",)),
    )
)
# The money path reads one way. Orders sit below the paid-order and refund pipelines
# (app/earnings) and WeChat Pay (app/payments, which asks WeChat and then books the refund
# on the order's side). The ledger sits below every package that writes to it: it reads
# the settings row (app/distribution/models.py, a table) but no distribution service.
_DISTRIBUTION_SERVICES = tuple(
    f"app.distribution.{path.stem}"
    for path in sorted((ROOT / "app" / "distribution").glob("*.py"))
    if path.stem not in ("__init__", "models")
)
RULES += (
    ("app/orders", ("app.earnings", "app.payments", "app.distribution", "app.ledger"), ()),
    (
        "app/ledger",
        ("app.earnings", "app.incentives", "app.cloud", "app.risk", *_DISTRIBUTION_SERVICES),
        (),
    ),
)
# (module file, imported module) -> why it is still there
KNOWN: dict[tuple[str, str], str] = {}


def imported_modules(source: str, package: str) -> set[str]:
    """Every module ``source`` (a module of ``package``) imports, anywhere in it.

    ``from a.b import c`` counts as ``a.b`` and ``a.b.c`` (c may be a module); relative
    imports are resolved against ``package`` (dotted).
    """
    parts = package.split(".")
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imports_of(path: Path) -> set[str]:
    """``imported_modules`` of one file of the project."""
    package = ".".join(path.relative_to(ROOT).parts[:-1])
    return imported_modules(path.read_text(encoding="utf-8"), package)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(rules=RULES) -> set[tuple[str, str]]:
    """(module file, imported module) for every import that breaks one of ``rules``."""
    broken: set[tuple[str, str]] = set()
    for package, forbidden, allowed_in in rules:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.stem in allowed_in:
                continue
            modules = imports_of(path)
            for module in modules:
                if any(_under(module, prefix) for prefix in forbidden):
                    # ``from app.wechat import notify`` is one import, not two.
                    parent = module.rsplit(".", 1)[0]
                    if parent in modules and any(_under(parent, prefix) for prefix in forbidden):
                        module = parent
                    broken.add((path.relative_to(ROOT).as_posix(), module))
    return broken


def test_the_parser_sees_every_kind_of_import():
    """Top-level, function-level, ``from`` and relative imports are all seen."""
    source = (
        "import jobs.payments\n"
        "def f():\n"
        "    from app.wechat import notify\n"
        "    from .models import Order\n"
        "    from . import states\n"
    )
    found = imported_modules(source, "app.orders")
    assert {
        "jobs.payments",
        "app.wechat",
        "app.wechat.notify",
        "app.orders.models",
        "app.orders.states",
    } <= found


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule[0]}-not-{'+'.join(rule[1])}")
def test_packages_do_not_import_upwards(rule):
    broken = violations([rule]) - set(KNOWN)
    assert not broken, f"{rule[0]} imports what sits above it: {sorted(broken)}"


def test_known_exceptions_are_still_needed():
    """An exception whose import is gone must leave ``KNOWN`` (the list only shrinks)."""
    stale = set(KNOWN) - violations()
    assert not stale, f"remove from KNOWN: {sorted(stale)}"


# The paid-order pipeline (app/earnings) asks calculators for rows and writes them; a
# calculator returns values and imports nothing above it, so it can never write the
# ledger, notify or reach back into the pipeline.
CALCULATORS = (
    "app/distribution/levels.py",
    "app/distribution/rules.py",
    "app/distribution/payout_cap.py",
    "app/cloud/price_difference.py",
    "app/cloud/dividends.py",
)
ABOVE_CALCULATORS = ("app.earnings", "app.ledger.entries", "app.wechat", "app.api", "jobs")


@pytest.mark.parametrize("calculator", CALCULATORS)
def test_calculators_import_nothing_above_them(calculator):
    found = imports_of(ROOT / calculator)
    broken = sorted(m for m in found if any(_under(m, p) for p in ABOVE_CALCULATORS))
    assert not broken, f"{calculator} imports what sits above it: {broken}"
