"""Dashboard fixtures: one real API per session (uvicorn on SQLite) seeded with a comparison
and jobs in every state, and AppTest runs of the dashboard's pages against it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.dashboard.stack import ROOT, Stack, running_stack, seed_demo

APP = ROOT / "dashboard" / "app.py"


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, Any]]]:
    with running_stack(tmp_path_factory.mktemp("demo")) as stack:
        yield stack, seed_demo(stack)


@pytest.fixture(scope="session")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """An API with a key and nothing else."""
    with running_stack(tmp_path_factory.mktemp("empty")) as stack:
        yield stack


def fresh_caches() -> None:
    # st.cache_data lives in the process: one test's answers must not serve the next.
    st.cache_data.clear()
    st.cache_resource.clear()


Open = Callable[..., AppTest]


def opener(monkeypatch: pytest.MonkeyPatch, url: str | None, key: str | None) -> Open:
    # No `gro login` config of the machine's user may leak in.
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent/gro-dashboard-tests")
    for name, value in (("GRO_API_URL", url), ("GRO_API_KEY", key)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    fresh_caches()

    def open_page(page: str | None = None, **query: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=90)
        at.query_params.update(query)
        if page:
            at.switch_page(f"views/{page}.py")
        return at.run()

    return open_page


@pytest.fixture
def app(demo: tuple[Stack, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Open:
    """Opens a page of the dashboard (`app("job", id=...)`) on the seeded API."""
    stack, _ = demo
    return opener(monkeypatch, stack.url, stack.key)


@pytest.fixture
def seeded(demo: tuple[Stack, dict[str, Any]]) -> dict[str, Any]:
    return demo[1]


@pytest.fixture
def api(demo: tuple[Stack, dict[str, Any]]) -> Iterator[Any]:
    with demo[0].http() as http:
        yield http


# --- reading an AppTest ----------------------------------------------------------------------


def chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec).get("title") for c in at.get("vega_lite_chart")]


def chart_specs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def texts(at: AppTest) -> str:
    """Every message a user reads on the page, one per line."""
    parts = [*at.info, *at.error, *at.success, *at.warning, *at.caption, *at.markdown, *at.title]
    return "\n".join(str(p.value) for p in parts)


def tab(at: AppTest, label: str) -> Any:
    """The tab called `label` (dataframes have no keys to find them by)."""
    return next(t for t in at.tabs if t.label == label)


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def job_id(seeded: dict[str, Any], name: str) -> str:
    return seeded["jobs"][name]["id"]
