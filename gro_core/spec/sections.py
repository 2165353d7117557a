"""The sections of a job spec besides its rewards: data, rollout, train, model_options, lora,
eval, checkpoint, resources."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from gro_core.spec.base import MAX_SEED, Section
from gro_core.spec.hub import DataSource, as_hub
from gro_core.tasks import TASKS, get_task


class DataSpec(Section):
    """Where examples come from: a dataset (`train`), a built-in generator (`task`), or both."""

    train: DataSource | None = None
    """A path (CLI), a dataset id (API), or a Hugging Face dataset (CLI): `hf:org/name`, or a
    mapping `{hub: org/name, config, split, revision, columns}` (see "Hugging Face datasets")."""
    eval: DataSource | None = None
    """Optional held-out set, in the same forms as `train` (e.g. `{hub: org/name, split: test}`);
    with a task and no eval set, the task's eval split serves."""
    task: str | None = None
    """`builtin:<task>` (gro_core.tasks): generated rows plus the task's rule reward."""
    offline_mix: float = Field(0.0, ge=0.0, lt=1.0)
    """Online methods: share of each batch drawn from offline data (data.train)."""
    task_size: int | None = Field(None, ge=1)
    """Rows generated from data.task for training; default: steps × batch_size (one pass)."""

    @field_validator("train", "eval", mode="before")
    @classmethod
    def _hub_shorthand(cls, value: Any) -> Any:
        return as_hub(value)

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


class RolloutSpec(Section):
    """How online methods sample completions."""

    backend: Literal["hf", "vllm"] = "hf"
    """hf: transformers' generate in the training process; vllm: a vLLM engine."""
    num_generations: int = Field(8, ge=1)
    """Completions sampled per prompt (the group size G)."""
    max_new_tokens: int = Field(32, ge=1)
    """Longest completion, in tokens; a completion that reaches it is cut there."""
    temperature: float = Field(1.0, gt=0.0)
    """Sampling temperature (1 samples from the policy itself)."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling: sample from the most likely tokens holding this much probability."""
    top_k: int = Field(0, ge=0)
    """0 disables top-k (passed explicitly, so transformers' own default of 50 never applies)."""
    stop: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """Strings that end a completion, besides the tokenizer's eos."""
    dynamic_sampling: bool = False
    """DAPO's dynamic sampling: drop groups whose rewards are all equal (they carry no signal)
    and sample more prompts until the batch is full again."""
    max_resample_rounds: int = Field(3, ge=1)
    """dynamic_sampling: most extra rounds of rollouts per step, each for as many prompts as
    the batch lacks; a batch still short then is filled with the flat groups dropped."""
    overlong_buffer: int = Field(0, ge=0)
    """DAPO's soft overlong punishment: over the last `overlong_buffer` tokens before
    max_new_tokens the reward falls linearly, reaching −overlong_penalty at max_new_tokens
    (0: off)."""
    overlong_penalty: float = Field(1.0, ge=0.0)
    """The reward lost by a completion of max_new_tokens tokens with overlong_buffer > 0."""
    mask_truncated: bool = False
    """DAPO's overlong filtering (TRL's mask_truncated_completions): completions cut at
    max_new_tokens still count in their group's baseline, but not in the loss."""


class TrainSpec(Section):
    """The optimisation loop."""

    steps: int = Field(200, ge=1)
    """Optimizer steps."""
    batch_size: int = Field(8, ge=1)
    """Examples per step; for online methods, prompts (each sampled num_generations times)."""
    lr: float = Field(1e-5, gt=0.0)
    """Peak learning rate of AdamW, reached after warm-up, then decayed to 0 on a cosine."""
    warmup_steps: int = Field(10, ge=0)
    """Linear warm-up of the learning rate from 0."""
    grad_accum: int = Field(1, ge=1)
    """Micro-batches accumulated per optimizer step."""
    num_iterations: int = Field(1, ge=1)
    """Updates per batch of rollouts (GRPO's μ); > 1 makes old_logprobs differ from logprobs."""
    max_length: int = Field(256, ge=2)
    """Longest prompt + completion in tokens; longer examples are truncated."""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Seeds Python, NumPy and torch, the batch order, each step's sampling and task rows."""
    weight_decay: float = Field(0.0, ge=0.0)
    """AdamW's decoupled weight decay."""
    max_grad_norm: float | None = Field(1.0, gt=0.0)
    """Gradient clipping norm; null disables clipping."""
    epochs: int | None = Field(None, ge=1)
    """Offline data: when set, the run lasts this many passes over data.train instead of steps."""


