"""TensorBoard: event files in RUN/tensorboard/, written by torch's SummaryWriter."""

from __future__ import annotations

import json
from typing import Any

from gro_core.trainers.trackers.common import Tracker, resolved_spec, sample_columns, sample_rows


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table TensorBoard's text tab renders; cells keep to one line."""

    def cell(value: Any) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "⏎")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class TensorBoardWriter(Tracker):
    module = "torch.utils.tensorboard"

    def open(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # On resume, TensorBoard drops the events after the checkpoint's step: they are replayed.
        purge = None if self.resumed_from is None else self.resumed_from + 1
        self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=purge)
        spec = json.dumps(resolved_spec(self.spec), indent=2)
        # Indented four spaces: a Markdown code block, so the text tab shows the JSON as is.
        shown = "\n".join("    " + line for line in spec.splitlines())
        self.writer.add_text("spec", shown, global_step=self.resumed_from or 0)

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.last_step = step
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, global_step=step)

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        columns = sample_columns(samples)
        table = markdown_table(columns, sample_rows(step, samples, columns))
        self.writer.add_text("samples", table, global_step=step)

    def on_checkpoint(self, step: int, path: Any) -> None:
        if self.opened:
            self.writer.flush()

    def close(self, status: str) -> None:
        self.writer.add_text("status", status, global_step=getattr(self, "last_step", 0))
        self.writer.close()
