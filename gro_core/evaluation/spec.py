"""EvaluationSpec: one evaluation of a model on held-out prompts, as the worker runs it.

    spec = EvaluationSpec.model_validate({"model": "runs/a", "data": {"task": "builtin:reverse"}})
    result = run_evaluation(spec, "evals/a")      # gro_core.evaluation.job

Not a job spec: nothing trains, so there is no method, optimizer or schedule to fill in. The
keys are those of a training run's evaluation (held-out data, rewards, rollout settings), the
sections as strict as JobSpec's (unknown keys, NaN and bad values refused with their key path).
Nothing here imports torch, so the API validates an evaluation without it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from gro_core.spec.base import MAX_SEED, Section
from gro_core.spec.rewards import RewardSpec
from gro_core.spec.sections import TrainSpec
from gro_core.tasks import TASKS, get_task

__all__ = ["EvaluationData", "EvaluationSpec"]


class EvaluationData(Section):
    """The held-out prompts: a prompt dataset (`eval`) or a built-in task's eval split (`task`)."""

    eval: str | None = Field(None, min_length=1)
    """A dataset of prompt rows with the fields the rewards read: a path (CLI, worker) or a
    dataset id (API)."""
    task: str | None = None
    """`builtin:<task>` of prompt rows: its eval split, scored by its rule reward by default."""

    @field_validator("task")
    @classmethod
    def _prompt_task(cls, task: str | None) -> str | None:
        if task is None:
            return task
        prompts = sorted(f"builtin:{t.name}" for t in TASKS.values() if t.kind == "prompt")
        if not task.startswith("builtin:"):
            raise ValueError(f"write builtin:<task>, one of: {', '.join(prompts)}")
        info = get_task(task)  # ValueError naming the known tasks
        if info.kind != "prompt":
            raise ValueError(
                f"an evaluation samples completions of prompts: {task} holds {info.kind} rows; "
                f"prompt tasks: {', '.join(prompts)}"
            )
        return task

    @model_validator(mode="after")
    def _one_source(self) -> EvaluationData:
        if (self.eval is None) == (self.task is None):
            raise ValueError("set exactly one of data.eval (a prompt dataset) or data.task")
        return self


class EvaluationSpec(Section):
    """A model's reward, pass@k, KL to its reference and diversity on held-out prompts (the
    metrics of gro_core.evaluation.policy). `model_dump(mode="json")` is its stored form."""

    name: str | None = None
    """Free text, for listings."""
    model: str = Field(min_length=1)
    """builtin:<name>, a Hugging Face model id or a model directory; or a run's checkpoint
    directory (`.../checkpoints/step-N`) or run directory (its latest checkpoint), loaded as
    the run's spec says (LoRA adapters on its base model)."""
    reference_model: str | None = Field(None, min_length=1)
    """The model KL is measured against; null: for a run's checkpoint its reference model (or
    its starting model), for any other model the model itself (KL 0)."""
    data: EvaluationData
    """Where the held-out prompts come from."""
    rewards: list[RewardSpec] = Field(default_factory=list)
    """The reward is the weighted sum of these; empty: the task's rule reward."""
    num_prompts: int = Field(64, ge=1)
    """Held-out prompts evaluated: the first ones of data.eval, or generated from data.task."""
    num_generations: int = Field(4, ge=1)
    """Completions sampled per prompt besides the greedy one: the n of pass@k (k in {1, n})."""
    max_new_tokens: int = Field(32, ge=1)
    temperature: float = Field(1.0, gt=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """Strings that end a completion, besides the tokenizer's eos."""
    # A training run's default: its periodic evaluation cuts prompts the same way.
    max_length: int = Field(TrainSpec.model_fields["max_length"].default, ge=2)
    """Longest prompt + completion in tokens: a prompt keeps its last max_length −
    max_new_tokens tokens."""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Seeds the sampled completions and the prompts generated from data.task."""
    with_reference: bool = True
    """Load the reference model and measure KL to it (eval/kl_ref); false skips both."""

    @model_validator(mode="after")
    def _scored(self) -> EvaluationSpec:
        # On its own key path, as JobSpec reports its combinations (a ValueError here would
        # point at the whole document).
        if self.rewards or self.data.task is not None:
            return self
        message = "a dataset needs rewards to score completions (e.g. exact_match on a field)"
        details = [
            InitErrorDetails(
                type=PydanticCustomError("evaluation_spec", message),
                loc=("rewards",),
                input=self.rewards,
            )
        ]
        raise ValidationError.from_exception_data(type(self).__name__, details)
