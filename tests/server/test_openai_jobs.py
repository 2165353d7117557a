"""/v1/fine_tuning/jobs through the official openai SDK, on a queue that records what it is
sent (no worker): request mapping, resolved hyperparameters, pages, state changes, errors."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent

from server.queue import RecordingQueue
from server.services.openai_map import BASE_LR
from tests.server.conftest import Api
from tests.server.openai_sdk import STRING_CHECK, dpo_rows, jsonl_file, rft_rows, sdk

MODEL = "builtin:tiny-llama"


@pytest.fixture
def alice_sdk(client: TestClient, keys: dict[str, str]) -> openai.OpenAI:
    return sdk(client, keys["alice"])


def upload(client: openai.OpenAI, rows: list[dict]) -> str:
    return client.files.create(file=jsonl_file(rows), purpose="fine-tune").id


def spec_of(alice: Api, job_id: str) -> dict[str, Any]:
    return alice.get(f"/v1/jobs/{job_id}").json()["spec"]


def test_a_dpo_job_resolves_auto_and_echoes_it(
    alice_sdk: openai.OpenAI, alice: Api, queue: RecordingQueue
):
    file_id = upload(alice_sdk, dpo_rows(8))
    job = alice_sdk.fine_tuning.jobs.create(
        model=MODEL,
        training_file=file_id,
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2, "n_epochs": "auto"}}},
        seed=7,
        suffix="nice",
        metadata={"team": "a"},
    )
    assert isinstance(job, FineTuningJob)
    assert (job.object, job.status, job.model, job.training_file) == (
        "fine_tuning.job",
        "queued",
        MODEL,
        file_id,
    )
    assert (job.seed, job.suffix, job.metadata) == (7, "nice", {"team": "a"})
    assert isinstance(job.created_at, int) and job.finished_at is None
    assert job.fine_tuned_model is None and job.trained_tokens is None
    assert job.method.type == "dpo"
    resolved = job.method.dpo.hyperparameters
    assert (resolved.beta, resolved.n_epochs, resolved.batch_size) == (0.2, 3, 8)
    assert resolved.learning_rate_multiplier == 1.0
    assert job.hyperparameters.n_epochs == 3
    spec = spec_of(alice, job.id)
    assert (spec["method"], spec["method_args"], spec["name"]) == ("dpo", {"beta": 0.2}, "nice")
    assert spec["train"].items() >= {"epochs": 3, "batch_size": 8, "lr": BASE_LR, "seed": 7}.items()
    assert queue.sent == [(job.id, "train")]
    assert alice_sdk.fine_tuning.jobs.retrieve(job.id) == job


def test_supervised_is_sft_and_learning_rate_multiplies_the_default(
    alice_sdk: openai.OpenAI, alice: Api
):
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    ] * 4
    job = alice_sdk.fine_tuning.jobs.create(
        model=MODEL,
        training_file=upload(alice_sdk, rows),
        hyperparameters={"learning_rate_multiplier": 10, "batch_size": 2},
    )
    assert job.method.type == "supervised"
    spec = spec_of(alice, job.id)
    assert spec["method"] == "sft"
    assert spec["train"]["lr"] == pytest.approx(10 * BASE_LR) and spec["train"]["batch_size"] == 2
    assert job.hyperparameters.learning_rate_multiplier == 10


def test_reinforcement_maps_graders_onto_rewards(alice_sdk: openai.OpenAI, alice: Api):
    multi = {
        "type": "multi",
        "name": "both",
        "graders": {
            "exact": STRING_CHECK,
            "close": {
                "type": "text_similarity",
                "name": "close",
                "input": "{{sample.output_text}}",
                "reference": "{{item.answer}}",
                "evaluation_metric": "fuzzy_match",
            },
        },
        "calculate_output": "0.75 * exact + 0.25 * close",
    }
    job = alice_sdk.fine_tuning.jobs.create(
        model=MODEL,
        training_file=upload(alice_sdk, rft_rows(8)),
        method={
            "type": "reinforcement",
            "reinforcement": {"grader": multi, "hyperparameters": {"compute_multiplier": 0.5}},
        },
    )
    spec = spec_of(alice, job.id)
    assert spec["method"] == "gro" and spec["rollout"]["num_generations"] == 4
    assert [(r["type"], r["field"], r["weight"]) for r in spec["rewards"]] == [
        ("string_check", "answer", 0.75),
        ("text_similarity", "answer", 0.25),
    ]
    assert job.method.reinforcement.grader.type == "multi"  # echoed as sent


def test_the_gro_extension_picks_a_preset_and_any_spec_key(alice_sdk: openai.OpenAI, alice: Api):
    job = alice_sdk.fine_tuning.jobs.create(
        model=MODEL,
        training_file=upload(alice_sdk, rft_rows(8)),
        method={"type": "reinforcement", "reinforcement": {"grader": STRING_CHECK}},
        extra_body={"gro": {"method": "grpo", "spec": {"rollout": {"max_new_tokens": 4}}}},
    )
    spec = spec_of(alice, job.id)
    assert (spec["method"], spec["rollout"]["max_new_tokens"]) == ("grpo", 4)
    assert spec["rewards"][0].items() >= {"type": "string_check", "operation": "eq"}.items()


@pytest.mark.parametrize(
    ("method", "param"),
    [
        (
            {"type": "reinforcement", "reinforcement": {"grader": STRING_CHECK | {"input": "x"}}},
            "method.reinforcement.grader.input",
        ),
        (
            {
                "type": "reinforcement",
                "reinforcement": {
                    "grader": {
                        "type": "text_similarity",
                        "name": "t",
                        "input": "{{sample.output_text}}",
                        "reference": "{{item.answer}}",
                        "evaluation_metric": "bleu",
                    }
                },
            },
            "method.reinforcement.grader.evaluation_metric",
        ),
        (
            {
                "type": "reinforcement",
                "reinforcement": {"grader": {"type": "label_model", "name": "l"}},
            },
            "method.reinforcement.grader.type",
        ),
        (
            {
                "type": "reinforcement",
                "reinforcement": {"grader": {"type": "python", "name": "p", "source": "x"}},
            },
            "method.reinforcement.grader",
        ),
        (
            {
                "type": "reinforcement",
                "reinforcement": {
                    "grader": {
                        "type": "multi",
                        "name": "m",
                        "graders": {"a": STRING_CHECK},
                        "calculate_output": "max(a, 1)",
                    }
                },
            },
            "method.reinforcement.grader.calculate_output",
        ),
        (
            {"type": "dpo", "dpo": {"hyperparameters": {"gamma": 1}}},
            "method.dpo.hyperparameters.gamma",
        ),
        (
            {"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 0}}},
            "method.dpo.hyperparameters.n_epochs",
        ),
    ],
)
def test_what_cannot_be_mapped_is_a_bad_request_naming_the_param(
    alice_sdk: openai.OpenAI, method: dict[str, Any], param: str
):
    rows = rft_rows(4) if method["type"] == "reinforcement" else dpo_rows(4)
    file_id = upload(alice_sdk, rows)
    with pytest.raises(openai.BadRequestError) as info:
        alice_sdk.fine_tuning.jobs.create(model=MODEL, training_file=file_id, method=method)
    assert info.value.param == param


def test_a_file_of_the_wrong_kind_is_a_bad_request(alice_sdk: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        alice_sdk.fine_tuning.jobs.create(
            model=MODEL, training_file=upload(alice_sdk, rft_rows(4)), method={"type": "dpo"}
        )
    assert info.value.param == "training_file" and "preference" in info.value.message


def test_an_unparseable_body_is_unprocessable(alice_sdk: openai.OpenAI):
    with pytest.raises(openai.UnprocessableEntityError) as info:
        alice_sdk.fine_tuning.jobs.create(model=MODEL, training_file="ds-x", seed="seven")  # type: ignore[arg-type]
    assert info.value.param == "seed"


def test_an_unknown_training_file_is_named_by_its_param(alice_sdk: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        create_dpo(alice_sdk, "ds-missing")
    assert info.value.param == "training_file" and "ds-missing" in info.value.message


def test_unknown_job_and_wrong_key(client: TestClient, alice_sdk: openai.OpenAI):
    with pytest.raises(openai.NotFoundError):
        alice_sdk.fine_tuning.jobs.retrieve("job-missing")
    with pytest.raises(openai.AuthenticationError):
        sdk(client, "gro-wrong").fine_tuning.jobs.list()


def create_dpo(client: openai.OpenAI, file_id: str) -> FineTuningJob:
    return client.fine_tuning.jobs.create(
        model=MODEL, training_file=file_id, method={"type": "dpo"}
    )


def test_list_is_newest_first_and_auto_paginates(alice_sdk: openai.OpenAI, alice: Api):
    file_id = upload(alice_sdk, dpo_rows(4))
    ids = [create_dpo(alice_sdk, file_id).id for _ in range(3)]
    page = alice_sdk.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == ids[::-1][:2] and page.has_more
    assert [j.id for j in alice_sdk.fine_tuning.jobs.list(limit=2)] == ids[::-1]


def test_list_filters_by_metadata(alice_sdk: openai.OpenAI):
    file_id = upload(alice_sdk, dpo_rows(4))

    def tagged(**metadata: str) -> str:
        return alice_sdk.fine_tuning.jobs.create(
            model=MODEL, training_file=file_id, method={"type": "dpo"}, metadata=metadata
        ).id

    a, b = tagged(team="a", run="1"), tagged(team="b", run="1")
    create_dpo(alice_sdk, file_id)  # no metadata
    listed = alice_sdk.fine_tuning.jobs.list
    assert [j.id for j in listed(metadata={"team": "a"})] == [a]
    assert [j.id for j in listed(metadata={"run": "1"})] == [b, a]
    assert [j.id for j in listed(metadata={"run": "1", "team": "b"})] == [b]
    assert list(listed(metadata={"team": "c"})) == []
    assert len(list(listed())) == 3


def test_cancel_pause_resume_and_their_events(alice_sdk: openai.OpenAI, queue: RecordingQueue):
    jobs = alice_sdk.fine_tuning.jobs
    job = create_dpo(alice_sdk, upload(alice_sdk, dpo_rows(4)))
    assert jobs.pause(job.id).status == "paused"  # queued: paused at once
    resumed = jobs.resume(job.id)
    assert resumed.status == "queued" and queue.sent == [(job.id, "train")] * 2
    cancelled = jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and isinstance(cancelled.finished_at, int)
    with pytest.raises(openai.ConflictError):
        jobs.pause(job.id)
    events = list(jobs.list_events(job.id, limit=2))  # every page
    assert all(isinstance(e, FineTuningJobEvent) for e in events)
    ids = [int(e.id.removeprefix("ftevent-")) for e in events]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids))
    kinds = [e.data["kind"] for e in events]
    assert kinds == ["cancelled", "resume_requested", "paused", "created"]
    assert {e.level for e in events} == {"info", "warn"} and events[0].level == "warn"


def test_gro_jobs_pause_too(alice_sdk: openai.OpenAI, alice: Api):
    job = create_dpo(alice_sdk, upload(alice_sdk, dpo_rows(4)))
    assert alice.post(f"/v1/jobs/{job.id}/pause").json()["status"] == "paused"
    assert alice.post(f"/v1/jobs/{job.id}/pause").status_code == 409
    assert alice.post(f"/v1/jobs/{job.id}/resume").json()["status"] == "queued"


def test_gro_jobs_are_listed_as_fine_tuning_jobs(alice_sdk: openai.OpenAI, alice: Api):
    dataset = upload(alice_sdk, dpo_rows(4))
    native = alice.job(
        {"model": MODEL, "method": "dpo", "data": {"train": dataset}, "train": {"steps": 3}}
    )
    shown = alice_sdk.fine_tuning.jobs.retrieve(native["id"])
    assert (shown.method.type, shown.training_file, shown.model) == ("dpo", dataset, MODEL)
    assert shown.hyperparameters.batch_size == native["spec"]["train"]["batch_size"]
    lr = native["spec"]["train"]["lr"]
    assert shown.hyperparameters.learning_rate_multiplier == pytest.approx(lr / BASE_LR)
