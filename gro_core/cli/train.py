"""`gro train SPEC --out DIR [--resume]`: run a job spec locally with a progress bar."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import ValidationError

from gro_core.cli.quiet import quiet_libraries
from gro_core.spec import SpecError, format_validation_error, load_spec


def train_command(spec_path: str, out: str, *, resume: bool = False, quiet: bool = False) -> int:
    """Exit code 0 on success, 1 when the run failed, 2 when the spec is invalid."""
    try:
        spec = load_spec(Path(spec_path))
    except (ValidationError, SpecError) as exc:
        for problem in format_validation_error(exc):
            print(
                f"{spec_path}: {problem['path'] or '<root>'}: {problem['message']}", file=sys.stderr
            )
        return 2
    except FileNotFoundError:
        print(f"{spec_path}: no such file", file=sys.stderr)
        return 2
    quiet_libraries()
    # Imported once the spec is valid: an invalid one is reported without loading torch.
    from gro_core.trainers import DataError, JsonlWriter, ProgressBar, TrainingError, run

    out_dir = Path(out)
    writer = JsonlWriter(out_dir)
    callbacks = [writer] if quiet else [writer, ProgressBar()]
    try:
        result = run(spec, out_dir, callbacks, resume=resume)
    except (DataError, SpecError, TrainingError) as exc:
        writer.on_event(getattr(exc, "step", None) or 0, "failed", str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        writer.close()
    shown = ", ".join(
        f"{k}={v:.4g}"
        for k, v in sorted(result.final_metrics.items())
        if k.startswith(("eval/", "loss/"))
    )
    print(f"{result.status}: {result.steps} steps in {result.wall_time_s:.1f}s -> {out_dir}")
    if shown:
        print(shown)
    return 0
