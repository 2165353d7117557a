"""The one training loop every method shares.

    result = run(spec, out_dir, callbacks=[JsonlWriter(out_dir)], resume=False)

AdamW with linear warm-up and cosine decay, gradient accumulation and clipping, seeded
length-bucketed batches, evaluation every N steps, atomic checkpoints every M steps, and a
resume that continues bit-identically on CPU. Everything that leaves the loop goes through
callbacks, so the CLI, the worker and tests drive the same code.

Besides the objective's metrics, every step logs the run's own axes: `time/elapsed_s` (wall
seconds since the run started) and `train/samples` (examples trained on, summed over ranks).
Both are kept in each checkpoint's trainer state, so a resumed run continues them.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gro_core.models import load_run_model, load_tokenizer
from gro_core.spec import JobSpec
from gro_core.trainers.build import build_objective
from gro_core.trainers.callbacks import Callback, CallbackList
from gro_core.trainers.checkpoint import (
    latest_checkpoint,
    load_trainer_state,
    save_checkpoint,
    set_rng_state,
    weights_finite,
    write_text_atomically,
)
from gro_core.trainers.datasets import load_data
from gro_core.trainers.distributed import init_ranks
from gro_core.trainers.protocol import Collected, weighted_metrics
from gro_core.trainers.sampler import StepSampler
from gro_core.trainers.strategy import (
    load_sharded_checkpoint,
    save_sharded_checkpoint,
    shard_run,
)
from gro_core.trainers.trackers import open_trackers


class TrainingError(RuntimeError):
    """A run that cannot go on; `code` is machine-readable (bad_data, non_finite, ...)."""

    def __init__(self, code: str, message: str, step: int | None = None) -> None:
        super().__init__(message)
        self.code, self.step = code, step


@dataclass
class RunResult:
    status: str  # succeeded | cancelled
    steps: int
    final_metrics: dict[str, float]
    wall_time_s: float
    out_dir: str
    spec: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_schedule(warmup: int, total: int):
    """Learning-rate multiplier: linear from 0 over `warmup` steps, then cosine to 0."""

    def factor(step: int) -> float:  # step = optimizer steps taken so far
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


Resume = bool | tuple[int, Path]
"""False: start at step 0; True: the latest checkpoint of out_dir; (step, path): that one."""


class Trainer:
    """One run: model, objective, optimizer, schedule, and the step loop."""

    def __init__(self, spec: JobSpec, out_dir: Path, callbacks: list[Callback], resume: Resume):
        # The run's clock: wall seconds of this attempt (loading included), on top of those
        # of the attempts before the checkpoint it resumes from.
        self.clock_started, self.elapsed_before = time.perf_counter(), 0.0
        self.samples_seen = 0  # train/samples: examples trained on so far, on all ranks
        self.tokens_seen = 0  # train/tokens: tokens of the sequences trained on, all ranks
        self.spec, self.out_dir = spec, Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.ranks = init_ranks(spec.resources.strategy)
        # Rank 0 reports for all: the others' metrics reach it through all-reduce. Trackers are
        # opened before the model loads, so a missing tracker library fails the job at once.
        trackers = open_trackers(spec, self.out_dir) if self.ranks.main else []
        self.cb = CallbackList([*callbacks, *trackers] if self.ranks.main else [])
        seed_everything(spec.train.seed)
        found = latest_checkpoint(self.out_dir) if resume is True else resume or None
        self.start_step, checkpoint = found if found else (0, None)
        self.last_checkpoint: Path | None = checkpoint  # the newest one saved with finite weights
        self.tokenizer = load_tokenizer(spec.model)
        self.data = load_data(spec, self.tokenizer)
        start_from = None if self.ranks.sharded else checkpoint  # fsdp: _restore loads shards
        self.model = load_run_model(spec, start_from, self.ranks.device)
        self.device = next(self.model.parameters()).device
        self.objective = build_objective(
            spec, self.model, self.tokenizer, self.data, self.device, self.out_dir
        )
        # Online prompts are drawn without length bucketing: rollouts set the padded shapes,
        # and bucketed prompts made each step one word length (a sawtooth reward curve).
        lengths = [0 if self.data.kind == "prompt" else e.length for e in self.data.train]
        self.sampler = StepSampler(lengths, spec.train.batch_size, spec.train.seed)
        epochs = spec.train.epochs
        self.total_steps = epochs * self.sampler.per_epoch if epochs else spec.train.steps
        self.iterations = self.objective.iterations
        if self.ranks.sharded:
            shard_run(self.model, self.objective, spec.resources)  # and its reference
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # fused: one pass over all parameters per step. The default per-tensor loop is ~4x
        # slower on CPU (71 vs 16 ms per step on small-llama, 23% of a DPO run's time).
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=spec.train.lr,
            weight_decay=spec.train.weight_decay,
            fused=self.device.type in ("cpu", "cuda") and not self.ranks.sharded,
        )
        schedule = cosine_schedule(spec.train.warmup_steps, self.total_steps * self.iterations)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        if checkpoint is not None:
            self._restore(checkpoint)

    def _restore(self, checkpoint: Path) -> None:
        state = load_trainer_state(checkpoint)
        if self.ranks.sharded:  # each rank its own shards and RNG states
            state["rng"] = load_sharded_checkpoint(checkpoint, self.model, self.optimizer)
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        # Checkpoints written before the trainer kept its own axes hold neither: start at 0.
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        self.samples_seen = int(state.get("samples", 0))
        self.tokens_seen = int(state.get("tokens", 0))
        self.cb.on_resume(self.start_step)
        self.cb.on_event(self.start_step, "resumed", f"resumed from {checkpoint.name}")

    # --- one optimizer step -----------------------------------------------------------------

    def _collect(self, step: int) -> Collected[Any]:
        """What this rank trains on at `step` (its share of the batch, from index rank × size):
        examples, or for online methods their scored rollouts."""
        batch = self.ranks.shard(self.sampler.batch(step))
        examples = [self.data.train[i] for i in batch]
        first, total = self.ranks.rank * len(batch), self.ranks.world * len(batch)
        return self.objective.collect(self.model, step, examples, first, total)

    def elapsed(self) -> float:
        """Training wall seconds since the run started, across resumes."""
        return self.elapsed_before + time.perf_counter() - self.clock_started

    def _micro_batches(self, items: list[Any]) -> list[list[Any]]:
        parts = min(self.spec.train.grad_accum, len(items))
        size = -(-len(items) // parts)
        return [items[i : i + size] for i in range(0, len(items), size)]

    def train_step(self, step: int) -> dict[str, float]:
        """One batch: `iterations` optimizer updates on it (1 offline; num_iterations online)."""
        started = time.perf_counter()
        collected = self._collect(step)
        items = collected.items
        if not self.model.training:  # evaluation and scoring restore the mode they found
            self.model.train()
        out: dict[str, float] = {}
        for iteration in range(self.iterations):
            micro = self._micro_batches(items)
            out = self._update(step, micro, collected.metrics, emit_samples=iteration == 0)
        elapsed = time.perf_counter() - started
        self.samples_seen += round(self.ranks.total(collected.samples))
        sequences = sum(len(i.sequences) for i in items)
        tokens = sum(s.length for i in items for s in i.sequences)
        self.tokens_seen += round(self.ranks.total(tokens))
        return out | {
            "train/epoch": self.sampler.epoch_of(step),
            "train/samples": self.samples_seen,
            "train/tokens": self.tokens_seen,
            "perf/samples_per_s": sequences / elapsed,
            "perf/tokens_per_s": tokens / elapsed,
            "time/elapsed_s": self.elapsed(),
        }

    def _update(
        self,
        step: int,
        micro: list[list[Any]],
        collected: dict[str, float],
        emit_samples: bool,
    ) -> dict[str, float]:
        # Each micro-batch's loss is a mean over its own units (tokens, sequences or pairs):
        # weighted by its share of all units on all ranks, the accumulated and averaged
        # gradient is the gradient of the whole batch's loss.
        units = [self.objective.units(m) for m in micro]
        local = sum(units)
        total = self.ranks.total(local)
        parts: list[tuple[dict[str, Any], float]] = []
        samples: list[dict[str, Any]] = []
        # Batch-wide statistics (a reward std, REINFORCE++'s whitening) must be the step's.
        whole = len(micro) == 1 and self.ranks.world == 1
        moments = (
            None if whole else self.objective.step_moments(self.model, micro, self.ranks.summed)
        )
        for items, unit in zip(micro, units, strict=True):
            share = self.ranks.world * unit / total
            loss, metrics, found = self.objective.step(self.model, items, moments)
            if not bool(torch.isfinite(loss)):
                message = f"non-finite loss ({float(loss.detach())}) at step {step}"
                raise TrainingError("non_finite", message, step)
            (loss * share).backward()
            parts.append((metrics, unit / local))
            samples += found
        self.ranks.average_gradients(self.params)
        grad_norm = self._clip_and_step(step)
        if samples and emit_samples:
            self.cb.on_samples(step, samples)
        out = self.ranks.average_metrics(weighted_metrics(parts), weight=local)  # as the grads
        out |= self.ranks.average_metrics(collected)  # equal shares of prompts: equal weights
        return out | {"train/lr": self.scheduler.get_last_lr()[0], "train/grad_norm": grad_norm}

    def _clip_and_step(self, step: int) -> float:
        max_norm = self.spec.train.max_grad_norm or math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm, foreach=True))
        if not math.isfinite(norm):
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingError("non_finite", f"non-finite gradient norm at step {step}", step)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    # --- the run ------------------------------------------------------------------------------

    @property
    def _collective_or_main(self) -> bool:
        """Whether this rank evaluates and checkpoints: rank 0 alone, except under fsdp, where
        every forward and the gathering of the weights need every rank."""
        return self.ranks.main or self.ranks.sharded

    def _due(self, every: int, step: int) -> bool:
        return (every > 0 and step % every == 0) or step == self.total_steps

    def evaluate(self, step: int) -> dict[str, float]:
        metrics = self.objective.evaluate(self.model, self.spec.eval.num_prompts)
        if metrics:
            self.cb.on_metrics(step, metrics)
            shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
            self.cb.on_event(step, "eval", shown)
        return metrics

    def checkpoint(self, step: int, last: bool = False) -> Path:  # last: fsdp consolidates
        # Checked before saving: a step can break the weights while its loss (computed before
        # the update) was finite, and a checkpoint of them would be listed as the last good one.
        if not weights_finite(self.params):
            good = self.last_checkpoint
            where = (
                f"the last good checkpoint is {good.name}" if good else "no checkpoint was saved"
            )
            message = (
                f"non-finite weights after step {step} (learning rate too high?): step {step} was "
                f"not saved; {where}"
            )
            raise TrainingError("non_finite", message, step)
        if self.ranks.sharded:
            return self._checkpoint_sharded(step, last or step == self.total_steps)
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": step,
            "spec": self.spec.model_dump(mode="json"),
            "elapsed_s": self.elapsed(),
            "samples": self.samples_seen,
            "tokens": self.tokens_seen,
        }
        path = save_checkpoint(
            self.out_dir, step, self.model, self.tokenizer, state, self.spec.checkpoint.keep
        )
        self.cb.on_checkpoint(step, path)
        self.last_checkpoint = path
        return path

    def _checkpoint_sharded(self, step: int, consolidate: bool) -> Path:
        # Every rank writes its own shards; only the run's last checkpoint gathers the weights.
        state = {
            "scheduler": self.scheduler.state_dict(),
            "step": step,
            "spec": self.spec.model_dump(mode="json"),
            "elapsed_s": self.elapsed(),
            "samples": self.samples_seen,
            "tokens": self.tokens_seen,
        }
        path = save_sharded_checkpoint(
            self.out_dir,
            step,
            self.model,
            self.optimizer,
            self.tokenizer,
            state,
            self.spec.checkpoint.keep,
            consolidate,
        )
        self.cb.on_checkpoint(step, path)
        self.last_checkpoint = path
        return path

    def run(self) -> RunResult:
        started = time.time()
        final: dict[str, float] = {}
        status, step = "succeeded", self.start_step
        if self.start_step == 0:
            self.cb.on_event(
                0, "started", f"{self.spec.method} on {self.spec.model}, {self.total_steps} steps"
            )
            if self.spec.eval.every > 0 and self._collective_or_main:
                final |= self.evaluate(0)  # the baseline every curve starts from
        while step < self.total_steps:
            if self.ranks.agree(self.cb.should_stop()):
                status = "cancelled"
                self.cb.on_event(step, "stopped", "cancelled between steps")
                break
            step += 1
            metrics = self.train_step(step)
            self.cb.on_metrics(step, metrics)
            final |= metrics
            self.cb.on_step_end(step, self.total_steps, metrics)
            if self._due(self.spec.eval.every, step) and self._collective_or_main:
                final |= self.evaluate(step)
            if self._due(self.spec.checkpoint.every, step) and self._collective_or_main:
                self.checkpoint(step)
        if status == "cancelled" and step > self.start_step and self._collective_or_main:
            self.checkpoint(step, last=True)
        result = RunResult(
            status,
            step,
            final,
            time.time() - started,
            str(self.out_dir),
            self.spec.model_dump(mode="json"),
        )
        if self.ranks.main:
            self._write_summary(result)
        return result

    def _write_summary(self, result: RunResult) -> None:
        write_text_atomically(self.out_dir / "summary.json", json.dumps(asdict(result), indent=2))


def run(
    spec: JobSpec,
    out_dir: Path | str,
    callbacks: list[Callback] | None = None,
    resume: Resume = False,
) -> RunResult:
    """Train `spec` into `out_dir`. resume=True continues from its latest checkpoint; a
    (step, checkpoint dir) pair, as `latest_checkpoint` gives it, from that one (a caller that
    looked it up already, the worker, hands it over instead of the trainer looking again)."""
    trainer = Trainer(spec, Path(out_dir), callbacks or [], resume)
    try:
        result = trainer.run()
    except BaseException:
        trainer.cb.on_run_end("failed")
        raise
    trainer.cb.on_run_end(result.status)
    # Only after success: a failed rank exits and torchrun stops its peers; a barrier here
    # would leave them waiting for it.
    trainer.ranks.finish()
    return result
