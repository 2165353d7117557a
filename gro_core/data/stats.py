"""Dataset statistics gathered in one streaming pass, in memory bounded by a sample size."""

from __future__ import annotations

import math
import random
from typing import Any

from gro_core.data.kinds import COMPLETION_FIELDS

# Names of extra prompt-row fields remembered; a file with a new key on every row stays bounded.
_MAX_FIELD_NAMES = 100
PERCENTILES = (50, 90, 99)


class Reservoir:
    """A uniform sample of at most `size` values (Algorithm R) plus the exact count, mean and max.

    Percentiles of the sample estimate those of the whole stream while memory stays O(size);
    the generator is seeded so two runs over one file report the same numbers.
    """

    def __init__(self, size: int = 10_000, seed: int = 0) -> None:
        self.size = size
        self.sample: list[int] = []
        self.seen = 0
        self.total = 0
        self.max = 0
        self._rng = random.Random(seed)

    def add(self, value: int) -> None:
        self.seen += 1
        self.total += value
        self.max = max(self.max, value)
        if len(self.sample) < self.size:
            self.sample.append(value)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.size:
            self.sample[slot] = value

    def summary(self) -> dict[str, float]:
        """`{p50, p90, p99, max, mean}`; percentiles by nearest rank over the sample."""
        ordered = sorted(self.sample)
        out: dict[str, float] = {}
        for p in PERCENTILES:
            rank = max(1, math.ceil(p / 100 * len(ordered)))
            out[f"p{p}"] = ordered[rank - 1]
        out["max"] = self.max
        out["mean"] = round(self.total / self.seen, 2)
        return out


def text_chars(value: str | list[dict[str, Any]]) -> int:
    """Characters of a string, or of a message list's contents together."""
    if isinstance(value, str):
        return len(value)
    return sum(len(m.get("content") or "") for m in value)


class DatasetStats:
    """Collects, over valid records: character (and token) lengths of each text field, the
    label balance of unpaired data, and the extra field names of prompt data."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._chars: dict[str, Reservoir] = {}
        self._tokens: dict[str, Reservoir] = {}
        self.valid_rows = 0
        self.desirable = 0
        self.undesirable = 0
        self.extra_fields: set[str] = set()

    def _reservoir(self, table: dict[str, Reservoir], field: str) -> Reservoir:
        if field not in table:
            table[field] = Reservoir(seed=self._seed)
        return table[field]

    def add(self, record: dict[str, Any], kind: str) -> None:
        """Count one canonical record (see `kinds.to_record`)."""
        self.valid_rows += 1
        for field in ("prompt", *COMPLETION_FIELDS[kind]):
            self._reservoir(self._chars, field).add(text_chars(record[field]))
        if kind == "unpaired":
            if record["label"]:
                self.desirable += 1
            else:
                self.undesirable += 1
        if kind == "prompt":
            for name in record.keys() - {"prompt"} - self.extra_fields:
                if len(self.extra_fields) >= _MAX_FIELD_NAMES:
                    break
                self.extra_fields.add(name)

    def add_tokens(self, field: str, count: int) -> None:
        """Count the token length of one rendered field."""
        self._reservoir(self._tokens, field).add(count)

    def to_dict(self, kind: str | None, rows: int) -> dict[str, Any]:
        """The statistics as a JSON-ready dict."""
        fields: dict[str, dict[str, Any]] = {}
        for field, reservoir in self._chars.items():
            fields[field] = {"chars": reservoir.summary()}
            if field in self._tokens:
                fields[field]["tokens"] = self._tokens[field].summary()
        out: dict[str, Any] = {"rows": rows, "valid_rows": self.valid_rows, "kind": kind}
        out["fields"] = fields
        if kind == "unpaired":
            labelled = self.desirable + self.undesirable
            share = round(self.desirable / labelled, 4) if labelled else None
            out["label_balance"] = {
                "desirable": self.desirable,
                "undesirable": self.undesirable,
                "desirable_share": share,
            }
        if kind == "prompt":
            out["extra_fields"] = sorted(self.extra_fields)
        return out
