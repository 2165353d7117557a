"""Weights & Biases: a run under RUN/wandb/, offline unless the spec asks for online."""

from __future__ import annotations

from typing import Any

from gro_core.trainers.trackers.common import Tracker, resolved_spec, sample_columns, sample_rows

# wandb's exit codes: 0 a finished run, non-zero a failed one (cancelled runs count as finished).
_EXIT_CODES = {"succeeded": 0, "cancelled": 0, "failed": 1}


class WandbWriter(Tracker):
    module = "wandb"

    def open(self) -> None:
        import wandb

        config = resolved_spec(self.spec)
        tags = list(self.config.tags)
        if self.resumed_from is not None:
            config["resumed_from_step"] = self.resumed_from
            tags.append(f"resumed-from-{self.resumed_from}")
        # No console capture or code saving: the trainer's output and sources are not the run's.
        settings = wandb.Settings(silent=True, console="off", save_code=False, disable_git=True)
        self.run = wandb.init(
            project=self.config.project,
            entity=self.config.entity,
            name=self.run_name(),
            tags=tags,
            config=config,
            dir=str(self.out_dir),
            mode=self.config.mode,
            reinit="create_new",  # a worker process runs one job after another
            settings=settings,
        )

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(dict(metrics), step=step)

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        import wandb

        columns = sample_columns(samples)
        table = wandb.Table(columns=columns, data=sample_rows(step, samples, columns))
        self.run.log({"samples": table}, step=step)

    def close(self, status: str) -> None:
        self.run.finish(exit_code=_EXIT_CODES.get(status, 1))
