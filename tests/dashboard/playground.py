"""The playground driven in Chromium against a stack with no worker: the test (or the
screenshot script) trains a tiny job and runs the generation the page started with the worker's
own runner, in this process, while the page polls. Shared by the browser test and
scripts/screenshots."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from server.config import Settings
from tests.dashboard.browser import exceptions, open_page, settle
from tests.dashboard.stack import Stack
from worker.runner import run_generation_job, run_train_job

GENERATE = "button:has-text('Generate')"
PROMPT, ANSWER = "rev stop=", "pots"


def worker_settings(stack: Stack) -> Settings:
    return Settings(
        environment="test",
        secret_key="playground-test-secret",
        database_url=stack.database_url,
        storage_dir=stack.storage,
        job_isolation="inline",
    )


def trained_job(stack: Stack) -> str:
    """A few SFT steps of tiny-llama on word reversal (a rule reward: the task's exact match),
    trained here; its id."""
    spec = {
        "name": "reverse-sft",
        "model": "builtin:tiny-llama",
        "method": "sft",
        "data": {"task": "builtin:reverse-sft"},
        "train": {"steps": 4, "batch_size": 8, "lr": 3e-3, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 4, "keep": 1},
    }
    with stack.http() as http:
        job = http.post("/v1/jobs", json=spec).json()
    assert run_train_job(worker_settings(stack), job["id"], "browser") == "succeeded"
    return job["id"]


def play(page: Any, stack: Stack, models: list[str], out: Path | None = None) -> str:
    """Prompt `models` side by side on the Playground page, run the generation and wait until
    every completion is drawn; the generation's id. A screenshot goes to out/playground.png."""
    open_page(page, stack.dashboard_url + "/playground", GENERATE)
    page.get_by_role("textbox", name="Other models").fill(", ".join(models))
    page.get_by_role("textbox", name="Prompt", exact=True).fill(PROMPT)
    fields = page.get_by_role("textbox", name="Reference fields (YAML)")
    fields.fill(f"{{answer: {ANSWER}}}")
    fields.press("Enter")
    settle(page)
    page.get_by_role("button", name="Generate").click()
    page.wait_for_selector("text=/gen-[0-9a-z]+/")
    (generation,) = set(re.findall(r"gen-[0-9a-z]+", page.inner_text("body")))
    assert run_generation_job(worker_settings(stack), generation, "browser") == "succeeded"
    for i in range(len(models)):  # each card once its completion is drawn
        page.wait_for_selector(f".st-key-completion-{i} :text('tokens ·')", timeout=60_000)
    settle(page)
    assert not exceptions(page), exceptions(page)
    if out is not None:  # tall enough for the cards: Streamlit scrolls inside the page
        page.set_viewport_size({"width": page.viewport_size["width"], "height": 1120})
        settle(page)
        page.screenshot(path=str(out / "playground.png"))
    return generation
