"""JobSpec, the whole job, and the checks that span its sections.

What a method accepts (data kinds, online or not, group comparisons, arguments) is read from
its record in gro_core.methods; nothing here keeps its own list of methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from gro_core.data.kinds import KINDS
from gro_core.methods import METHODS, get_method
from gro_core.objective.config import GROConfig
from gro_core.spec.base import Section, SpecError
from gro_core.spec.integrations import IntegrationSpec
from gro_core.spec.rewards import RewardSpec
from gro_core.spec.sections import (
    CheckpointSpec,
    DataSpec,
    EvalSpec,
    LoraSpec,
    ModelOptionsSpec,
    ResourcesSpec,
    RolloutSpec,
    TrainSpec,
)
from gro_core.tasks import TASKS, get_task

MethodName = Literal[tuple(METHODS)]  # type: ignore[valid-type]


class JobSpec(Section):
    """One training job (docs/jobspec.md). `model_dump(mode="json")` is its complete stored form."""

    name: str | None = None
    """Free text, for listings."""
    model: str = Field(min_length=1)
    """builtin:<name>, a Hugging Face model id, a local directory, or (API) a job/checkpoint id."""
    reference_model: str | None = Field(None, min_length=1)
    """The frozen reference; null means a frozen copy of the starting policy."""
    method: MethodName
    """The training method (GET /v1/methods lists them with their arguments)."""
    method_args: dict[str, Any] = Field(default_factory=dict)
    """The method's arguments, or overrides of any field of its preset, e.g. {beta: 0.1}."""
    data: DataSpec
    """Where the examples come from."""
    rewards: list[RewardSpec] = Field(default_factory=list)
    """Online methods: the reward is the weighted sum of these."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    """How online methods sample completions."""
    train: TrainSpec = Field(default_factory=TrainSpec)
    """The optimisation loop."""
    model_options: ModelOptionsSpec = Field(default_factory=ModelOptionsSpec)
    """Dtype, attention kernel, gradient checkpointing and dropout of the model."""
    lora: LoraSpec | None = None
    """null trains the full weights."""
    eval: EvalSpec = Field(default_factory=EvalSpec)
    """Periodic evaluation."""
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    """Periodic checkpoints."""
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    """Training processes, machines and the sharding strategy (ddp or fsdp)."""
    integrations: list[IntegrationSpec] = Field(default_factory=list)
    """Experiment trackers the run also writes to (tensorboard, wandb, mlflow), each at most
    once; credentials come from the trainer's environment, never from here."""

    @field_validator("integrations")
    @classmethod
    def _one_tracker_each(cls, trackers: list[Any]) -> list[Any]:
        types = [t.type for t in trackers]
        repeated = sorted({t for t in types if types.count(t) > 1})
        if repeated:
            raise ValueError(f"each tracker may be listed once; repeated: {', '.join(repeated)}")
        return trackers

    def objective_config(self) -> GROConfig | None:
        """The method's GROConfig with method_args applied; None for sft and reward_model."""
        return get_method(self.method).config(**self.method_args)

    @model_validator(mode="after")
    def _check_combinations(self) -> JobSpec:
        # Each check yields (location, message, offending value); all are reported at once, each
        # on its own key path, which a plain ValueError here could not do.
        problems = [
            *_method_args_problems(self),
            *_data_problems(self),
            *_rollout_problems(self),
            *_reward_problems(self),
            *_resources_problems(self),
        ]
        if problems:
            details = [
                InitErrorDetails(type=PydanticCustomError("job_spec", msg), loc=loc, input=value)
                for loc, msg, value in problems
            ]
            raise ValidationError.from_exception_data(type(self).__name__, details)
        return self


_Problem = tuple[tuple[str, ...], str, Any]


def _kind_problem(method: str, kind: str) -> str | None:
    """Why `method` cannot train on `kind` rows, or None when it can."""
    if method not in METHODS:
        return f"unknown method {method!r}; one of: {', '.join(METHODS)}"
    if kind not in KINDS:
        return f"unknown dataset kind {kind!r}; one of: {', '.join(KINDS)}"
    accepted = METHODS[method].kinds
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
    """Whether the job samples rollouts: always for methods that train only on prompts, never
    for those that never do; for the others (awr, gro) when data.task gives prompts or
    `dataset_kind` (the kind of data.train, once read) is prompt."""
    method = METHODS[spec.method]
    if not method.online:
        return False
    if not method.offline:
        return True
    return "prompt" in (_task_kind(spec), dataset_kind)


