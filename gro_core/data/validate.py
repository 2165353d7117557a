"""Validate a dataset file in one streaming pass, and load a valid one for training.

Validation never holds the file: rows are checked one at a time, issues are kept up to a cap
(all are counted), and statistics come from bounded samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gro_core.data.issues import DataIssue, DatasetError
from gro_core.data.kinds import (
    COMPLETION_FIELDS,
    KINDS,
    check_row,
    describe_kind,
    detect_kind,
    to_record,
)
from gro_core.data.openai_rows import translate
from gro_core.data.readers import DEFAULT_MAX_LINE_BYTES, Bounds, Record, iter_records
from gro_core.data.render import render_completion, render_prompt, resolve_tokenizer
from gro_core.data.stats import DatasetStats

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

DEFAULT_MAX_ERRORS = 100
_SHAPES = " | ".join(f"{k} ({describe_kind(k)})" for k in KINDS)


@dataclass
class ValidationReport:
    """The outcome of `validate_file`: the file's kind, its row count, problems and statistics.

    `errors` holds the first `max_errors` issues in file order; `error_count` counts them all.
    """

    path: str
    kind: str | None
    rows: int
    errors: list[DataIssue]
    error_count: int
    stats: dict[str, Any]

    @property
    def ok(self) -> bool:
        """True when the file has no problem at all."""
        return self.error_count == 0

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return {
            "path": self.path,
            "ok": self.ok,
            "kind": self.kind,
            "rows": self.rows,
            "error_count": self.error_count,
            "errors": [issue.to_dict() for issue in self.errors],
            "stats": self.stats,
        }


def _check_expected_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {', '.join(KINDS)}")


class _Validator:
    """The file-level rules over a stream of rows: one kind per file, capped issues, stats."""

    def __init__(
        self,
        *,
        expected_kind: str | None,
        max_errors: int,
        tokenizer: PreTrainedTokenizerBase | None,
    ) -> None:
        self.expected_kind = expected_kind
        self.max_errors = max_errors
        self.tokenizer = tokenizer
        self.kind: str | None = None
        self.kind_line = 0
        self.rows = 0
        self.errors: list[DataIssue] = []
        self.error_count = 0
        self.stats = DatasetStats()

    def add_issue(self, issue: DataIssue) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(issue)

    def _kind_issue(self, line: int, kind: str) -> DataIssue | None:
        """A row whose kind is not the file's (or not the one the caller needs)."""
        if self.kind is None:
            self.kind, self.kind_line = kind, line
        if self.expected_kind is not None:
            if kind == self.expected_kind:
                return None
            msg = (
                f"this row is {kind} data, but {self.expected_kind} data is needed here "
                f"({describe_kind(self.expected_kind)})"
            )
            return DataIssue(line, None, "wrong_kind", msg)
        if kind == self.kind:
            return None
        msg = (
            f"this row is {kind} data, but line {self.kind_line} made the file {self.kind} data; "
            "a file holds one kind"
        )
        return DataIssue(line, None, "mixed_kinds", msg)

    def _count_tokens(self, line: int, record: dict[str, Any], kind: str) -> None:
        """Token lengths of the rendered fields, as training will see them."""
        assert self.tokenizer is not None
        for field in ("prompt", *COMPLETION_FIELDS[kind]):
            try:
                if field == "prompt":
                    text = render_prompt(self.tokenizer, record[field])
                else:
                    text = render_completion(self.tokenizer, record["prompt"], record[field])
            except Exception as exc:  # templates are user Jinja code: any error is the row's
                self.add_issue(DataIssue(line, field, "render_failed", f"cannot render: {exc}"))
                continue
            count = len(self.tokenizer.encode(text, add_special_tokens=False))
            self.stats.add_tokens(field, count)

    def feed(self, line: int, item: Record) -> dict[str, Any] | None:
        """Check one row (or take the reader's issue); return its canonical record if valid."""
        self.rows += 1
        if isinstance(item, DataIssue):
            self.add_issue(item)
            return None
        # OpenAI's row shapes, in gro's field names
        translated = translate(line, item, self.expected_kind or self.kind)
        if isinstance(translated, list):
            for issue in translated:
                self.add_issue(issue)
            return None
        item = translated
        kind = detect_kind(item)
        if kind is None:
            msg = f"row matches no dataset kind (fields: {', '.join(sorted(item)) or 'none'}); "
            msg += f"a row needs the fields of one kind: {_SHAPES}"
            self.add_issue(DataIssue(line, None, "unknown_kind", msg))
            return None
        kind_issue = self._kind_issue(line, kind)
        issues = ([kind_issue] if kind_issue else []) + check_row(line, item, kind)
        for issue in issues:
            self.add_issue(issue)
        if issues:
            return None
        record = to_record(item, kind)
        self.stats.add(record, kind)
        if self.tokenizer is not None:
            self._count_tokens(line, record, kind)
        return record

    def report(self, path: str) -> ValidationReport:
        if self.rows == 0 and self.error_count == 0:
            self.add_issue(DataIssue(None, None, "empty_file", "the file holds no rows"))
        return ValidationReport(
            path=path,
            kind=self.kind,
            rows=self.rows,
            errors=self.errors,
            error_count=self.error_count,
            stats=self.stats.to_dict(self.kind, self.rows),
        )


