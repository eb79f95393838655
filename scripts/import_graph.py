"""The project's import graph: circles between files, and imports made inside functions.

Every import statement counts, at the top of a module or inside a function (read with
``ast``, nothing is imported). Prints:

- the import circles: strongly connected components of more than one file;
- every function-level import of a project module, with the reason comment it carries
  (on its line, or the comment line just above it) and whether it closes a circle (its
  target imports, directly or not, the importing file back).

Usage::

    python scripts/import_graph.py [--root DIR] [--json] [--check] [PACKAGE ...]

PACKAGE defaults to ``app jobs demo``. ``--check`` exits 1 when a circle spans more than
one file or a function-level import has no reason comment. ``--json`` prints the same
report as JSON (``edges``, ``circles``, ``function_imports``).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_PACKAGES = ("app", "jobs", "demo")
_BARE_DIRECTIVE = re.compile(r"(noqa|type: ?ignore|pragma)\b[:\w\s,\[\]-]*")


@dataclass(frozen=True)
class FunctionImport:
    """One import statement inside a function (or method) body."""

    file: str  # path relative to the root, e.g. app/cli.py
    line: int
    module: str  # the importing module, e.g. app.cli
    target: str  # the project module imported, e.g. app.wechat.menu
    reason: str  # the reason comment, "" when there is none
    closes_circle: bool  # moving it to the top would make (or keep) a circle


def discover(root: Path, packages: list[str]) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file under the given packages."""
    files: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    return files


def _is_trivial_package(path: Path) -> bool:
    """A package ``__init__`` holding only a docstring (and maybe ``__future__``): importing
    a submodule runs it, but it imports nothing, so it cannot be part of a circle."""
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all(
        isinstance(node, ast.Expr | ast.ImportFrom)
        and (not isinstance(node, ast.ImportFrom) or node.module == "__future__")
        for node in body
    )


def _resolve(name: str, files: dict[str, Path]) -> str | None:
    """The project module a dotted name lands in (``app.x.y`` may be ``app.x``'s attribute)."""
    while name:
        if name in files:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Dotted names an import statement may load (relative imports made absolute)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, base] if base else parts)
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def _function_imports(tree: ast.Module, lines: list[str]) -> dict[int, str]:
    """id -> reason comment, for every import statement inside a function or method body.

    A reason is a comment on the import's first or last line, else the comment line just
    above it; a comment above a run of consecutive imports explains the whole run.
    """
    reasons: dict[int, str] = {}
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for holder in ast.walk(function):
            for field in ("body", "orelse", "finalbody", "handlers"):
                statements = getattr(holder, field, None)
                if not isinstance(statements, list):
                    continue
                block_reason = ""
                previous_was_import = False
                for statement in statements:
                    if not isinstance(statement, ast.Import | ast.ImportFrom):
                        previous_was_import = False
                        continue
                    above = _comment_above(lines, statement)
                    if above or not previous_was_import:
                        block_reason = above
                    reasons[id(statement)] = _inline_comment(lines, statement) or block_reason
                    previous_was_import = True
    return reasons


def _inline_comment(lines: list[str], node: ast.stmt) -> str:
    """The comment on an import's first or last line, or ""."""
    for number in (node.lineno, node.end_lineno or node.lineno):
        text = lines[number - 1]
        if "#" in text:
            comment = text.split("#", 1)[1].strip()
            # A bare linter directive ("noqa: F401") says nothing about why.
            if comment and not _BARE_DIRECTIVE.fullmatch(comment):
                return comment
    return ""


def _comment_above(lines: list[str], node: ast.stmt) -> str:
    """The comment line(s) right above a statement, joined, or ""."""
    found: list[str] = []
    number = node.lineno - 2
    while number >= 0 and lines[number].strip().startswith("#"):
        found.insert(0, lines[number].strip().lstrip("#").strip())
        number -= 1
    return " ".join(found)


def build(root: Path, packages: list[str]) -> tuple[dict[str, set[str]], list[dict]]:
    """(edges, raw function-level imports) over every import statement of ``packages``."""
    files = discover(root, packages)
    trivial = {name for name, path in files.items() if _is_trivial_package(path)}
    edges: dict[str, set[str]] = {name: set() for name in files}
    found: list[dict] = []
    for module, path in files.items():
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        lines = source.splitlines()
        inside = _function_imports(tree, lines)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            resolved = set()
            for name in _targets(node, module, is_package):
                target = _resolve(name, files)
                # A module importing its own package, or a docstring-only package: no edge.
                if target is None or target == module or module.startswith(target + "."):
                    continue
                if target in trivial:
                    continue
                resolved.add(target)
            edges[module] |= resolved
            if id(node) in inside:
                for target in sorted(resolved):
                    found.append(
                        {
                            "file": str(path.relative_to(root)),
                            "line": node.lineno,
                            "module": module,
                            "target": target,
                            "reason": inside[id(node)],
                        }
                    )
    return edges, found


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out, key=lambda c: (-len(c), c))


def _reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    """Whether ``start`` imports ``goal``, directly or through other modules."""
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for child in edges.get(node, ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return False


@dataclass
class Report:
    """What ``analyse`` found: the graph, its circles and the function-level imports."""

    edges: dict[str, set[str]]
    circles: list[list[str]]
    function_imports: list[FunctionImport]


def analyse(root: Path, packages: list[str]) -> Report:
    """The import graph of ``packages`` under ``root``, its circles and function imports."""
    edges, found = build(root, packages)
    imports = [
        FunctionImport(**row, closes_circle=_reaches(edges, row["target"], row["module"]))
        for row in found
    ]
    return Report(edges, circles(edges), imports)


def main(argv: list[str] | None = None) -> int:
    """Print the report; with ``--check``, exit 1 on a circle or an unexplained import."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", nargs="*", default=list(DEFAULT_PACKAGES))
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 if anything is wrong")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    packages = [p for p in args.packages if (root / p).is_dir()]
    report = analyse(root, packages)
    found_circles, imports = report.circles, report.function_imports
    unexplained = [item for item in imports if not item.reason]
    if args.json:
        data = {
            "edges": {module: sorted(targets) for module, targets in report.edges.items()},
            "circles": found_circles,
            "function_imports": [asdict(i) for i in imports],
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(f"import circles spanning more than one file: {len(found_circles)}")
        for component in found_circles:
            print(f"  {len(component)} files: {', '.join(component)}")
        print(
            f"function-level imports: {len(imports)} "
            f"({len(unexplained)} without a reason comment, "
            f"{sum(i.closes_circle for i in imports)} closing a circle)"
        )
        for item in imports:
            flag = " [closes a circle]" if item.closes_circle else ""
            why = f"  # {item.reason}" if item.reason else "  (no reason given)"
            print(f"  {item.file}:{item.line} -> {item.target}{flag}{why}")
    if args.check and (found_circles or unexplained):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
