"""/v1/generations: the playground's request validated by field, queued on the light queue,
visible only to its owner."""

from __future__ import annotations

import pytest

from server.config import Settings
from server.queue import LIGHT_QUEUE, TASK_FOR_KIND, RecordingQueue
from tests.server.conftest import Api

PROMPT = {"checkpoints": ["builtin:tiny-llama"], "prompt": "Reverse: abc"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The API tests' settings with a small max_new_tokens limit."""
    return settings.model_copy(update={"limit_max_new_tokens": 100})


def refusal(response) -> dict:
    assert response.status_code == 422, response.text
    return response.json()["error"]


def test_a_generation_is_queued_on_the_light_queue_with_a_pending_completion_per_model(
    alice: Api, queue: RecordingQueue
):
    body = {**PROMPT, "checkpoints": ["builtin:tiny-llama", "builtin:small-llama"]}
    response = alice.post("/v1/generations", json=body)
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["id"].startswith("gen-") and out["status"] == "queued"
    assert queue.sent == [(out["id"], "generation")]
    assert TASK_FOR_KIND["generation"][1] == LIGHT_QUEUE
    assert [c["checkpoint"] for c in out["completions"]] == body["checkpoints"]
    assert all(c["completion"] is None for c in out["completions"])
    assert out["request"]["sampling"] == {
        "temperature": 1.0,
        "top_p": 1.0,
        "max_new_tokens": 64,
        "seed": 0,
    }
    assert alice.get(f"/v1/generations/{out['id']}").json()["id"] == out["id"]
    assert alice.get("/v1/jobs").json()["data"] == []  # not a training job


def test_more_than_four_models_are_refused_naming_checkpoints(alice: Api):
    five = {**PROMPT, "checkpoints": ["builtin:tiny-llama"] * 5}
    error = refusal(alice.post("/v1/generations", json=five))
    assert error["param"] == "checkpoints"


def test_a_prompt_and_messages_together_are_refused_naming_prompt(alice: Api):
    messages = [{"role": "user", "content": "hi"}]
    error = refusal(alice.post("/v1/generations", json={**PROMPT, "messages": messages}))
    assert error["param"] == "prompt"
    error = refusal(alice.post("/v1/generations", json={"checkpoints": ["builtin:tiny-llama"]}))
    assert error["param"] == "prompt"


def test_sampling_out_of_range_is_refused_naming_its_key(alice: Api):
    bad = {**PROMPT, "sampling": {"top_p": 1.5}}
    assert refusal(alice.post("/v1/generations", json=bad))["param"] == "sampling.top_p"
    bad = {**PROMPT, "sampling": {"temperature": -1}}
    assert refusal(alice.post("/v1/generations", json=bad))["param"] == "sampling.temperature"


def test_max_new_tokens_over_the_server_limit_names_the_variable(alice: Api):
    over = {**PROMPT, "sampling": {"max_new_tokens": 101}}
    error = refusal(alice.post("/v1/generations", json=over))
    assert error["param"] == "sampling.max_new_tokens"
    assert "GRO_LIMIT_MAX_NEW_TOKENS" in error["message"]


def test_another_owners_checkpoint_or_generation_is_not_found(alice: Api, bob: Api):
    job = alice.job(
        {"model": "builtin:tiny-llama", "method": "sft", "data": {"task": "builtin:reverse-sft"}}
    )
    error = refusal(bob.post("/v1/generations", json={**PROMPT, "checkpoints": [job["id"]]}))
    assert error["param"] == "checkpoints.0" and error["code"] == "not_found"
    mine = alice.post("/v1/generations", json=PROMPT).json()
    assert bob.get(f"/v1/generations/{mine['id']}").status_code == 404
    assert alice.get(f"/v1/generations/{mine['id']}").status_code == 200
