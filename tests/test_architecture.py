"""The shape of the code: no import cycles between files (imports inside functions count), and
the boundaries between packages (gro_core imports no service code; the dashboard talks HTTP)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Every importable package of the project (those setuptools installs).
PACKAGES = sorted(
    p.name
    for p in ROOT.iterdir()
    if (p / "__init__.py").is_file() and p.name not in {"tests", "migrations"}
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(f): f for pkg in PACKAGES for f in (ROOT / pkg).rglob("*.py")}


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Dotted names this file imports, anywhere in it (functions included), resolved."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (a `from pkg import name` of a non-module
    name counts as importing pkg's __init__)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        targets = _imported(tree, name, path.name == "__init__.py")
        edges = set()
        for target in targets:
            if target in modules:
                edges.add(target)
            elif target.rpartition(".")[0] in modules and "." in target:
                edges.add(target.rpartition(".")[0])  # a name defined in a module
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _package_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports between a module that is not a package's __init__ and its own package's __init__
    are how a package re-exports its parts: they are not cycles between files."""
    return {
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if a.startswith(b + ".") and _modules()[b].name == "__init__.py"
    }


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles_between_files() -> None:
    graph = import_graph()
    reexports = _package_edges(graph)
    pruned = {a: {b for b in t if (a, b) not in reexports} for a, t in graph.items()}
    cycles = _cycles(pruned)
    assert not cycles, "import cycles (counting imports inside functions): " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("gro_core", ("server", "worker", "dashboard", "client", "stack", "bench")),
        ("dashboard", ("gro_core", "server", "worker", "stack", "bench")),
        ("server", ("worker", "dashboard", "client", "stack", "bench")),
        # The HTTP client: installable and usable without the engine or the service.
        ("client", ("gro_core", "server", "worker", "dashboard", "stack", "bench")),
        # The validation study is a client of the API (it starts a stack, never imports one).
        ("bench.validation", ("server", "worker", "dashboard")),
    ],
)
def test_package_boundaries(package: str, forbidden: tuple[str, ...]) -> None:
    graph = import_graph()
    crossing = sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        if _within(a, package)
        for b in targets
        if any(_within(b, f) for f in forbidden)
    )
    assert not crossing, f"{package} must not import {', '.join(forbidden)}: {crossing}"


# Small and flat: a module a reader can hold, functions that fit on a screen (docstrings aside).
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    first = node.body[0]
    has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    start = node.body[1].lineno if has_doc and len(node.body) > 1 else node.lineno
    return (node.end_lineno or node.lineno) - start + 1


def test_modules_and_functions_stay_small() -> None:
    too_big = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            source = path.read_text()
            name = path.relative_to(ROOT)
            if (lines := source.count("\n")) > MAX_MODULE_LINES:
                too_big.append(f"{name}: {lines} lines")
            for node in ast.walk(ast.parse(source)):
                is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                if is_function and (n := _function_lines(node)) > MAX_FUNCTION_LINES:
                    too_big.append(f"{name}:{node.lineno} {node.name}: {n} lines")
    assert not too_big, "split by responsibility: " + "; ".join(too_big)
