"""JobSpec: the one document that describes a job, for the CLI, the REST API and the workers.

The keys are JOBSPEC.md's contract. Unknown keys are errors with their path (`train.lrr`), every
default is written out by `spec.model_dump(mode="json")`, and bad values and bad combinations are
refused here, before a model is loaded:

    spec = load_spec("job.yaml")                       # or YAML text, or a dict
    spec = load_spec(apply_overrides(doc, {"train.seed": 3}))
    except ValidationError as exc: format_validation_error(exc)  # [{"path", "message"}]

What needs the dataset itself (its kind) is checked once it is read: `check_train_data`.
What depends on the operator (python rewards) is checked by `check_rewards_allowed`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from gro_core.tasks import KINDS, TASKS, get_task

__all__ = [
    "ACCEPTED_KINDS",
    "GROUP_METHODS",
    "METHODS",
    "OFFLINE_METHODS",
    "ONLINE_METHODS",
    "REWARD_TYPES",
    "CheckpointSpec",
    "DataSpec",
    "EvalSpec",
    "JobSpec",
    "LoraSpec",
    "RewardSpec",
    "RolloutSpec",
    "SpecError",
    "TrainSpec",
    "apply_overrides",
    "check_dataset_kind",
    "check_rewards_allowed",
    "check_train_data",
    "format_validation_error",
    "is_online",
    "load_spec",
]

# ---------------------------------------------------------------------------------------------
# Methods and the data they train on
# ---------------------------------------------------------------------------------------------

Method = Literal[
    "sft",
    "reward_model",
    "dpo",
    "kto",
    "cpl",
    "awr",
    "rloo",
    "remax",
    "grpo",
    "reinforce_pp",
    "gro",
]
METHODS: tuple[str, ...] = get_args(Method)

# awr and gro are in both sets: online on prompts (rollouts), offline on preference/unpaired data.
ONLINE_METHODS = frozenset({"rloo", "remax", "grpo", "reinforce_pp", "awr", "gro"})
"""Methods that can train on rollouts of prompts scored by rewards."""
OFFLINE_METHODS = frozenset({"sft", "reward_model", "dpo", "kto", "cpl", "awr", "gro"})
"""Methods that can train on a fixed dataset of completions."""
GROUP_METHODS = frozenset({"rloo", "grpo", "gro", "awr"})
"""Online methods whose advantage compares completions of one prompt: a group of one gets A = 0."""

ACCEPTED_KINDS: dict[str, set[str]] = {
    "sft": {"sft"},
    "reward_model": {"preference"},
    "dpo": {"preference"},
    "cpl": {"preference"},
    # A preference pair splits into one desirable and one undesirable example.
    "kto": {"unpaired", "preference"},
    "awr": {"prompt", "preference", "unpaired"},
    "gro": {"prompt", "preference", "unpaired"},
    "rloo": {"prompt"},
    "remax": {"prompt"},
    "grpo": {"prompt"},
    "reinforce_pp": {"prompt"},
}
# Methods that take no objective parameters (they are not GRO presets).
_NO_ARGS_METHODS = frozenset({"sft", "reward_model"})


class SpecError(ValueError):
    """A job that cannot run, found outside pydantic validation; `path` is the dotted key."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def _kind_problem(method: str, kind: str) -> str | None:
    """Why `method` cannot train on `kind` rows, or None when it can."""
    if method not in ACCEPTED_KINDS:
        return f"unknown method {method!r}; one of: {', '.join(METHODS)}"
    if kind not in KINDS:
        return f"unknown dataset kind {kind!r}; one of: {', '.join(KINDS)}"
    accepted = ACCEPTED_KINDS[method]
    if kind not in accepted:
        return f"{method} trains on {' or '.join(sorted(accepted))} data, not {kind} data"
    return None


def check_dataset_kind(method: str, kind: str) -> None:
    """Refuse (SpecError on `data.train`, a ValueError) a dataset kind the method cannot use."""
    problem = _kind_problem(method, kind)
    if problem:
        raise SpecError("data.train", problem)


def _task_kind(spec: JobSpec) -> str | None:
    return get_task(spec.data.task).kind if spec.data.task else None


