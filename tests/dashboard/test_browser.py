"""Every page of a running stack (the API and `streamlit run dashboard/app.py`) in Debian's
Chromium: charts drawn, no exception box, a screenshot of each."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.browser import CHROMIUM, browser_page, exceptions, open_page, tour
from tests.dashboard.stack import Stack, running_stack, seed_demo
from tests.processes import missing

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, Any]]]:
    if not CHROMIUM.exists():
        missing("Chromium (/usr/bin/chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing("the playwright package (pip install -e '.[dev]')")
    with running_stack(tmp_path_factory.mktemp("live"), dashboard=True) as stack:
        yield stack, seed_demo(stack)


def test_every_page_renders_with_its_charts(live, tmp_path: Path):
    stack, seeded = live
    with browser_page() as page:
        seconds = tour(page, stack.dashboard_url, seeded, tmp_path)
    assert set(seconds) == {"jobs", "job", "compare", "datasets", "new_job"}
    for name in [*seconds, "job-gro"]:
        shot = tmp_path / f"{name}.png"
        assert shot.stat().st_size > 20_000, name  # a rendered page, not a blank one


def test_a_bad_key_shows_the_sign_in_box_not_a_traceback(live, monkeypatch):
    stack, _ = live
    with browser_page() as page:
        open_page(page, stack.dashboard_url + "/", "h1")  # the stack's key works
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_selector("button:has-text('Connect')")
        page.get_by_label("API key").fill("gro-wrong")
        page.get_by_role("button", name="Connect").click()
        page.wait_for_selector("text=refused the key")
        assert not exceptions(page)
