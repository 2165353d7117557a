"""The server's layers, read from its source: routes and the app speak HTTP; services, the
database layer and storage raise domain errors and know nothing of HTTP; queries live in db/."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[2] / "server"
HTTP_FREE = [*sorted((SERVER / "services").glob("*.py")), *sorted((SERVER / "db").glob("*.py"))]
HTTP_FREE += [SERVER / "errors.py", SERVER / "storage.py", SERVER / "queue.py"]
WITHOUT_QUERIES = [*sorted((SERVER / "services").glob("*.py"))]
WITHOUT_QUERIES += sorted((SERVER / "api").rglob("*.py"))


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def _calls(path: Path) -> Iterator[str]:
    """Functions called by name (`select(...)`) and methods of named objects
    (`session.execute(...)`)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                yield func.id
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                yield f"{func.value.id}.{func.attr}"


@pytest.mark.parametrize("path", HTTP_FREE, ids=lambda p: p.relative_to(SERVER).as_posix())
def test_services_and_the_database_layer_know_nothing_of_http(path: Path):
    http = [m for m in _imports(path) if m.split(".")[0] in ("fastapi", "starlette")]
    http += [m for m in _imports(path) if m == "server.api" or m.startswith("server.api.")]
    assert not http, f"{path.name} imports {http}"
    assert "HTTPException" not in set(_calls(path))


# SQL builders, and the session's ways to run a query or delete a row.
SQL = {"select", "update", "delete", "insert", "text"}
SQL |= {f"session.{method}" for method in ("execute", "scalar", "scalars", "get", "delete")}


@pytest.mark.parametrize("path", WITHOUT_QUERIES, ids=lambda p: p.relative_to(SERVER).as_posix())
def test_routes_and_services_leave_queries_to_the_database_layer(path: Path):
    found = SQL & set(_calls(path))
    assert not found, f"{path.name} builds SQL ({', '.join(sorted(found))}): move it to server/db"