def _method_args_problems(spec: JobSpec) -> Iterator[_Problem]:
    """method_args must be keywords the method's preset accepts, with values it accepts."""
    args = spec.method_args
    if not args:
        return  # the preset's defaults are valid by construction
    if METHODS[spec.method].preset is None:
        unknown = ", ".join(sorted(args))
        yield ("method_args",), f"{spec.method} takes no method_args; remove {unknown}", args
        return
    try:
        spec.objective_config()
    except (ValueError, TypeError) as exc:
        yield ("method_args",), str(exc), args


def _data_problems(spec: JobSpec) -> Iterator[_Problem]:
    method = METHODS[spec.method]
    task_kind = _task_kind(spec)
    problem = _kind_problem(spec.method, task_kind) if task_kind else None
    if problem:
        fitting = [f"builtin:{t.name}" for t in TASKS.values() if t.kind in method.kinds]
        yield ("data", "task"), f"{problem}; fitting tasks: {', '.join(fitting)}", spec.data.task
    if spec.data.offline_mix > 0 and not method.online:
        message = f"{spec.method} trains offline only; offline_mix is for online methods: remove it"
        yield ("data", "offline_mix"), message, spec.data.offline_mix


def _compares_in_group(spec: JobSpec) -> bool:
    try:
        cfg = spec.objective_config()
    except (ValueError, TypeError):
        return False  # reported by _method_args_problems
    return cfg is not None and cfg.compares_in_group


def _rollout_problems(spec: JobSpec) -> Iterator[_Problem]:
    # Offline tasks never sample; with a dataset path the kind is unknown yet, so assume rollouts.
    may_sample = METHODS[spec.method].online and _task_kind(spec) in (None, "prompt")
    n = spec.rollout.num_generations
    if may_sample and n < 2 and _compares_in_group(spec):
        message = (
            f"{spec.method} compares the completions of one prompt, so a group of one carries "
            f"no signal: num_generations must be at least 2, got {n}"
        )
        yield ("rollout", "num_generations"), message, n
    r = spec.rollout
    if r.overlong_buffer >= r.max_new_tokens:
        message = (
            f"overlong_buffer ({r.overlong_buffer}) must be below max_new_tokens "
            f"({r.max_new_tokens}): it is the stretch before the limit that is penalised"
        )
        yield ("rollout", "overlong_buffer"), message, r.overlong_buffer
    if spec.rollout.dynamic_sampling and not METHODS[spec.method].online:
        message = f"{spec.method} trains offline only; dynamic_sampling is for online methods"
        yield ("rollout", "dynamic_sampling"), message, True
    elif spec.rollout.dynamic_sampling and n < 2:
        message = (
            "dynamic_sampling drops groups whose rewards are all equal, which a group of one "
            f"always is: num_generations must be at least 2, got {n}"
        )
        yield ("rollout", "dynamic_sampling"), message, True


def _resources_problems(spec: JobSpec) -> Iterator[_Problem]:
    world = spec.resources.world_size
    if world > 1 and spec.rollout.backend == "vllm" and METHODS[spec.method].online:
        message = (
            f"the vllm backend runs one engine in a single training process, and resources ask "
            f"for {world} processes (nproc_per_node × nnodes); use rollout.backend: hf, whose "
            "ranks each sample their share of prompts, or run vllm with one process"
        )
        yield ("rollout", "backend"), message, "vllm"


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
    problem = _missing_rewards(spec, not METHODS[spec.method].offline)
    if problem:
        yield ("rewards",), problem, spec.rewards


def check_train_data(spec: JobSpec, dataset_kind: str) -> None:
    """Refuse (SpecError) data.train of a kind the method cannot use, or an online job on it
    without rewards. Call it once the dataset is read and its kind known."""
    check_dataset_kind(spec.method, dataset_kind)
    problem = _missing_rewards(spec, is_online(spec, dataset_kind))
    if problem:
        raise SpecError("rewards", problem)


def check_rewards_allowed(rewards: Sequence[RewardSpec], allow_python: bool) -> None:
    """Refuse (SpecError) python rewards unless the operator enabled them: they run user code.
    `rewards` is a job's or an evaluation's list."""
    for i, reward in enumerate(rewards):
        if reward.type == "python" and not allow_python:
            raise SpecError(
                f"rewards.{i}",
                "python rewards run arbitrary code and are disabled here; use a built-in reward "
                "type or ask the operator to enable them",
            )
