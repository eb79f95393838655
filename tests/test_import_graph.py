"""``scripts/import_graph.py`` and what it says about the project: every import statement
counts (top-level or inside a function), dependencies point down, the demo stays out of
``app/``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "import_graph.py"


def run_graph(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_counts_function_level_imports_in_circles_and_their_reasons(tmp_path):
    write(
        tmp_path,
        {
            "pkg/__init__.py": '"""A package."""\n',
            "pkg/a.py": "from pkg.b import helper\n",
            # b imports a only inside a function: still a circle.
            "pkg/b.py": "def helper():\n    from pkg.a import x\n\n    return x\n",
            "pkg/c.py": (
                "def draw():\n"
                "    # Pillow is heavy and only this rare path needs it.\n"
                "    from pkg import d\n"
                "    from pkg.a import x  # noqa: F401  (only the admin page needs it)\n"
                "    return d\n"
            ),
            "pkg/d.py": "VALUE = 1\n",
            # A bare linter directive is no reason.
            "pkg/e.py": "def f():\n    from pkg.d import VALUE  # noqa: F401\n",
        },
    )
    result = run_graph("--root", str(tmp_path), "--json", "pkg")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["circles"] == [["pkg.a", "pkg.b"]]
    found = {(i["file"], i["target"]): i for i in report["function_imports"]}
    assert set(found) == {
        ("pkg/b.py", "pkg.a"),
        ("pkg/c.py", "pkg.d"),
        ("pkg/c.py", "pkg.a"),
        ("pkg/e.py", "pkg.d"),
    }
    assert found["pkg/e.py", "pkg.d"]["reason"] == ""
    assert found["pkg/b.py", "pkg.a"]["closes_circle"] is True
    assert found["pkg/b.py", "pkg.a"]["reason"] == ""
    assert (
        found["pkg/c.py", "pkg.d"]["reason"] == "Pillow is heavy and only this rare path needs it."
    )
    assert "only the admin page" in found["pkg/c.py", "pkg.a"]["reason"]
    assert found["pkg/c.py", "pkg.d"]["closes_circle"] is False

    check = run_graph("--root", str(tmp_path), "--check", "pkg")
    assert check.returncode == 1
    assert "import circles spanning more than one file: 1" in check.stdout
    assert "pkg/b.py:2 -> pkg.a [closes a circle]  (no reason given)" in check.stdout


def test_a_clean_tree_passes_the_check(tmp_path):
    write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low.py": "VALUE = 1\n",
            "pkg/high.py": "from pkg.low import VALUE\n\n\ndef f():\n    return VALUE\n",
        },
    )
    result = run_graph("--root", str(tmp_path), "--check", "pkg")
    assert result.returncode == 0, result.stdout
    assert "import circles spanning more than one file: 0" in result.stdout
    assert "function-level imports: 0" in result.stdout


@pytest.fixture(scope="module")
def project() -> dict:
    result = run_graph("--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_shop_never_imports_the_demo(project):
    """``demo/`` sits above ``app/`` and ``jobs/``: nothing there imports it, and the demo's
    own modules form no circle."""
    upward = {
        (module, target)
        for module, targets in project["edges"].items()
        if not module.startswith("demo")
        for target in targets
        if target == "demo" or target.startswith("demo.")
    }
    assert upward == set()
    assert "demo.seed" in project["edges"]
    assert not [c for c in project["circles"] if any(m.startswith("demo") for m in c)]


def test_no_import_circle_spans_more_than_one_file(project):
    assert project["circles"] == []


def test_no_function_level_import_dodges_a_circle_or_lacks_a_reason(project):
    """An import stays inside a function only with a reason comment (factory wiring, a
    heavy optional import), and never to dodge a circle."""
    offenders = [
        f"{i['file']}:{i['line']} -> {i['target']}"
        for i in project["function_imports"]
        if not i["reason"] or i["closes_circle"]
    ]
    assert offenders == []
    result = run_graph("--check")
    assert result.returncode == 0, result.stdout
