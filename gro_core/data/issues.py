"""What a dataset problem looks like: one `DataIssue` per problem, `DatasetError` to raise them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DataIssue:
    """One problem found in a dataset file.

    `line` is the 1-based line of a JSONL file or the 1-based row of a Parquet / saved Hugging Face
    dataset; None when the problem concerns the whole file (empty, unreadable). `field` is the
    field's path in the row (`chosen`, `messages[2].role`), None when no single field is at fault.
    `message` reads as a sentence without the line, so callers can prefix it as they like.
    """

    line: int | None
    field: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The issue as a JSON-ready dict: `{line, field, code, message}`."""
        return asdict(self)

    def __str__(self) -> str:
        return self.describe()

    def describe(self, unit: str = "line") -> str:
        """`line 3: ...` for a file; `row 17, field chosen: ...` for a Hub dataset (unit row)."""
        if self.line is None:
            where = "file" if unit == "line" else "dataset"
        else:
            where = f"{unit} {self.line}"
        if unit != "line" and self.field:
            where += f", field {self.field}"
        return f"{where}: {self.message}"


class DatasetError(ValueError):
    """A dataset that cannot be used; `issues` holds the (first) problems, `error_count` all."""

    # How many issues the exception message spells out; the rest stay in `issues`.
    _SHOWN = 5

    def __init__(
        self,
        issues: Sequence[DataIssue],
        *,
        error_count: int | None = None,
        path: str = "",
        unit: str = "line",
    ) -> None:
        self.issues = list(issues)
        self.unit = unit  # what issues number: a file's lines, a Hub dataset's rows
        self.error_count = len(self.issues) if error_count is None else error_count
        self.path = path
        super().__init__(self._summary())

    def _summary(self) -> str:
        head = f"{self.path}: " if self.path else ""
        noun = "problem" if self.error_count == 1 else "problems"
        lines = [f"{head}{self.error_count} {noun} in the dataset"]
        lines += [f"  {issue.describe(self.unit)}" for issue in self.issues[: self._SHOWN]]
        hidden = self.error_count - min(len(self.issues), self._SHOWN)
        if hidden > 0:
            lines.append(f"  ... and {hidden} more (run `gro data validate` to list them)")
        return "\n".join(lines)


# JSON's names for the types a row can hold; messages talk about the file, not about Python.
_TYPE_NAMES = {
    "str": "string",
    "dict": "object",
    "NoneType": "null",
    "float": "float",
    "int": "int",
    "bool": "bool",
    "list": "list",
}


def type_name(value: object) -> str:
    """The name users know a value's type by in a JSON file (`string`, `object`, `int`, ...)."""
    name = type(value).__name__
    return _TYPE_NAMES.get(name, name)