def _scan(records: Iterable[tuple[int, Record]], validator: _Validator) -> Iterator[dict[str, Any]]:
    """Feed every row to the validator; yield the canonical records of valid rows."""
    try:
        for line, item in records:
            record = validator.feed(line, item)
            if record is not None:
                yield record
    except DatasetError as exc:  # the file itself (format, shards) is unreadable
        for issue in exc.issues:
            validator.add_issue(issue)


def validate_file(
    path: str | Path,
    *,
    tokenizer: str | PreTrainedTokenizerBase | None = None,
    max_errors: int = DEFAULT_MAX_ERRORS,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    expected_kind: str | None = None,
    bounds: Bounds | None = None,
) -> ValidationReport:
    """Check every row of a JSONL, Parquet or saved Hugging Face dataset, streaming.

    The kind is detected from the first row's fields; with `expected_kind`, rows of any other
    kind are `wrong_kind` errors instead. `tokenizer` (an object or a model name / path) adds
    token-length statistics of the rendered fields. Raises FileNotFoundError for a missing path;
    every problem inside the file is reported, not raised. `bounds` (rows, bytes per row,
    decompressed bytes) default to Bounds(line=max_line_bytes).
    """
    _check_expected_kind(expected_kind)
    validator = _Validator(
        expected_kind=expected_kind,
        max_errors=max_errors,
        tokenizer=resolve_tokenizer(tokenizer),
    )
    records = iter_records(path, max_line_bytes=max_line_bytes, bounds=bounds)
    for _ in _scan(records, validator):
        pass  # records are only needed by load_rows; validation keeps nothing per row
    return validator.report(str(path))


def load_rows(
    path: str | Path,
    kind: str | None = None,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> tuple[str, list[dict[str, Any]]]:
    """Validate and load a dataset as `(kind, records)` of canonical records, in one pass.

    Records hold the kind's fields (`prompt`, and `chosen`/`rejected`, `completion`/`label`)
    first, as strings or chat message lists, then the row's other fields; an sft `messages` row
    becomes `prompt` (all messages before the last) and `completion` (the last, assistant one).
    `kind` demands a kind (e.g. preference for DPO). Raises DatasetError naming the first
    problems by line and field, FileNotFoundError for a missing path.
    """
    records = iter_records(path, max_line_bytes=max_line_bytes)
    return load_stream(records, str(path), kind)


def validate_stream(
    records: Iterable[tuple[int, Record]],
    label: str,
    *,
    expected_kind: str | None = None,
    max_errors: int = DEFAULT_MAX_ERRORS,
    tokenizer: str | PreTrainedTokenizerBase | None = None,
) -> ValidationReport:
    """`validate_file` over rows from elsewhere (a Hub dataset): `(row, row_or_issue)` pairs."""
    _check_expected_kind(expected_kind)
    validator = _Validator(
        expected_kind=expected_kind,
        max_errors=max_errors,
        tokenizer=resolve_tokenizer(tokenizer),
    )
    for _ in _scan(records, validator):
        pass
    return validator.report(label)


def load_stream(
    records: Iterable[tuple[int, Record]], label: str, kind: str | None = None, unit: str = "line"
) -> tuple[str, list[dict[str, Any]]]:
    """`load_rows` over `(line, row_or_issue)` pairs; errors name `label` and each `unit`."""
    _check_expected_kind(kind)
    validator = _Validator(expected_kind=kind, max_errors=DEFAULT_MAX_ERRORS, tokenizer=None)
    loaded = list(_scan(records, validator))
    report = validator.report(label)
    if not report.ok:
        raise DatasetError(report.errors, error_count=report.error_count, path=label, unit=unit)
    assert report.kind is not None  # a file with no rows reports empty_file
    return report.kind, loaded
