"""JobSpec: defaults, bad values and unknown keys reported on their path, cross-key checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from gro_core.docgen.jobspec import documented_example
from gro_core.methods import METHODS
from gro_core.spec import (
    REWARD_TYPES,
    JobSpec,
    SpecError,
    apply_overrides,
    check_dataset_kind,
    check_rewards_allowed,
    check_train_data,
    format_validation_error,
    is_online,
    load_spec,
)

ROOT = Path(__file__).resolve().parents[2]
BASE = {"model": "builtin:tiny-llama", "method": "gro", "data": {"task": "builtin:arithmetic"}}

# The job spec's documented example, read from docs/jobspec.md: it must load as written.
CONTRACT_EXAMPLE = documented_example((ROOT / "docs" / "jobspec.md").read_text(encoding="utf-8"))


def errors_of(document: dict | str) -> dict[str, str]:
    """{path: message} of every problem load_spec reports for `document`."""
    with pytest.raises((ValidationError, SpecError)) as info:
        load_spec(document)
    return {e["path"]: e["message"] for e in format_validation_error(info.value)}


def with_(**overrides: object) -> dict:
    """BASE with dotted-key overrides (`with_(**{"train.lr": 0})`)."""
    return apply_overrides(BASE, overrides)


# --- defaults and loading -----------------------------------------------------------------------


def test_every_default_is_written_out_as_the_contract_shows():
    dumped = load_spec(BASE).model_dump(mode="json")
    assert dumped["train"] == {
        "steps": 200,
        "batch_size": 8,
        "lr": 1e-5,
        "warmup_steps": 10,
        "grad_accum": 1,
        "num_iterations": 1,
        "max_length": 256,
        "seed": 0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "epochs": None,
    }
    assert dumped["rollout"] == {
        "backend": "hf",
        "num_generations": 8,
        "max_new_tokens": 32,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "stop": [],
        "dynamic_sampling": False,
        "max_resample_rounds": 3,
        "overlong_buffer": 0,
        "overlong_penalty": 1.0,
        "mask_truncated": False,
    }
    assert dumped["eval"] == {"every": 20, "num_prompts": 64}
    assert dumped["checkpoint"] == {"every": 50, "keep": 2}
    assert dumped["data"] == {
        "train": None,
        "eval": None,
        "task": "builtin:arithmetic",
        "offline_mix": 0.0,
        "task_size": None,
    }
    assert dumped["lora"] is None and dumped["reference_model"] is None
    assert dumped["method_args"] == {} and dumped["rewards"] == []


def test_dump_then_load_gives_the_same_spec():
    spec = load_spec(
        with_(
            rewards=[
                {"type": "regex", "pattern": r"\d+", "field": "answer"},
                {"type": "length_penalty", "target_chars": 4},
            ],
            lora={"r": 4},
            **{"method_args.beta": 0.5},
        )
    )
    dumped = spec.model_dump(mode="json")
    assert load_spec(dumped) == spec
    assert load_spec(json.loads(json.dumps(dumped))) == spec
    assert load_spec(yaml.safe_dump(dumped)) == spec


def test_the_contract_example_loads(tmp_path):
    spec = load_spec(CONTRACT_EXAMPLE)
    assert spec.name == "arith-gro" and spec.train.lr == 1e-5
    assert spec.rewards[0].type == "exact_match" and spec.rewards[0].field == "answer"
    path = tmp_path / "job.yaml"
    path.write_text(CONTRACT_EXAMPLE)
    assert load_spec(path) == spec == load_spec(str(path))


def test_the_contract_example_writes_every_key_as_stored():
    # Every key at its stored value: a key added to the spec must be added to the example.
    assert yaml.safe_load(CONTRACT_EXAMPLE) == load_spec(CONTRACT_EXAMPLE).model_dump(mode="json")


def test_yaml_that_does_not_parse_is_reported_with_its_line():
    assert "line 2" in errors_of("model: x\nmethod: gro: dpo\n")[""]


def test_a_document_that_is_not_a_mapping_is_refused():
    assert "mapping" in errors_of("- model: x\n")[""]


def test_a_missing_file_is_an_error_not_yaml_text():
    with pytest.raises(FileNotFoundError):
        load_spec("does/not/exist.yaml")


def test_loading_a_spec_without_method_args_does_not_import_torch():
    # The API validates specs; it should not pay for torch unless method_args need the presets.
    code = (
        "import sys; from gro_core.spec import load_spec; "
        f"load_spec({BASE!r}); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_validating_method_args_of_every_method_does_not_import_torch():
    # The API process validates every spec; method_args are checked by building the preset's
    # config, which must stay torch-free (component facts live in torch-free records).
    specs = [
        {**BASE, "method": "grpo", "method_args": {"epsilon": 0.3, "kl_coef": 0.0}},
        {**BASE, "method": "gro", "method_args": {"beta": 2.0, "anchor": "group_mean"}},
        {**BASE, "method": "rloo", "rollout": {"num_generations": 1}},
    ]
    code = (
        "import sys; from gro_core.spec import load_spec, format_validation_error; "
        "from gro_core.methods import describe_methods; describe_methods(); "
        f"load_spec({specs[0]!r}); load_spec({specs[1]!r})\n"
        f"try: load_spec({specs[2]!r})\n"
        "except Exception as exc: format_validation_error(exc)\n"
        "else: raise SystemExit('a group of one was accepted for rloo')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_json_schema_is_available_for_the_api():
    schema = JobSpec.model_json_schema()
    assert "train" in schema["properties"]


# --- bad values and unknown keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("train.lr", 0),
        ("train.lr", -1e-5),
        ("train.steps", 0),
        ("train.batch_size", 0),
        ("train.grad_accum", 0),
        ("train.warmup_steps", -1),
        ("train.max_grad_norm", 0),
        ("train.epochs", 0),
        ("train.lr", float("nan")),
        ("rollout.temperature", 0),
        ("rollout.temperature", -0.5),
        ("rollout.top_p", 0),
        ("rollout.top_p", 1.01),
        ("rollout.top_k", -1),
        ("rollout.num_generations", 0),
        ("rollout.max_new_tokens", 0),
        ("rollout.backend", "tgi"),
        ("data.offline_mix", -0.1),
        ("data.offline_mix", 1.0),
        ("checkpoint.keep", 0),
        ("checkpoint.every", -1),
        ("eval.num_prompts", 0),
        ("lora.r", 0),
        ("lora.dropout", 1.0),
        ("method", "ppo"),
        ("model", ""),
    ],
)
def test_bad_value_is_refused_on_its_path(key, value):
    assert key in errors_of(with_(**{key: value}))


@pytest.mark.parametrize("mix", [0.0, 0.5, 0.99])
def test_offline_mix_in_range_is_accepted(mix):
    assert load_spec(with_(**{"data.offline_mix": mix})).data.offline_mix == mix


def test_numbers_written_as_yaml_strings_are_read():
    # PyYAML reads 1e-5 (no dot) as a string; it must still be a learning rate.
    assert load_spec(with_(**{"train.lr": "1e-5"})).train.lr == 1e-5


@pytest.mark.parametrize(
    ("key", "path", "suggestion"),
    [
        ("lrr", "lrr", "allowed keys: name, model"),
        ("train.lrr", "train.lrr", "did you mean 'lr'"),
        ("rollout.temprature", "rollout.temprature", "did you mean 'temperature'"),
        ("data.tasks", "data.tasks", "did you mean 'task'"),
    ],
)
def test_unknown_key_is_refused_on_its_path(key, path, suggestion):
    message = errors_of(with_(**{key: 1}))[path]
    assert "unknown key" in message and suggestion in message


def test_all_problems_are_reported_at_once():
    errors = errors_of(with_(**{"train.lr": 0, "train.steps": 0, "rollout.top_p": 2}))
    assert {"train.lr", "train.steps", "rollout.top_p"} <= set(errors)


def test_data_needs_a_dataset_or_a_task():
    assert "data.train" in errors_of(with_(data={"task": None}))["data"]
    assert load_spec(with_(data={"task": None, "train": "x.jsonl"})).data.train == "x.jsonl"


def test_task_must_be_a_known_builtin():
    assert "arithmetic" in errors_of(with_(**{"data.task": "builtin:sorting"}))["data.task"]
    assert "builtin:<task>" in errors_of(with_(**{"data.task": "arithmetic"}))["data.task"]


def test_one_lora_target_may_be_written_as_a_string():
    assert load_spec(with_(lora={"target_modules": "c_attn"})).lora.target_modules == ["c_attn"]


# --- method_args, through the presets ---------------------------------------------------------


def test_method_args_are_checked_by_the_preset():
    preference = {"method": "dpo", "data": {"task": "builtin:arithmetic-preference"}}
    assert load_spec(with_(**preference, method_args={"beta": 0.2})).method_args == {"beta": 0.2}
    assert "beta" in errors_of(with_(**preference, method_args={"beta": -1}))["method_args"]
    assert "nonsense" in errors_of(with_(**preference, method_args={"nonsense": 1}))["method_args"]


@pytest.mark.parametrize(("method", "task"), [("sft", "sft"), ("reward_model", "preference")])
def test_methods_without_a_preset_take_no_method_args(method, task):
    doc = with_(method=method, data={"task": f"builtin:arithmetic-{task}"}, method_args={"x": 1})
    assert "takes no method_args" in errors_of(doc)["method_args"]


# --- rewards ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reward_type", ["regex", "format"])
def test_bad_regex_is_refused_on_its_path(reward_type):
    errors = errors_of(with_(rewards=[{"type": reward_type, "pattern": "(unclosed"}]))
    assert "regular expression" in errors["rewards.0.pattern"]


def test_unknown_or_missing_reward_type_names_the_allowed_types():
    errors = errors_of(with_(rewards=[{"type": "bleu"}, {"field": "answer"}]))
    for path in ("rewards.0.type", "rewards.1.type"):
        assert all(name in errors[path] for name in REWARD_TYPES)


def test_reward_fields_are_checked_per_type():
    errors = errors_of(
        with_(
            rewards=[
                {"type": "exact_match"},
                {"type": "contains", "text": "x", "fields": 1},
                {"type": "python", "path": "not a path"},
                {"type": "numeric_match", "field": "answer", "tolerance": -1},
            ]
        )
    )
    assert set(errors) == {
        "rewards.0.field",
        "rewards.1.fields",
        "rewards.2.path",
        "rewards.3.tolerance",
    }


def test_every_reward_type_loads_with_weight_one_by_default():
    rewards = [
        {"type": "exact_match", "field": "answer"},
        {"type": "numeric_match", "field": "answer"},
        {"type": "regex", "pattern": "^[0-9]+$"},
        {"type": "format", "pattern": "[0-9]+"},
        {"type": "contains", "text": "="},
        {"type": "length_penalty", "target_chars": 3},
        {"type": "string_check", "field": "answer", "operation": "ilike"},
        {"type": "text_similarity", "text": "hello"},
        {"type": "reward_model", "model": "runs/rm"},
        {"type": "python", "path": "my_pkg.rewards:score"},
    ]
    spec = load_spec(with_(rewards=rewards))
    assert [r.type for r in spec.rewards] == list(REWARD_TYPES)
    assert {r.weight for r in spec.rewards} == {1.0}


def test_python_rewards_need_the_operator_flag():
    spec = load_spec(with_(rewards=[{"type": "python", "path": "pkg.mod:fn"}]))
    check_rewards_allowed(spec.rewards, allow_python=True)
    with pytest.raises(SpecError) as info:
        check_rewards_allowed(spec.rewards, allow_python=False)
    assert info.value.path == "rewards.0"


@pytest.mark.parametrize("method", ["rloo", "remax", "grpo", "reinforce_pp"])
def test_online_methods_need_a_reward_or_a_builtin_task(method):
    on_file = with_(method=method, data={"task": None, "train": "prompts.jsonl"})
    assert "reward" in errors_of(on_file)["rewards"]
    assert load_spec(with_(method=method)).rewards == []  # the task's rule reward applies
    rewarded = apply_overrides(on_file, {"rewards": [{"type": "contains", "text": "x"}]})
    assert load_spec(rewarded).method == method


# --- methods and data kinds ---------------------------------------------------------------------

# Written from the brief, independently of the method registry.
EXPECTED_KINDS = {
    "sft": {"sft"},
    "reward_model": {"preference"},
    "dpo": {"preference"},
    "cpl": {"preference"},
    "kto": {"unpaired", "preference"},
    "awr": {"prompt", "preference", "unpaired"},
    "gro": {"prompt", "preference", "unpaired"},
    "rloo": {"prompt"},
    "remax": {"prompt"},
    "grpo": {"prompt"},
    "reinforce_pp": {"prompt"},
    # TRL's GRPO loss types and RLOO-style variants: online.
    **{m: {"prompt"} for m in ("dapo", "bnpo", "dr_grpo", "gspo", "cispo", "sapo")},
    # TRL's DPO and CPO loss types: preference pairs.
    **{
        m: {"preference"}
        for m in (
            *("sigmoid_norm", "ipo", "hinge", "robust", "exo_pair", "discopop", "aot"),
            *("bco_pair", "sppo_hard", "nca_pair", "apo_zero", "cpo", "simpo"),
        )
    },
    # KTO's unpaired loss type: either kind, as KTO.
    "apo_zero_unpaired": {"unpaired", "preference"},
}


def test_every_method_has_its_accepted_kinds():
    assert set(METHODS) == set(EXPECTED_KINDS)
    assert {m.name: set(m.kinds) for m in METHODS.values()} == EXPECTED_KINDS


@pytest.mark.parametrize("method", sorted(EXPECTED_KINDS))
@pytest.mark.parametrize("kind", ["prompt", "preference", "unpaired", "sft"])
def test_check_dataset_kind(method, kind):
    if kind in EXPECTED_KINDS[method]:
        check_dataset_kind(method, kind)
        return
    with pytest.raises(ValueError, match=r"data\.train") as info:
        check_dataset_kind(method, kind)
    assert all(accepted in str(info.value) for accepted in EXPECTED_KINDS[method])


def test_a_task_of_the_wrong_kind_is_refused_with_fitting_tasks():
    message = errors_of(with_(method="dpo"))["data.task"]
    assert "preference" in message and "builtin:reverse-preference" in message


@pytest.mark.parametrize(
    ("method", "task", "dataset_kind", "online"),
    [
        ("grpo", "arithmetic", None, True),
        ("rloo", None, "prompt", True),
        ("dpo", "arithmetic-preference", None, False),
        ("kto", None, "unpaired", False),
        ("gro", "arithmetic", None, True),
        ("gro", "arithmetic-preference", None, False),
        ("gro", None, "prompt", True),
        ("gro", None, "preference", False),
        ("awr", None, "unpaired", False),
        ("awr", "reverse", None, True),
    ],
)
def test_is_online(method, task, dataset_kind, online):
    data = {"task": f"builtin:{task}"} if task else {"task": None, "train": "rows.jsonl"}
    rewards = [{"type": "contains", "text": "x"}]
    spec = load_spec(with_(method=method, data=data, rewards=rewards))
    assert is_online(spec, dataset_kind) is online


def test_check_train_data_wants_a_reward_for_gro_on_prompts():
    spec = load_spec(with_(data={"task": None, "train": "rows.jsonl"}))
    check_train_data(spec, "preference")  # offline: preference pairs carry the signal
    with pytest.raises(SpecError) as info:
        check_train_data(spec, "prompt")
    assert info.value.path == "rewards"
    with pytest.raises(SpecError, match=r"data\.train"):
        check_train_data(spec, "sft")


@pytest.mark.parametrize("method", ["rloo", "grpo", "gro", "awr"])
def test_group_methods_need_two_generations(method):
    errors = errors_of(with_(method=method, **{"rollout.num_generations": 1}))
    assert "at least 2" in errors["rollout.num_generations"]


def test_one_generation_is_fine_without_groups():
    assert load_spec(with_(method="remax", **{"rollout.num_generations": 1}))
    offline = {"data.task": "builtin:reverse-preference", "rollout.num_generations": 1}
    assert load_spec(with_(**offline)).method == "gro"


def test_offline_mix_is_for_online_methods():
    doc = with_(method="dpo", data={"task": "builtin:arithmetic-preference", "offline_mix": 0.5})
    assert "online" in errors_of(doc)["data.offline_mix"]


# --- overrides ----------------------------------------------------------------------------------


def test_apply_overrides_merges_dotted_and_nested_keys():
    base = {"train": {"seed": 0, "lr": 1e-5}, "method_args": {"beta": 0.1, "tau": 2}, "lora": None}
    merged = apply_overrides(
        base,
        {"train.seed": 3, "method_args": {"beta": 0.2}, "lora.r": 4, "rewards": [{"type": "x"}]},
    )
    assert merged == {
        "train": {"seed": 3, "lr": 1e-5},
        "method_args": {"beta": 0.2, "tau": 2},
        "lora": {"r": 4},
        "rewards": [{"type": "x"}],
    }
    assert base["train"]["seed"] == 0 and base["lora"] is None  # inputs untouched


def test_apply_overrides_combines_dotted_and_nested_forms_of_one_section():
    merged = apply_overrides({}, {"train": {"lr": 1.0}, "train.seed": 5})
    assert merged == {"train": {"lr": 1.0, "seed": 5}}


def test_apply_overrides_replaces_lists_whole():
    base = {"rollout": {"stop": ["\n", "."]}}
    assert apply_overrides(base, {"rollout.stop": ["!"]}) == {"rollout": {"stop": ["!"]}}


def test_apply_overrides_refuses_keys_inside_a_scalar():
    with pytest.raises(ValueError, match=r"model\.size"):
        apply_overrides({"model": "gpt2"}, {"model.size": 1})


def test_overrides_feed_validation():
    spec = load_spec(apply_overrides(BASE, {"train.seed": 3, "method_args": {"beta": 0.5}}))
    assert spec.train.seed == 3 and spec.method_args == {"beta": 0.5}


# --- resources ------------------------------------------------------------------------------------


def test_resources_default_to_one_process_of_ddp():
    spec = load_spec(BASE)
    assert spec.model_dump(mode="json")["resources"] == {
        "nproc_per_node": 1,
        "nnodes": 1,
        "strategy": "ddp",
        "cpu_offload": False,
    }
    assert spec.resources.world_size == 1


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("resources.nproc_per_node", 0),
        ("resources.nnodes", 0),
        ("resources.strategy", "zero3"),
    ],
)
def test_bad_resources_are_refused_on_their_path(key, value):
    assert key in errors_of(with_(**{key: value}))


def test_cpu_offload_needs_fsdp():
    message = errors_of(with_(**{"resources.cpu_offload": True}))["resources"]
    assert "cpu_offload" in message and "strategy: fsdp" in message
    fsdp = load_spec(with_(resources={"strategy": "fsdp", "cpu_offload": True, "nnodes": 2}))
    assert fsdp.resources.cpu_offload and fsdp.resources.world_size == 2


def test_vllm_with_several_processes_is_refused_with_the_reason():
    doc = with_(**{"rollout.backend": "vllm", "resources.nproc_per_node": 2})
    message = errors_of(doc)["rollout.backend"]
    assert "single training process" in message and "2 processes" in message
    assert load_spec(with_(**{"rollout.backend": "vllm"})).rollout.backend == "vllm"
