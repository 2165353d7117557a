"""Dashboard benchmark: the Compare page with 8 runs × 10k steps × 6 metrics, in Chromium.

    .venv/bin/python bench/dashboard.py [--repeats 3] [--steps 10000]

Starts the real stack on 127.0.0.1 (uvicorn serving the API on SQLite, `streamlit run
dashboard/app.py`), seeds a comparison of 4 methods × 2 seeds, each run 10k steps of the 6
metrics the page draws by default, and measures in one run, from navigation until the page's
chart (one faceted chart, a panel per metric) is drawn:
  - first visit: a new browser (nothing cached) and a new dashboard process: Streamlit's
    scripts and Vega are downloaded and compiled, the dashboard's caches are empty;
  - cold: a new dashboard process (empty st.cache_data: every request goes to the API) in a
    browser that has visited before (a returning user after a restart), URL opened;
  - cold click: the same, Compare clicked in the sidebar of the loaded app (no page reload);
  - warm: the URL opened again (the dashboard's cache answers; the browser still reloads);
  - API: the requests behind the chart (comparison list and summary, a run's metric names,
    each run's 6 downsampled series), sent as the page sends them (8 in parallel), from here;
  - baseline: a Streamlit page holding one 3-point chart, opened the same way: the floor any
    Streamlit page costs on this machine at the time (the machine is shared: compare to it).
Each dashboard process first serves its Jobs page (no metrics): the first load after a start
can come up blank.
Target (issue 7): cold <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import markdown_table, wait_for_quiet  # noqa: E402
from dashboard.data import COMPARE_POINTS  # noqa: E402
from tests.dashboard.browser import (  # noqa: E402
    TABLE,
    browser_page,
    exceptions,
    open_page,
    settle,
    wait_for_charts,
)
from tests.dashboard.stack import (  # noqa: E402
    SIX_METRICS,
    Stack,
    running_stack,
    seed_comparison,
    start_dashboard,
)
from tests.processes import free_port, port_open, stop, wait_until  # noqa: E402

METHODS = ("grpo", "rloo", "gro", "remax")
SEEDS = (0, 1)


def api_seconds(stack: Stack, comparison_id: str, job_ids: list[str]) -> float:
    """Wall time of the requests behind the Compare page's charts, in the page's order."""
    with stack.http() as http:
        start = time.perf_counter()
        http.get("/v1/comparisons", params={"limit": 100}).raise_for_status()
        http.get(f"/v1/comparisons/{comparison_id}").raise_for_status()
        names = {"names": "~", "max_points": 2}  # the names of one run (they share a spec)
        http.get(f"/v1/jobs/{job_ids[0]}/metrics", params=names).raise_for_status()
        with ThreadPoolExecutor(8) as pool:
            series = {"names": ",".join(SIX_METRICS), "max_points": COMPARE_POINTS}
            answers = list(
                pool.map(lambda i: http.get(f"/v1/jobs/{i}/metrics", params=series), job_ids)
            )
        elapsed = time.perf_counter() - start
    for answer in answers:
        answer.raise_for_status()
        assert sorted(answer.json()["series"]) == sorted(SIX_METRICS)
    return elapsed


def page_seconds(page, url: str) -> float:
    seconds = open_page(page, url, "h1", charts=1)
    assert not exceptions(page), exceptions(page)
    return seconds


def click_seconds(page) -> float:
    """From a click on Compare in the sidebar (the app already loaded) to the charts."""
    start = time.perf_counter()
    page.get_by_role("link", name="Compare").click()
    wait_for_charts(page, 1)
    seconds = time.perf_counter() - start
    settle(page)
    assert not exceptions(page), exceptions(page)
    return seconds


@contextmanager
def fresh_dashboard(stack: Stack, root: Path, page, port: int) -> Iterator[str]:
    """A new dashboard process (empty caches) on `port`, its Jobs page (no metrics) loaded.
    The same port every time: the browser keeps Streamlit's scripts cached across restarts,
    as a returning user's browser does."""
    base = start_dashboard(stack, root, port)
    process = stack.processes.pop()
    try:
        open_page(page, base + "/", TABLE)  # the first load after a start can be blank
        yield base
    finally:
        stop(process)


