"""The demo `gro up` submits is valid and lands as a warm-up plus a comparison from it."""

from __future__ import annotations

import yaml
from fastapi.testclient import TestClient

from client.http import GroClient
from server.queue import RecordingQueue
from server.schemas.comparisons import VariantIn
from stack.demo import DEMO_SPEC, submit_demo


def test_demo_submits_a_warmup_and_a_comparison_starting_from_it(
    client: TestClient, keys: dict[str, str], queue: RecordingQueue
):
    api = GroClient(key=keys["admin"], http=client)
    ids = submit_demo(api, yaml.safe_load(DEMO_SPEC.read_text()))
    comparison = api.comparison(ids["comparison"])
    assert [v.label for v in comparison_variants(comparison)] == ["gro", "grpo", "rloo", "dpo"]
    assert len(comparison["jobs"]) == 8 and comparison["seeds"] == [0, 1]
    assert all(job["spec"]["model"] == ids["warmup"] for job in comparison["jobs"])
    assert api.job(ids["warmup"])["method"] == "sft"
    assert len(queue.sent) == 9


def comparison_variants(comparison: dict) -> list:
    return [VariantIn(**v) for v in comparison["variants"]]
