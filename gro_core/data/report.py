"""`gro data validate`: a validation report for people (or JSON for programs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from gro_core.data.issues import DataIssue
from gro_core.data.render import resolve_tokenizer
from gro_core.data.validate import ValidationReport, validate_file


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


def format_issue(issue: DataIssue) -> str:
    """`line N, field F: code: message` (the parts that apply)."""
    where = [f"line {issue.line}" if issue.line is not None else "file"]
    if issue.field is not None:
        where.append(f"field {issue.field}")
    return f"{', '.join(where)}: {issue.code}: {issue.message}"


def format_report(report: ValidationReport) -> str:
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
        lines += [f"  {format_issue(issue)}" for issue in report.errors]
    lines.append("ok" if report.ok else "FAILED")
    return "\n".join(lines)


def cli_validate(path: str, as_json: bool = False, tokenizer: str | None = None) -> int:
    """Validate `path` and print the report; the exit code is 0 if valid, 1 if not, 2 if the
    file is missing or the tokenizer cannot be loaded."""
    if not Path(path).exists():
        print(f"gro data validate: no such file or directory: {path}", file=sys.stderr)
        return 2
    try:
        loaded = resolve_tokenizer(tokenizer)
    except (OSError, ValueError, ImportError) as exc:
        print(f"gro data validate: cannot load tokenizer {tokenizer!r}: {exc}", file=sys.stderr)
        return 2
    report = validate_file(path, tokenizer=loaded)
    print(json.dumps(report.to_dict(), indent=2) if as_json else format_report(report))
    return 0 if report.ok else 1
