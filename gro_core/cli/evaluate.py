"""`gro eval TARGET [TARGET ...]`: held-out metrics of several targets, one row each."""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import ValidationError

from gro_core.cli.quiet import quiet_libraries
from gro_core.evaluation.runs import evaluate_run
from gro_core.spec import SpecError, format_validation_error


def format_table(results: list[tuple[str, dict[str, float]]]) -> str:
    """One row per target, one column per metric (the `eval/` prefix dropped), aligned."""
    names: list[str] = []
    for _, metrics in results:
        names += [n for n in metrics if n not in names]
    header = ["target", *(n.removeprefix("eval/") for n in names)]
    cells = [[label, *(f"{m[n]:.4g}" if n in m else "-" for n in names)] for label, m in results]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *cells]
    ]
    return "\n".join(line.rstrip() for line in lines)


def eval_command(targets: list[str], *, as_json: bool = False, **options: Any) -> int:
    """Evaluate each target (evaluate_run's keyword `options`) and print a table or JSON.

    Exit code 0 on success, 1 when a target cannot be evaluated, 2 for an invalid spec.
    """
    quiet_libraries()
    results: list[tuple[str, dict[str, float]]] = []
    for target in targets:
        try:
            results.append((target, evaluate_run(target, **options)))
        except (ValidationError, SpecError) as exc:
            for problem in format_validation_error(exc):
                print(
                    f"{target}: {problem['path'] or '<root>'}: {problem['message']}",
                    file=sys.stderr,
                )
            return 2
        except (OSError, ValueError) as exc:  # a DataError is a ValueError
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps([{"target": t, "metrics": m} for t, m in results], indent=2))
    else:
        print(format_table(results))
    return 0