class ModelOptionsSpec(Section):
    """How the model (and its reference copy) is loaded and run."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Weights' dtype; auto: bfloat16 on a GPU that supports it, else float32. float16 trains
    without a gradient scaler, so keep it for inference-style jobs on older GPUs."""
    attention: Literal["auto", "sdpa", "eager", "flash_attention_2", "flex_attention"] = "auto"
    """Attention kernel; auto: transformers' choice for the architecture (sdpa where it can,
    eager for e.g. Gemma 2). flash_attention_2 needs the flash-attn package."""
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass: less memory, more time."""
    dropout: bool = False
    """Keep the model's own dropout in training; off by default (as TRL), so that a policy
    scores like its reference before the first update. LoRA's dropout is lora.dropout."""


class LoraSpec(Section):
    """Train low-rank adapters instead of the full weights (peft's LoRA)."""

    r: int = Field(8, ge=1)
    """Rank of each adapter."""
    alpha: float = Field(16.0, gt=0.0)
    """The adapter's output is scaled by alpha / r."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on the adapters' input while training."""
    # Same default as gro_core.models.loading.DEFAULT_LORA_TARGETS (not imported: it pulls torch).
    target_modules: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["all-linear"], min_length=1
    )
    """Module names to adapt (a name or a dotted suffix; one name may be written as a string);
    all-linear: every linear layer but the output head, attention and MLP alike, whatever the
    architecture calls them. A list that names no module of the model is refused at job start,
    with the names it has."""

    @field_validator("target_modules", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class EvalSpec(Section):
    """Periodic evaluation on data.eval (or the task's eval split)."""

    every: int = Field(20, ge=0)
    """Steps between evaluations; 0 disables them."""
    num_prompts: int = Field(64, ge=1)
    """Held-out prompts (or examples, for offline methods) each evaluation scores."""


class CheckpointSpec(Section):
    """Periodic `save_pretrained` checkpoints."""

    every: int = Field(50, ge=0)
    """Steps between checkpoints; 0 saves only at the end."""
    keep: int = Field(2, ge=1)
    """Most recent checkpoints kept on disk."""


class ResourcesSpec(Section):
    """How many training processes the job runs, on how many machines, and how they share the
    model (see "Distributed training"). The defaults run one process, as before."""

    nproc_per_node: int = Field(1, ge=1)
    """Training processes per machine: one per GPU; on a CPU machine, gloo processes."""
    nnodes: int = Field(1, ge=1)
    """Machines the job spans; the processes in all are nproc_per_node × nnodes."""
    strategy: Literal["ddp", "fsdp"] = "ddp"
    """ddp: every process holds the whole model, gradients and optimizer state, and gradients
    are averaged; fsdp: PyTorch's FSDP2 (`fully_shard` per transformer block) shards all three
    over the processes, each holding about 1/N of them."""
    cpu_offload: bool = False
    """fsdp only: keep the sharded parameters, gradients and optimizer state in CPU memory
    between uses (FSDP2's CPUOffloadPolicy): less GPU memory, more time."""

    @property
    def world_size(self) -> int:
        """All training processes of the job."""
        return self.nproc_per_node * self.nnodes

    @model_validator(mode="after")
    def _offload_needs_fsdp(self) -> ResourcesSpec:
        if self.cpu_offload and self.strategy != "fsdp":
            raise ValueError(
                f"cpu_offload offloads FSDP's shards; it needs strategy: fsdp, not {self.strategy}"
            )
        return self
