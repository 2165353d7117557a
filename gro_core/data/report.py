"""`gro data validate`: a validation report for people (or JSON for programs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gro_core.data.hub import validate_hub
from gro_core.data.issues import DataIssue
from gro_core.data.render import resolve_tokenizer
from gro_core.data.validate import ValidationReport, validate_file
from gro_core.spec.hub import HUB_PREFIX, HubDataset


def _percentiles(summary: dict[str, float]) -> str:
    return " / ".join(f"{summary[k]:g}" for k in ("p50", "p90", "p99", "max"))


def _field_lines(fields: dict[str, dict[str, Any]]) -> list[str]:
    if not fields:
        return []
    lines = ["lengths (p50 / p90 / p99 / max):"]
    for name, lengths in fields.items():
        line = f"  {name:<12} chars {_percentiles(lengths['chars'])}"
        if "tokens" in lengths:
            line += f"   tokens {_percentiles(lengths['tokens'])}"
        lines.append(line)
    return lines


def format_issue(issue: DataIssue, unit: str = "line") -> str:
    """`line N, field F: code: message` (the parts that apply); `row N` for a Hub dataset."""
    where = [f"{unit} {issue.line}" if issue.line is not None else "file"]
    if issue.field is not None:
        where.append(f"field {issue.field}")
    return f"{', '.join(where)}: {issue.code}: {issue.message}"


def format_report(report: ValidationReport, unit: str = "line") -> str:
    """A validation report as readable text: summary, statistics, then every kept error."""
    stats = report.stats
    noun = "error" if report.error_count == 1 else "errors"
    kind = f"{report.kind} data" if report.kind else "unknown kind"
    lines = [f"{report.path}: {kind}, {report.rows:,} rows, {report.error_count:,} {noun}"]
    if report.rows != stats["valid_rows"]:
        lines.append(f"valid rows: {stats['valid_rows']:,}")
    lines += _field_lines(stats["fields"])
    if balance := stats.get("label_balance"):
        share = balance["desirable_share"]
        shown = "n/a" if share is None else f"{share:.1%}"
        lines.append(
            f"label balance: {shown} desirable "
            f"({balance['desirable']:,} desirable, {balance['undesirable']:,} undesirable)"
        )
    if "extra_fields" in stats:
        lines.append(f"extra fields: {', '.join(stats['extra_fields']) or 'none'}")
    if report.errors:
        lines.append(f"errors (showing {len(report.errors)} of {report.error_count:,}):")
        lines += [f"  {format_issue(issue, unit)}" for issue in report.errors]
    lines.append("ok" if report.ok else "FAILED")
    return "\n".join(lines)


def _hub_source(path: str, hub_keys: dict[str, Any]) -> HubDataset | None:
    """The Hub dataset `hf:org/name` (with --config, --split, ... as `hub_keys`) names; None
    after printing why it names none."""
    try:
        return HubDataset(hub=path.removeprefix(HUB_PREFIX), **hub_keys)
    except ValidationError as exc:
        for problem in exc.errors(include_url=False):
            key = ".".join(str(p) for p in problem["loc"])
            message = str(problem["msg"]).removeprefix("Value error, ")
            print(f"gro data validate: {key}: {message}", file=sys.stderr)
        return None


def cli_validate(
    path: str,
    as_json: bool = False,
    tokenizer: str | None = None,
    hub_keys: dict[str, Any] | None = None,
) -> int:
    """Validate `path` (a file, or `hf:org/name` with `hub_keys`: config, split, revision,
    columns) and print the report; the exit code is 0 if valid, 1 if not, 2 if the file is
    missing, the Hub dataset ill-named, or the tokenizer cannot be loaded."""
    source = None
    if path.startswith(HUB_PREFIX) and (source := _hub_source(path, hub_keys or {})) is None:
        return 2
    if source is None and not Path(path).exists():
        print(f"gro data validate: no such file or directory: {path}", file=sys.stderr)
        return 2
    try:
        loaded = resolve_tokenizer(tokenizer)
    except (OSError, ValueError, ImportError) as exc:
        print(f"gro data validate: cannot load tokenizer {tokenizer!r}: {exc}", file=sys.stderr)
        return 2
    if source is not None:
        report = validate_hub(source, tokenizer=loaded)
    else:
        report = validate_file(path, tokenizer=loaded)
    unit = "row" if source is not None else "line"
    print(json.dumps(report.to_dict(), indent=2) if as_json else format_report(report, unit))
    return 0 if report.ok else 1
