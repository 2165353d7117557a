"""How metrics, samples, events and checkpoints leave the training loop.

The loop calls a `Callback`; the CLI plugs in `JsonlWriter` (the run outputs of docs/jobspec.md) and
`ProgressBar`, the worker a database writer, tests a list; the trainer itself adds the spec's
experiment trackers (gro_core.trainers.trackers). `should_stop` lets a caller
cancel between steps.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, ClassVar, TextIO

from gro_core.trainers.checkpoint import write_text_atomically


class Callback:
    """No-op base: override what you need."""

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Scalar metrics of one step (namespaced names, e.g. `loss/policy`)."""

    def on_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        """Scored examples: prompt, completion, reward, advantage, anchor_distance, weight."""

    def on_event(self, step: int, kind: str, message: str) -> None:
        """Something a user should see in the log: started, resumed, eval, failed, ..."""

    def on_checkpoint(self, step: int, path: Path) -> None:
        """A checkpoint directory was written (atomically)."""

    def on_step_end(self, step: int, total: int, metrics: dict[str, float]) -> None:
        """After every optimizer step (progress displays)."""

    def on_resume(self, step: int) -> None:
        """A run continues from the checkpoint of `step`: what was written after it is stale."""

    def should_stop(self) -> bool:
        """Checked between steps; True stops the run after saving a checkpoint."""
        return False

    def on_run_end(self, status: str) -> None:
        """The run is over: succeeded, cancelled or failed (then the error follows)."""


class CallbackList(Callback):
    """Fans every call out to several callbacks."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = callbacks

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_metrics(step, metrics)

    def on_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        for cb in self.callbacks:
            cb.on_samples(step, samples)

    def on_event(self, step: int, kind: str, message: str) -> None:
        for cb in self.callbacks:
            cb.on_event(step, kind, message)

    def on_checkpoint(self, step: int, path: Path) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(step, path)

    def on_step_end(self, step: int, total: int, metrics: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_step_end(step, total, metrics)

    def on_resume(self, step: int) -> None:
        for cb in self.callbacks:
            cb.on_resume(step)

    def should_stop(self) -> bool:
        return any(cb.should_stop() for cb in self.callbacks)

    def on_run_end(self, status: str) -> None:
        for cb in self.callbacks:
            cb.on_run_end(status)


class JsonlWriter(Callback):
    """Writes DIR/metrics.jsonl, DIR/samples.jsonl and DIR/events.jsonl (docs/jobspec.md).

    Lines are flushed as they are written, so a crashed run keeps everything up to the
    crash; on resume the loop first drops lines past the checkpoint (`truncate_after`).
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, TextIO] = {}

    def _write(self, name: str, record: dict[str, Any]) -> None:
        if name not in self._files:
            self._files[name] = (self.out_dir / name).open("a", encoding="utf-8")
        handle = self._files[name]
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self._write("metrics.jsonl", {"step": step, "name": name, "value": value})

    def on_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        for sample in samples:
            self._write("samples.jsonl", {"step": step, **sample})

    def on_event(self, step: int, kind: str, message: str) -> None:
        record = {"step": step, "kind": kind, "message": message, "time": time.time()}
        self._write("events.jsonl", record)

    def on_resume(self, step: int) -> None:
        """Drop metric and sample lines of steps after `step`: the resumed run replays them."""
        for name in ("metrics.jsonl", "samples.jsonl"):
            path = self.out_dir / name
            if not path.exists():
                continue
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [line for line in lines if json.loads(line)["step"] <= step]
            write_text_atomically(path, "".join(kept))

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


class ProgressBar(Callback):
    """One self-rewriting terminal line: step, loss, reward or accuracy, ETA."""

    # metric -> how the bar labels it
    KEYS: ClassVar[dict[str, str]] = {
        "loss/value": "loss",
        "loss/sft": "loss",
        "loss/reward_model": "loss",
        "reward/mean": "reward",
    }

    def __init__(self, stream: TextIO = sys.stderr, width: int = 24) -> None:
        self.stream = stream
        self.width = width
        self.start: float | None = None
        self.first_step = 0

    def on_step_end(self, step: int, total: int, metrics: dict[str, float]) -> None:
        now = time.perf_counter()
        if self.start is None:
            self.start, self.first_step = now, step - 1
        done, elapsed = step - self.first_step, now - self.start
        # The first step has no duration to measure yet: show no rate rather than a wrong one.
        rate = (done - 1) / elapsed if done > 1 and elapsed > 0 else 0.0
        eta = _clock((total - step) / rate) if rate > 0 else "--:--"
        filled = int(self.width * step / max(total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        shown = " ".join(
            f"{label}={metrics[k]:.4g}" for k, label in self.KEYS.items() if k in metrics
        )
        line = f"\r[{bar}] {step}/{total} {shown} {rate:.2f} it/s eta {eta}"
        self.stream.write(line)
        if step == total:
            self.stream.write("\n")
        self.stream.flush()

    def on_event(self, step: int, kind: str, message: str) -> None:
        if kind in ("eval", "resumed", "failed", "stopped"):
            self.stream.write(f"\n{kind}: {message}\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