def measure(stack: Stack, root: Path, url_path: str, repeats: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"first": [], "cold": [], "click": [], "warm": []}
    port = free_port()
    for _ in range(repeats):
        with browser_page(width=1400, height=1000) as page:  # a new browser: nothing cached
            with fresh_dashboard(stack, root, page, port) as base:
                out["first"].append(page_seconds(page, base + url_path))
            with fresh_dashboard(stack, root, page, port) as base:
                out["cold"].append(page_seconds(page, base + url_path))
                out["warm"] += [page_seconds(page, base + url_path) for _ in range(2)]
            with fresh_dashboard(stack, root, page, port):
                out["click"].append(click_seconds(page))
    return out


FLOOR_APP = """
import pandas as pd
import streamlit as st

st.title("floor")
frame = pd.DataFrame({"x": [1, 2, 3], "value": [1.0, 3.0, 2.0]})
spec = {"mark": "line", "encoding": {"x": {"field": "x", "type": "quantitative"},
                                     "y": {"field": "value", "type": "quantitative"}}}
st.vega_lite_chart(frame, spec, width="stretch")
"""


def floor_seconds(root: Path, repeats: int) -> list[float]:
    """The baseline: a Streamlit page holding one 3-point chart, loaded the same way. What
    any Streamlit page costs on this machine right now (frontend, session, Vega)."""
    app = root / "floor.py"
    app.write_text(FLOOR_APP)
    port = free_port()
    argv = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true"]
    argv += ["--server.port", str(port), "--browser.gatherUsageStats", "false"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(port), 60, "the floor app")
        url = f"http://127.0.0.1:{port}/"
        with browser_page(width=1400, height=1000) as page:
            open_page(page, url, "h1")  # the first load after a start can be blank
            return [open_page(page, url, "h1", charts=1) for _ in range(repeats)]
    finally:
        stop(process)


def row(name: str, values: list[float]) -> list[str]:
    return [
        name,
        f"{statistics.median(values):.2f}",
        f"{min(values):.2f}",
        f"{max(values):.2f}",
        str(len(values)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10_000)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="gro-bench-dash-") as tmp,
        running_stack(Path(tmp)) as stack,
    ):
        started = time.perf_counter()
        comparison = seed_comparison(
            stack, "bench", METHODS, SEEDS, args.steps, names=SIX_METRICS, sample_every=100
        )
        job_ids = [j["id"] for j in comparison["jobs"]]
        print(
            f"seeded {len(job_ids)} runs × {args.steps} steps × {len(SIX_METRICS)} metrics "
            f"in {time.perf_counter() - started:.0f}s",
            file=sys.stderr,
        )
        busy = wait_for_quiet(max_busy=0.5, timeout=120)
        load_before = os.getloadavg()
        url = f"/compare?comparison={comparison['id']}"
        pages = measure(stack, Path(tmp), url, args.repeats)
        floor = floor_seconds(Path(tmp), args.repeats * 2)
        apis = [api_seconds(stack, comparison["id"], job_ids) for _ in range(args.repeats * 2)]
        load_after = os.getloadavg()
    print(
        markdown_table(
            ["Compare page, 8 runs × 10k steps × 6 metrics", "median s", "min s", "max s", "n"],
            [
                row("first visit: new browser, new dashboard", pages["first"]),
                row("cold: new dashboard, URL opened", pages["cold"]),
                row("cold: new dashboard, Compare clicked in the app", pages["click"]),
                row("warm: URL opened again (dashboard cache)", pages["warm"]),
                row("API behind the charts (from the bench process)", apis),
                row("baseline: a Streamlit page with one 3-point chart", floor),
            ],
        )
    )
    print(
        f"\nmachine: {psutil.cpu_count()} CPUs; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; other processes used {busy:.0%} of the CPUs when "
        "measuring started"
    )


if __name__ == "__main__":
    main()
