"""Driving the running dashboard in Debian's Chromium through Playwright (never a downloaded
browser: `playwright install` is not used). Shared by the browser test, scripts/screenshots
and bench/dashboard.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # The machines' closed network refuses Chromium's own background connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHART = "[data-testid='stVegaLiteChart']"
EXCEPTION = "[data-testid='stException']"
RUNNING = "[data-testid='stStatusWidget']"
# Charts in view: a chart in a hidden tab is not drawn until its tab is shown, so counts are
# of the visible charts only (a count over every tab depends on what was drawn before a click).
VISIBLE_DRAWN = f"""() => [...document.querySelectorAll("{CHART}")].filter(
    c => c.checkVisibility() && c.querySelector("canvas, svg")).length"""


@contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A Playwright page in a headless /usr/bin/chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def drawn_charts(page: Any) -> int:
    """Charts in view (not in a hidden tab) whose canvas (or svg) Vega has drawn."""
    return page.evaluate(VISIBLE_DRAWN)


def open_page(page: Any, url: str, ready: str, charts: int = 0, timeout_s: float = 90.0) -> float:
    """Load `url` and wait until the selector `ready` is visible, `charts` charts are drawn
    and the script has finished running; the seconds from navigation to the last chart."""
    start = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector(ready, timeout=timeout_s * 1000)
    if charts:
        wait_for_charts(page, charts, timeout_s)
    drawn_at = time.perf_counter() - start
    settle(page, timeout_s)
    return drawn_at


def settle(page: Any, timeout_s: float = 90.0) -> None:
    """Wait until the page's script run is over (the 'running' widget gone) and a frame
    has been painted."""
    page.wait_for_timeout(300)  # the widget appears a moment after a run starts
    page.wait_for_selector(RUNNING, state="detached", timeout=timeout_s * 1000)
    page.wait_for_timeout(200)


def exceptions(page: Any) -> list[str]:
    """The text of every Streamlit exception box on the page."""
    return page.locator(EXCEPTION).all_inner_texts()


# --- a tour of every page --------------------------------------------------------------------

TABLE = "[data-testid='stDataFrame']"
SUBMIT = "button:has-text('Submit')"


GRO_CHARTS = 7
"""The GRO quantities tab of a grpo run: 3 heatmaps, 2 bands, 2 curves (one is clip_frac)."""


def stops(seeded: dict[str, Any]) -> list[tuple[str, str, str, int]]:
    """(name, path, ready selector, charts drawn in view) for every page of the demo."""
    job = seeded["comparison"]["jobs"][0]  # the first variant's first seed
    assert (job["method"], job["seed"]) == ("grpo", 0), "seed_comparison keeps creation order"
    return [
        ("jobs", "/", TABLE, 0),
        ("job", f"/job?id={job['id']}", "h1", 5),  # the Curves tab: a band and 4 curves
        (
            "compare",
            f"/compare?comparison={seeded['comparison']['id']}",
            "h1",
            2,
        ),  # faceted, and reward at KL
        ("datasets", "/datasets", TABLE, 0),
        ("new_job", "/new_job", SUBMIT, 0),
    ]


def tour(page: Any, base_url: str, seeded: dict[str, Any], out: Path) -> dict[str, float]:
    """Open every page, check it, and save a screenshot of each under `out` (plus the job
    page's GRO tab); the seconds each page took to show its charts. Raises AssertionError
    naming the page that showed an exception or too few charts."""
    out.mkdir(parents=True, exist_ok=True)
    # The first load after the server starts can come up blank: load once, unmeasured.
    open_page(page, base_url + "/", TABLE)
    seconds = {}
    for name, path, ready, charts in stops(seeded):
        seconds[name] = open_page(page, base_url + path, ready, charts)
        assert not exceptions(page), (name, exceptions(page))
        assert drawn_charts(page) >= charts, (name, drawn_charts(page))
        if name == "new_job":  # the API's refusal, shown under the field it names
            page.get_by_label("Learning rate").fill("-0.001")
            page.get_by_label("Learning rate").press("Enter")
            settle(page)
            page.get_by_role("button", name="Submit").click()
            page.wait_for_selector("text=The API refused the spec: train.lr")
            settle(page)
        page.screenshot(path=str(out / f"{name}.png"))
        if name == "job":
            page.get_by_role("tab", name="GRO quantities").click()
            wait_for_charts(page, GRO_CHARTS)
            settle(page)
            assert not exceptions(page), ("job/GRO quantities", exceptions(page))
            page.screenshot(path=str(out / "job-gro.png"))
            page.get_by_role("tab", name="Curves").click()
    return seconds


def wait_for_charts(page: Any, n: int, timeout_s: float = 90.0) -> None:
    """Wait until `n` charts in view are drawn. An exception box ends the wait at once and
    fails with its text: a page that raised must not read as a chart that timed out."""
    script = f"n => ({VISIBLE_DRAWN})() >= n || !!document.querySelector({EXCEPTION!r})"
    page.wait_for_function(script, arg=n, timeout=timeout_s * 1000)
    assert not exceptions(page), exceptions(page)
