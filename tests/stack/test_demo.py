"""The demo `gro up` submits is valid and lands as a warm-up plus a comparison from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from client.http import GroClient
from server.config import Settings
from server.queue import RecordingQueue
from server.schemas.comparisons import VariantIn
from stack.demo import DEMO_SPEC, submit_demo


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The API tests' settings, taking an upload of the demo's demonstrations (~200 KB)."""
    return settings.model_copy(update={"max_upload_bytes": 2**20})


def test_demo_submits_a_warmup_and_a_comparison_starting_from_it(
    client: TestClient, keys: dict[str, str], queue: RecordingQueue, tmp_path: Path
):
    api = GroClient(key=keys["admin"], http=client)
    ids = submit_demo(api, yaml.safe_load(DEMO_SPEC.read_text()), tmp_path)
    comparison = api.comparison(ids["comparison"])
    assert [v.label for v in comparison_variants(comparison)] == ["gro", "grpo", "rloo", "dpo"]
    assert len(comparison["jobs"]) == 8 and comparison["seeds"] == [0, 1]
    assert all(job["spec"]["model"] == ids["warmup"] for job in comparison["jobs"])
    warmup = api.job(ids["warmup"])
    assert warmup["method"] == "sft"
    # The warm-up imitates the uploaded sloppy demonstrations: 40% reversed, the rest copied.
    dataset = api.request("GET", f"/v1/datasets/{warmup['spec']['data']['train']}")
    assert dataset["kind"] == "sft" and dataset["rows"] == 8000
    assert len(queue.sent) == 9


def comparison_variants(comparison: dict) -> list:
    return [VariantIn(**v) for v in comparison["variants"]]
