"""The test suite's own layout: shared helpers live in ``tests/support/``.

A test module that imports another test module runs that module's import-time code and
couples the two: moving or renaming a test breaks unrelated files. Helpers that several
modules share belong in ``tests/support/`` instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, top-level or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            if node.module == "tests":  # from tests import test_x
                found += [(node.lineno, f"tests.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_no_test_module_imports_another_test_module():
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in imported_modules(path)
        if module.split(".")[:2][-1].startswith("test_") and module.startswith("tests.")
    ]
    assert not offenders, "move shared helpers into tests/support/:\n" + "\n".join(offenders)


def test_helper_modules_live_in_support():
    """Only test modules, conftest.py and the package marker sit at the top of tests/."""
    stray = [
        path.name
        for path in sorted(TESTS.glob("*.py"))
        if not path.name.startswith("test_") and path.name not in {"conftest.py", "__init__.py"}
    ]
    assert not stray, f"helper modules belong in tests/support/: {stray}"
