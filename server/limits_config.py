"""The sizes a job may ask for and what one owner may hold: server-side maxima an operator sets
with `GRO_LIMIT_*` variables (server.services.limits enforces them at submit and upload).

The defaults fit one GPU machine shared by a few people: large enough for real fine-tuning
runs of small and mid-sized models, small enough that no single spec can exhaust the worker's
memory before its first step or fill the disk.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class Limits(BaseSettings):
    """One field per maximum; the environment variable is `GRO_` + the field name in capitals."""

    limit_steps: int = Field(100_000, ge=1, le=2**31 - 1)
    """Most optimizer steps one job may run (train.steps, or epochs × batches)."""
    limit_batch_size: int = Field(512, ge=1)
    """Largest train.batch_size (and a reward model's batch_size)."""
    limit_num_generations: int = Field(64, ge=1)
    """Largest rollout.num_generations (and an evaluation's)."""
    limit_rollouts_per_step: int = Field(8192, ge=1)
    """Largest train.batch_size × rollout.num_generations of an online job."""
    limit_max_new_tokens: int = Field(8192, ge=1)
    """Largest rollout.max_new_tokens (and an evaluation's)."""
    limit_max_length: int = Field(32_768, ge=2)
    """Largest train.max_length, in tokens."""
    limit_task_size: int = Field(1_000_000, ge=1)
    """Most rows generated from data.task (data.task_size, default steps × batch_size)."""
    limit_eval_num_prompts: int = Field(4096, ge=1)
    """Largest eval.num_prompts (and an evaluation's num_prompts)."""
    limit_num_iterations: int = Field(16, ge=1)
    """Largest train.num_iterations (updates per batch of rollouts)."""
    limit_grad_accum: int = Field(256, ge=1)
    """Largest train.grad_accum."""
    limit_epochs: int = Field(1000, ge=1)
    """Largest train.epochs."""
    limit_lora_r: int = Field(1024, ge=1)
    """Largest lora.r."""
    limit_checkpoint_keep: int = Field(20, ge=1)
    """Largest checkpoint.keep (checkpoints kept on disk per job)."""
    limit_rewards: int = Field(32, ge=1)
    """Most entries in rewards."""
    limit_stop_strings: int = Field(32, ge=1)
    """Most entries in rollout.stop."""
    limit_nproc_per_node: int = Field(8, ge=1, le=64)
    """Largest resources.nproc_per_node (training processes per machine; one per GPU)."""
    limit_nnodes: int = Field(4, ge=1, le=64)
    """Largest resources.nnodes (machines, each a worker, one job spans)."""
    limit_name_chars: int = Field(200, ge=1, le=200)
    """Longest job or evaluation name, in characters (at most 200, the width of its column)."""
    limit_active_jobs: int = Field(32, ge=1)
    """Most queued + running jobs and evaluations one owner may have at once."""
    limit_comparison_jobs: int = Field(64, ge=1)
    """Most jobs one comparison may create (variants × seeds)."""
    limit_dataset_rows: int = Field(2_000_000, ge=1)
    """Most rows one uploaded dataset may hold (JSONL lines, Parquet rows)."""
    limit_row_bytes: int = Field(1 << 20, ge=1)
    """Largest JSONL line, and largest Parquet row once decompressed."""
    limit_decompressed_bytes: int = Field(4 << 30, ge=1)
    """Most bytes an uploaded Parquet file may decompress to."""
    limit_storage_bytes: int = Field(50 * 2**30, ge=1)
    """Most bytes one owner's datasets and checkpoints may take on the storage directory."""