def is_online(spec: JobSpec, dataset_kind: str | None = None) -> bool:
    """Whether the job samples rollouts: always for rloo/remax/grpo/reinforce_pp, never for
    sft/reward_model/dpo/kto/cpl; awr and gro when data.task gives prompts or `dataset_kind`
    (the kind of data.train, once read) is prompt."""
    if spec.method not in ONLINE_METHODS:
        return False
    if spec.method not in OFFLINE_METHODS:
        return True
    return "prompt" in (_task_kind(spec), dataset_kind)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


class _Section(BaseModel):
    """Base of every part of the spec: unknown keys and NaN/inf are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DataSpec(_Section):
    """Where examples come from: a dataset (`train`), a built-in generator (`task`), or both."""

    train: str | None = Field(None, min_length=1)
    """A path (CLI) or a dataset id (API)."""
    eval: str | None = Field(None, min_length=1)
    """Optional held-out set; with a task and no eval set, the task's eval split serves."""
    task: str | None = None
    """`builtin:<task>` (gro_core.tasks): generated rows plus the task's rule reward."""
    offline_mix: float = Field(0.0, ge=0.0, lt=1.0)
    """Online methods: share of each batch drawn from offline data (data.train)."""
    task_size: int | None = Field(None, ge=1)
    """Rows generated from data.task for training; default: steps × batch_size (one pass)."""

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str | None) -> str | None:
        if task is not None and not task.startswith("builtin:"):
            raise ValueError(f"write builtin:<task>, one of: {', '.join(sorted(TASKS))}")
        if task is not None:
            get_task(task)  # ValueError naming the known tasks
        return task

    @model_validator(mode="after")
    def _has_source(self) -> DataSpec:
        if self.train is None and self.task is None:
            raise ValueError("set data.train (a dataset) or data.task (builtin:<task>)")
        return self


class RolloutSpec(_Section):
    """How online methods sample completions."""

    backend: Literal["hf", "vllm"] = "hf"
    """hf: transformers' generate in the training process; vllm: a vLLM engine."""
    num_generations: int = Field(8, ge=1)
    """Completions sampled per prompt (the group size G)."""
    max_new_tokens: int = Field(32, ge=1)
    temperature: float = Field(1.0, gt=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)
    """0 disables top-k (passed explicitly, so transformers' own default of 50 never applies)."""
    stop: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """Strings that end a completion, besides the tokenizer's eos."""


class TrainSpec(_Section):
    """The optimisation loop."""

    steps: int = Field(200, ge=1)
    """Optimizer steps."""
    batch_size: int = Field(8, ge=1)
    """Examples per step; for online methods, prompts (each sampled num_generations times)."""
    lr: float = Field(1e-5, gt=0.0)
    warmup_steps: int = Field(10, ge=0)
    """Linear warm-up of the learning rate from 0."""
    grad_accum: int = Field(1, ge=1)
    """Micro-batches accumulated per optimizer step."""
    num_iterations: int = Field(1, ge=1)
    """Updates per batch of rollouts (GRPO's μ); > 1 makes old_logprobs differ from logprobs."""
    max_length: int = Field(256, ge=2)
    """Longest prompt + completion in tokens; longer examples are truncated."""
    seed: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    """Gradient clipping norm; null disables clipping."""
    epochs: int | None = Field(None, ge=1)
    """Offline data: when set, the run lasts this many passes over data.train instead of steps."""


