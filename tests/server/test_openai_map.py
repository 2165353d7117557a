"""OpenAI requests as gro specs, without the API: graders as rewards, hyperparameters."""

from __future__ import annotations

from typing import Any

import pytest

from gro_core.spec import load_spec
from server.errors import InvalidRequestError
from server.schemas.openai import FineTuningJobCreate
from server.services.openai_graders import linear_weights, rewards_of
from server.services.openai_map import DEFAULTS, map_request
from tests.server.openai_sdk import STRING_CHECK

SOURCE = "def grade(sample, item):\n    return 1.0\n"


def request(**body: Any) -> FineTuningJobCreate:
    return FineTuningJobCreate.model_validate({"model": "m", "training_file": "ds-1"} | body)


def reinforcement(grader: dict[str, Any], **extra: Any) -> FineTuningJobCreate:
    return request(method={"type": "reinforcement", "reinforcement": {"grader": grader}}, **extra)


def test_linear_weights_read_a_weighted_sum():
    names = ["a", "b", "c"]
    assert linear_weights("a + 2*b - 0.5 * c", names, "g") == {"a": 1.0, "b": 2.0, "c": -0.5}
    assert linear_weights(".25*a+a", names, "g") == {"a": 1.25}
    for bad in ("a * b", "max(a, b)", "a + d", ""):
        with pytest.raises(InvalidRequestError) as info:
            linear_weights(bad, names, "g")
        assert info.value.field == "g.calculate_output"


def test_nested_multi_graders_multiply_their_weights():
    inner = {
        "type": "multi",
        "name": "i",
        "graders": {"s": STRING_CHECK},
        "calculate_output": "2*s",
    }
    outer = {
        "type": "multi",
        "name": "o",
        "graders": {"inner": inner, "fixed": STRING_CHECK | {"reference": "yes"}},
        "calculate_output": "0.5 * inner + fixed",
    }
    rewards = rewards_of(outer, "grader")
    assert [(r.get("field"), r.get("text"), r["weight"]) for r in rewards] == [
        ("answer", None, 1.0),
        (None, "yes", 1.0),
    ]


def test_score_model_is_a_reward_model():
    grader = {"type": "score_model", "name": "rm", "model": "job-01rm", "input": []}
    assert rewards_of(grader, "g") == [{"type": "reward_model", "model": "job-01rm", "weight": 1.0}]


def test_python_graders_run_only_where_allowed():
    grader = {"type": "python", "name": "p", "source": SOURCE}
    mapped = map_request(reinforcement(grader), allow_python=True)
    assert mapped.document["rewards"] == [{"type": "python", "source": SOURCE, "weight": 1.0}]
    with pytest.raises(InvalidRequestError) as info:
        map_request(reinforcement(grader), allow_python=False)
    assert (info.value.code, info.value.field) == (
        "python_rewards_disabled",
        "method.reinforcement.grader",
    )


def test_reinforcement_auto_resolves_to_its_documented_defaults():
    mapped = map_request(reinforcement(STRING_CHECK), allow_python=False)
    resolved = mapped.fields["method"]["reinforcement"]["hyperparameters"]
    assert resolved == {
        "batch_size": DEFAULTS["batch_size"],
        "learning_rate_multiplier": 1.0,
        "n_epochs": 1,
        "compute_multiplier": 1.0,
        "eval_interval": DEFAULTS["eval_interval"],
        "eval_samples": DEFAULTS["eval_samples"],
    }
    assert mapped.document["rollout"] == {"num_generations": 8}
    assert mapped.document["method"] == "gro"


def test_overrides_through_gro_spec_are_echoed():
    mapped = map_request(
        request(method={"type": "dpo"}, gro={"spec": {"train": {"batch_size": 2}}}),
        allow_python=False,
    )
    assert mapped.fields["hyperparameters"]["batch_size"] == 2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"method": {"type": "dpo"}, "hyperparameters": {"n_epochs": 1}}, "hyperparameters"),
        ({"gro": {"steps": 3}}, "gro.steps"),
        ({"method": {"type": "dpo"}, "gro": {"method": "kto"}}, "gro.method"),
        ({"gro": {"spec": [1]}}, "gro.spec"),
        ({"method": {"type": "reinforcement", "reinforcement": {}}}, "method.reinforcement.grader"),
        (
            {
                "method": {"type": "reinforcement", "reinforcement": {"grader": STRING_CHECK}},
                "gro": {"method": "dpo"},
            },
            "gro.method",
        ),
        (
            {
                "method": {
                    "type": "reinforcement",
                    "reinforcement": {
                        "grader": STRING_CHECK,
                        "hyperparameters": {"reasoning_effort": "high"},
                    },
                }
            },
            "method.reinforcement.hyperparameters.reasoning_effort",
        ),
        (
            {
                "method": {
                    "type": "supervised",
                    "supervised": {"hyperparameters": {"batch_size": 1.5}},
                }
            },
            "method.supervised.hyperparameters.batch_size",
        ),
    ],
)
def test_refusals_name_the_param(body: dict[str, Any], param: str):
    with pytest.raises(InvalidRequestError) as info:
        map_request(request(**body), allow_python=False)
    assert info.value.field == param and info.value.message.startswith(param)


def test_a_wandb_integration_becomes_an_online_wandb_tracker():
    wandb = {"project": "p", "name": "run-1", "entity": "team", "tags": ["a"]}
    mapped = map_request(request(integrations=[{"type": "wandb", "wandb": wandb}]), False)
    assert mapped.document["integrations"] == [
        {
            "type": "wandb",
            "mode": "online",
            "project": "p",
            "run_name": "run-1",
            "entity": "team",
            "tags": ["a"],
        }
    ]
    assert load_spec(mapped.document).integrations[0].mode == "online"  # a valid spec
    assert "integrations" not in map_request(request(), False).document
    for bad, field in (
        ({"type": "comet"}, "integrations.0.type"),
        ({"type": "wandb", "wandb": {}}, "integrations.0.wandb.project"),
        ({"type": "wandb", "wandb": {"project": "p", "api_key": "k"}}, "integrations.0.wandb"),
    ):
        with pytest.raises(InvalidRequestError) as info:
            map_request(request(integrations=[bad]), False)
        assert info.value.field == field
