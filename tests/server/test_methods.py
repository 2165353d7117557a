"""GET /v1/methods and GET /v1/tasks: the method registry and the built-in tasks over HTTP."""

from __future__ import annotations

import pytest

from gro_core.methods import METHODS
from gro_core.tasks import TASKS
from tests.server.conftest import Api


def test_methods_list_every_registry_method_in_order(alice: Api):
    body = alice.get("/v1/methods").json()
    assert body["object"] == "list"
    assert [m["name"] for m in body["data"]] == list(METHODS)


def test_method_records_say_kinds_online_and_objective_facts(alice: Api):
    by_name = {m["name"]: m for m in alice.get("/v1/methods").json()["data"]}
    dpo, grpo, sft = by_name["dpo"], by_name["grpo"], by_name["sft"]
    assert dpo["kinds"] == ["preference"] and not dpo["online"] and dpo["offline"]
    assert dpo["needs_reference"] and not dpo["compares_in_group"]
    assert grpo["kinds"] == ["prompt"] and grpo["online"] and grpo["compares_in_group"]
    assert by_name["gro"]["online"] and by_name["gro"]["offline"]  # prompts and pairs
    assert dpo["citation"].startswith("Rafailov") and dpo["trains_with"] == "gro"
    assert dpo["trl"] == "DPOTrainer loss_type='sigmoid'"
    assert sft["trains_with"] == "sft" and sft["args"] == [] and sft["preset"] is None
    assert grpo["preset"]["name"] == "grpo" and grpo["preset"]["kl_in_loss"] is True


@pytest.mark.parametrize("name", list(METHODS))
def test_method_args_match_the_registry(alice: Api, name: str):
    (served,) = [m for m in alice.get("/v1/methods").json()["data"] if m["name"] == name]
    method = METHODS[name]
    assert served["args"] == [
        {"name": a.name, "type": a.type, "default": a.default, "doc": a.doc} for a in method.args
    ]
    assert all(a["doc"] for a in served["args"])  # every argument documented
    config = method.config()
    assert served["preset"] == (config.to_dict() if config else None)


def test_arg_types_and_defaults_survive_json(alice: Api):
    by_name = {m["name"]: m for m in alice.get("/v1/methods").json()["data"]}
    grpo = {a["name"]: a for a in by_name["grpo"]["args"]}
    assert grpo["epsilon"] == {**grpo["epsilon"], "type": "float", "default": 0.2}
    assert (
        grpo["epsilon_high"]["type"] == "float | None" and grpo["epsilon_high"]["default"] is None
    )
    baseline = next(a for a in by_name["reinforce_pp"]["args"] if a["name"] == "baseline")
    assert baseline["type"] == "bool" and baseline["default"] is False


def test_tasks_list_every_builtin_task_with_its_kind(alice: Api):
    body = alice.get("/v1/tasks").json()
    assert body["object"] == "list"
    assert [t["name"] for t in body["data"]] == [f"builtin:{n}" for n in TASKS]
    by_name = {t["name"]: t for t in body["data"]}
    assert by_name["builtin:arithmetic"]["kind"] == "prompt"
    assert by_name["builtin:reverse-preference"]["kind"] == "preference"
    task = TASKS["arithmetic-sft"]
    served = by_name["builtin:arithmetic-sft"]
    assert (served["description"], served["default_reward"]) == (
        task.description,
        task.default_reward,
    )
    assert served["rewards"] == list(task.rewards) and served["family"] == "arithmetic"


@pytest.mark.parametrize("path", ["/v1/methods", "/v1/tasks"])
def test_a_key_is_required(client, path: str):
    response = client.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    bad = client.get(path, headers={"Authorization": "Bearer gro-nope"})
    assert bad.status_code == 401


def test_both_are_typed_in_openapi(client):
    schema = client.get("/openapi.json").json()
    methods = schema["paths"]["/v1/methods"]["get"]
    ref = methods["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/MethodList")
    method = schema["components"]["schemas"]["MethodOut"]["properties"]
    assert {"name", "kinds", "online", "args", "preset"} <= set(method)
    assert set(schema["components"]["schemas"]["MethodArgOut"]["properties"]) >= {
        "name",
        "type",
        "default",
        "doc",
    }
    tasks = schema["paths"]["/v1/tasks"]["get"]
    assert "401" in tasks["responses"] and tasks.get("security")