class LoraSpec(_Section):
    """Train low-rank adapters instead of the full weights (peft's LoRA)."""

    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0.0)
    """The adapter's output is scaled by alpha / r."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # Same default as gro_core.models.loading.DEFAULT_LORA_TARGETS (not imported: it pulls torch).
    target_modules: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1
    )
    """Module names to adapt; a single name may be written as a string."""

    @field_validator("target_modules", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class EvalSpec(_Section):
    """Periodic evaluation on data.eval (or the task's eval split)."""

    every: int = Field(20, ge=0)
    """Steps between evaluations; 0 disables them."""
    num_prompts: int = Field(64, ge=1)


class CheckpointSpec(_Section):
    """Periodic `save_pretrained` checkpoints."""

    every: int = Field(50, ge=0)
    """Steps between checkpoints; 0 saves only at the end."""
    keep: int = Field(2, ge=1)
    """Most recent checkpoints kept on disk."""


# ---------------------------------------------------------------------------------------------
# Rewards: a list of weighted reward functions, one variant per `type`
# ---------------------------------------------------------------------------------------------

Weight = Annotated[float, Field(description="multiplier of this reward in the weighted sum")]
_PYTHON_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def _compiled(pattern: str) -> str:
    """`pattern` if it is a valid regular expression; the compile error otherwise."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from exc
    return pattern


class ExactMatchReward(_Section):
    """1.0 when the completion's answer (first non-blank line, stripped) equals the row's `field`;
    not applicable (None) where that field is null."""

    type: Literal["exact_match"]
    field: str = Field(min_length=1)
    weight: Weight = 1.0


class NumericMatchReward(_Section):
    """1.0 when the completion's answer is a number within `tolerance` of the row's `field`;
    not applicable (None) where that field is null."""

    type: Literal["numeric_match"]
    field: str = Field(min_length=1)
    tolerance: float = Field(1e-6, ge=0.0)
    weight: Weight = 1.0


class RegexReward(_Section):
    """1.0 when `pattern` is found in the completion (re.search); with `field`, its first group
    (or the whole match when it has none), stripped, must also equal the row's `field`."""

    type: Literal["regex"]
    pattern: str = Field(min_length=1)
    field: str | None = Field(None, min_length=1)
    weight: Weight = 1.0

    _check_pattern = field_validator("pattern")(_compiled)


class FormatReward(_Section):
    """1.0 when the whole completion, stripped, matches `pattern` (re.fullmatch)."""

    type: Literal["format"]
    pattern: str = Field(min_length=1)
    weight: Weight = 1.0

    _check_pattern = field_validator("pattern")(_compiled)


class ContainsReward(_Section):
    """1.0 when the completion contains `text`."""

    type: Literal["contains"]
    text: str = Field(min_length=1)
    weight: Weight = 1.0


class LengthPenaltyReward(_Section):
    """−scale · |len(completion) − target_chars| / target_chars: 0 at the target length."""

    type: Literal["length_penalty"]
    target_chars: int = Field(ge=1)
    scale: float = Field(1.0, gt=0.0)
    weight: Weight = 1.0


class RewardModelReward(_Section):
    """The score of a reward model (e.g. one trained with method: reward_model) on the row's
    prompt and the completion, encoded as that method encodes its training pairs."""

    type: Literal["reward_model"]
    model: str = Field(min_length=1)
    batch_size: int = Field(8, ge=1)
    weight: Weight = 1.0


class PythonReward(_Section):
    """A user function `package.module:function(completions, rows) -> list[float | None]`
    (None: not applicable to that completion).

    The spec accepts it; whether the operator allows running it is `check_rewards_allowed`'s call.
    """

    type: Literal["python"]
    path: str = Field(pattern=_PYTHON_PATH.pattern)
    weight: Weight = 1.0


RewardSpec = Annotated[
    ExactMatchReward
    | NumericMatchReward
    | RegexReward
    | FormatReward
    | ContainsReward
    | LengthPenaltyReward
    | RewardModelReward
    | PythonReward,
    Field(discriminator="type"),
]


def _reward_type(variant: type[BaseModel]) -> str:
    """The `type` tag of one reward variant, read off its Literal annotation."""
    return get_args(variant.model_fields["type"].annotation)[0]


REWARD_TYPES: tuple[str, ...] = tuple(_reward_type(v) for v in get_args(get_args(RewardSpec)[0]))


# ---------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------


class JobSpec(_Section):
    """One training job (JOBSPEC.md). `model_dump(mode="json")` is its complete stored form."""

    name: str | None = None
    """Free text, for listings."""
    model: str = Field(min_length=1)
    """builtin:<name>, a Hugging Face model id, or a local directory."""
    reference_model: str | None = Field(None, min_length=1)
    """The frozen reference; null means a frozen copy of the starting policy."""
    method: Method
    method_args: dict[str, Any] = Field(default_factory=dict)
    """Keyword overrides of the method's preset (gro_core.presets), e.g. {beta: 0.1}."""
    data: DataSpec
    rewards: list[RewardSpec] = Field(default_factory=list)
    """Online methods: the reward is the weighted sum of these."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    lora: LoraSpec | None = None
    """null trains the full weights."""
    eval: EvalSpec = Field(default_factory=EvalSpec)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)

    @model_validator(mode="after")
    def _check_combinations(self) -> JobSpec:
        # Each check yields (location, message, offending value); all are reported at once, each
        # on its own key path, which a plain ValueError here could not do.
        problems = [
            *_method_args_problems(self),
            *_data_problems(self),
            *_rollout_problems(self),
            *_reward_problems(self),
        ]
        if problems:
            details = [
                InitErrorDetails(type=PydanticCustomError("job_spec", msg), loc=loc, input=value)
                for loc, msg, value in problems
            ]
            raise ValidationError.from_exception_data(type(self).__name__, details)
        return self


_Problem = tuple[tuple[str, ...], str, Any]


def _method_args_problems(spec: JobSpec) -> Iterator[_Problem]:
    """method_args must be keywords the method's preset accepts, with values it accepts."""
    args = spec.method_args
    if not args:
        return  # the preset's defaults are valid by construction (and this avoids importing torch)
    if spec.method in _NO_ARGS_METHODS:
        unknown = ", ".join(sorted(args))
        yield ("method_args",), f"{spec.method} takes no method_args; remove {unknown}", args
        return
    from gro_core.presets import get_preset  # lazily: presets import torch

    try:
        get_preset(spec.method, **args)
    except (ValueError, TypeError) as exc:
        yield ("method_args",), str(exc), args


def _data_problems(spec: JobSpec) -> Iterator[_Problem]:
    task_kind = _task_kind(spec)
    problem = _kind_problem(spec.method, task_kind) if task_kind else None
    if problem:
        fitting = [
            f"builtin:{t.name}" for t in TASKS.values() if t.kind in ACCEPTED_KINDS[spec.method]
        ]
        yield ("data", "task"), f"{problem}; fitting tasks: {', '.join(fitting)}", spec.data.task
    if spec.data.offline_mix > 0 and spec.method not in ONLINE_METHODS:
        message = f"{spec.method} trains offline only; offline_mix is for online methods: remove it"
        yield ("data", "offline_mix"), message, spec.data.offline_mix


def _rollout_problems(spec: JobSpec) -> Iterator[_Problem]:
    # Offline tasks never sample; with a dataset path the kind is unknown yet, so assume rollouts.
    may_sample = spec.method in ONLINE_METHODS and _task_kind(spec) in (None, "prompt")
    n = spec.rollout.num_generations
    if spec.method in GROUP_METHODS and may_sample and n < 2:
        message = (
            f"{spec.method} compares the completions of one prompt, so a group of one carries "
            f"no signal: num_generations must be at least 2, got {n}"
        )
        yield ("rollout", "num_generations"), message, n


def _missing_rewards(spec: JobSpec, online: bool) -> str | None:
    """Why an online job has nothing to score rollouts with, or None when it has."""
    if not online or spec.rewards or spec.data.task is not None:
        return None
    return (
        f"{spec.method} trains on rollouts, which need a reward: list at least one in rewards, "
        "or set data.task to a builtin:<task> (its rule reward is the default)"
    )


def _reward_problems(spec: JobSpec) -> Iterator[_Problem]:
    # awr/gro on a dataset path may be offline; check_train_data decides once the kind is known.
    problem = _missing_rewards(spec, spec.method not in OFFLINE_METHODS)
    if problem:
        yield ("rewards",), problem, spec.rewards


def check_train_data(spec: JobSpec, dataset_kind: str) -> None:
    """Refuse (SpecError) data.train of a kind the method cannot use, or an online job on it
    without rewards. Call it once the dataset is read and its kind known."""
    check_dataset_kind(spec.method, dataset_kind)
    problem = _missing_rewards(spec, is_online(spec, dataset_kind))
    if problem:
        raise SpecError("rewards", problem)


def check_rewards_allowed(spec: JobSpec, allow_python: bool) -> None:
    """Refuse (SpecError) python rewards unless the operator enabled them: they run user code."""
    for i, reward in enumerate(spec.rewards):
        if reward.type == "python" and not allow_python:
            raise SpecError(
                f"rewards.{i}",
                "python rewards run arbitrary code and are disabled here; use a built-in reward "
                "type or ask the operator to enable them",
            )


# ---------------------------------------------------------------------------------------------
# Loading, overriding, reporting
# ---------------------------------------------------------------------------------------------

_SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _read_text(source: str | Path) -> str:
    """The YAML text of `source`: a file's contents when it names one, else `source` itself."""
    if isinstance(source, Path):
        return source.read_text()
    looks_like_path = "\n" not in source and (
        source.endswith(_SPEC_SUFFIXES) or Path(source).is_file()
    )
    return Path(source).read_text() if looks_like_path else source


def load_spec(source: str | Path | Mapping[str, Any]) -> JobSpec:
    """A validated JobSpec from a YAML/JSON file, YAML text, or a dict (the API's JSON body).

    Raises pydantic's ValidationError for bad keys and values (`format_validation_error` turns
    it into paths and messages), SpecError for text that is not YAML, OSError for a missing file.
    """
    if isinstance(source, Mapping):
        return JobSpec.model_validate(dict(source))
    text = _read_text(source)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError("", f"not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    return JobSpec.model_validate(document)


def _expand_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """{"train.seed": 3} -> {"train": {"seed": 3}}, recursively, merging keys that meet."""
    expanded: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            value = _expand_dotted(value)
        *parents, leaf = str(key).split(".")
        for parent in reversed(parents):
            value = {leaf: value}
            leaf = parent
        _merge_into(expanded, {leaf: value}, "")
    return expanded


def _merge_into(base: dict[str, Any], update: Mapping[str, Any], path: str) -> None:
    """Deep-merge `update` into `base` (a private copy): mappings merge, anything else replaces."""
    for key, value in update.items():
        where = f"{path}.{key}" if path else key
        current = base.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _merge_into(current, value, where)
        elif isinstance(value, Mapping) and current is not None:
            inner = f"{where}.{next(iter(value), '')}"
            raise ValueError(f"cannot set {inner}: {where} is {current!r}, not a mapping")
        else:
            base[key] = copy.deepcopy(value)


def apply_overrides(spec_dict: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`spec_dict` with `overrides` deep-merged in; neither input is modified.

    Keys may be dotted paths: {"train.seed": 3, "method_args": {"beta": 0.2}} sets train.seed
    and method_args.beta and keeps every other key. Lists and scalars are replaced whole.
    """
    merged = copy.deepcopy(dict(spec_dict))
    _merge_into(merged, _expand_dotted(overrides), "")
    return merged


_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "": JobSpec,
    "data": DataSpec,
    "rollout": RolloutSpec,
    "train": TrainSpec,
    "lora": LoraSpec,
    "eval": EvalSpec,
    "checkpoint": CheckpointSpec,
}
_REWARD_MODELS: dict[str, type[BaseModel]] = {
    _reward_type(v): v for v in get_args(get_args(RewardSpec)[0])
}


def _path_parts(loc: tuple[int | str, ...]) -> list[str]:
    """Location parts without the tags a discriminated union inserts (rewards.0.regex.pattern)."""
    return [
        str(part)
        for i, part in enumerate(loc)
        if not (i > 0 and isinstance(loc[i - 1], int) and part in _REWARD_MODELS)
    ]


def _unknown_key_message(loc: tuple[int | str, ...]) -> str:
    """ "unknown key 'lrr'; did you mean 'lr'?", or the keys allowed where it was found."""
    key = str(loc[-1])
    parent = loc[-2] if len(loc) > 1 else ""
    model = _REWARD_MODELS.get(str(parent)) or _SECTION_MODELS.get(".".join(_path_parts(loc[:-1])))
    if model is None:
        return f"unknown key {key!r}"
    allowed = list(model.model_fields)
    close = get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
    return f"unknown key {key!r}; {hint}"


def _message(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        return _unknown_key_message(error["loc"])
    if kind == "model_type" and not error["loc"]:
        return "a job spec is a mapping of keys: " + ", ".join(JobSpec.model_fields)
    if kind == "union_tag_invalid":
        return f"unknown reward type {ctx['tag']!r}; one of: {', '.join(REWARD_TYPES)}"
    if kind == "union_tag_not_found":
        return f"missing reward type; one of: {', '.join(REWARD_TYPES)}"
    return str(error["msg"]).removeprefix("Value error, ")


def format_validation_error(exc: ValidationError | SpecError) -> list[dict[str, str]]:
    """[{"path": "train.lr", "message": ...}], one per problem; path "" is the whole document."""
    if isinstance(exc, SpecError):
        return [{"path": exc.path, "message": exc.message}]
    report = []
    for error in exc.errors(include_url=False):
        parts = _path_parts(error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            parts.append("type")  # the location of a bad tag is the item; the culprit its type
        report.append({"path": ".".join(parts), "message": _message(error)})
    return report
