"""Every page of a running stack (the API and `streamlit run dashboard/app.py`) in Debian's
Chromium: charts drawn, no exception box, a screenshot of each."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.browser import (
    CHROMIUM,
    SUBMIT,
    browser_page,
    drawn_charts,
    exceptions,
    open_page,
    settle,
    tour,
    wait_for_charts,
)
from tests.dashboard.playground import play, trained_job
from tests.dashboard.stack import Stack, running_stack, seed_demo
from tests.processes import missing

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium() -> None:
    if not CHROMIUM.exists():
        missing("Chromium (/usr/bin/chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing("the playwright package (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def live(
    chromium: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, Any]]]:
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


def test_new_job_form_is_built_from_the_method_registry(live):
    """In the browser: the method list is the API's (GET /v1/methods), a method's arguments
    show with their defaults, and a changed argument is submitted as method_args."""
    stack, _ = live
    with stack.http() as http:
        methods = {m["name"]: m for m in http.get("/v1/methods").json()["data"]}
    with browser_page() as page:
        open_page(page, stack.dashboard_url + "/new_job", SUBMIT)
        page.get_by_label("Name").fill("browser-dpo")
        page.get_by_label("Name").press("Enter")
        settle(page)
        assert page.get_by_label("epsilon", exact=True).count() == 1  # grpo's, the default
        assert select_options(page, "Method (preset)") == list(methods)
        page.get_by_role("option", name="dpo", exact=True).click()
        settle(page)
        (beta,) = methods["dpo"]["args"]
        assert page.get_by_label(beta["name"], exact=True).input_value() == str(beta["default"])
        page.get_by_label("beta", exact=True).fill("0.3")
        page.get_by_label("beta", exact=True).press("Enter")
        settle(page)
        assert not page.get_by_label("epsilon", exact=True).count()  # dpo has none
        page.get_by_role("button", name="Submit").click()
        page.wait_for_selector("text=Submitted")
        assert not exceptions(page)
        message = page.locator("[data-testid='stAlertContentSuccess']").inner_text()
    (job_id,) = re.findall(r"job-[0-9a-z]+", message)
    with stack.http() as http:
        spec = http.get(f"/v1/jobs/{job_id}").json()["spec"]
    assert (spec["name"], spec["method"]) == ("browser-dpo", "dpo")
    assert spec["method_args"] == {"beta": 0.3}


def select_options(page: Any, label: str) -> list[str]:
    """The options of the selectbox called `label`, in the order its open dropdown lists them.

    The dropdown is virtualised (it renders only the rows near the view and the selected one),
    so it is read a screen at a time, each option placed by its offset in the whole list."""
    page.get_by_label(label).click()
    page.wait_for_selector("[role='option']")
    listbox = page.locator("[role='listbox']").first
    listbox.evaluate("el => { el.scrollTop = 0; }")
    offsets: dict[str, float] = {}
    for _ in range(100):  # bounded: a screen per pass
        page.wait_for_timeout(50)
        offsets |= dict(listbox.evaluate(_OPTION_OFFSETS))
        if listbox.evaluate(_SCROLL_A_SCREEN):
            break
    listbox.evaluate("el => { el.scrollTop = 0; }")
    page.wait_for_timeout(50)
    return sorted(offsets, key=offsets.__getitem__)


_OPTION_OFFSETS = """el => [...el.querySelectorAll("[role='option']")].map(o => [o.innerText,
    o.getBoundingClientRect().top - el.getBoundingClientRect().top + el.scrollTop])"""
_SCROLL_A_SCREEN = """el => { const end = el.scrollTop + el.clientHeight >= el.scrollHeight - 1;
    el.scrollTop += el.clientHeight; return end; }"""


CHARTS_IN_TABS = """
<div data-testid="stVegaLiteChart"><svg></svg></div>
<div data-testid="stVegaLiteChart"></div>
<div style="display: none"><div data-testid="stVegaLiteChart"><svg></svg></div></div>
"""


def test_only_charts_in_view_count_as_drawn(chromium):
    # A chart in a hidden tab is drawn when its tab is shown: waits count what is in view.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with browser_page() as page:
        page.set_content(CHARTS_IN_TABS)
        assert drawn_charts(page) == 1
        with pytest.raises(PlaywrightTimeout):
            wait_for_charts(page, 2, timeout_s=0.5)


def test_an_exception_ends_a_chart_wait_with_its_text(chromium):
    with browser_page() as page:
        page.set_content(CHARTS_IN_TABS + '<div data-testid="stException">KeyError: x</div>')
        with pytest.raises(AssertionError, match="KeyError: x"):
            wait_for_charts(page, 5, timeout_s=30)


def test_the_playground_shows_each_models_completion_and_the_trained_ones_reward(live):
    """A real generation: a trained checkpoint and builtin:tiny-llama prompted side by side,
    the page polling the API until the worker wrote both; only the job has a reward."""
    stack, _ = live
    job = trained_job(stack)
    with browser_page() as page:
        generation = play(page, stack, [job, "builtin:tiny-llama"])
        trained = page.locator(".st-key-completion-0")
        assert trained.locator("[data-testid='stMetric']").count() == 1  # its reward
        assert page.locator(".st-key-completion-1 [data-testid='stMetric']").count() == 0
    with stack.http() as http:
        done = http.get(f"/v1/generations/{generation}").json()
    assert done["status"] == "succeeded"
    assert done["completions"][0]["reward"] in (0.0, 1.0)
    assert done["completions"][1]["reward"] is None
