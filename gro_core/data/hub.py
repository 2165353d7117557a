"""Hugging Face datasets by name: load one split with the `datasets` library, rename its columns
onto gro's fields, and feed its rows to the same validator as a file's.

Rows are numbered from 1 in the split's order (row N is `dataset[N - 1]`), and problems read
`row 17, field chosen: ...`. `datasets` is an optional dependency (the `hub` extra); it is only
imported here, when a Hub dataset is asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gro_core.data.issues import DataIssue, DatasetError
from gro_core.data.readers import Bounds, Record, iter_arrow_batches
from gro_core.data.validate import ValidationReport, load_stream, validate_stream
from gro_core.spec.hub import HubDataset, is_path

if TYPE_CHECKING:
    import datasets

UNIT = "row"


def _error(source: HubDataset, code: str, message: str, field: str | None = None) -> DatasetError:
    issue = DataIssue(None, field, code, message)
    return DatasetError([issue], path=source.label(), unit=UNIT)


def _load_split(source: HubDataset) -> datasets.Dataset:
    """The split, through the library's own resolution (a Hub repo id or a local directory;
    HF_DATASETS_OFFLINE=1 keeps it to the local cache and local paths)."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - the hub extra is installed in CI
        raise _error(source, "missing_dependency", "install gro[hub] to read Hub datasets") from exc
    local = _is_local_dir(source.hub)
    path = str(Path(source.hub).expanduser()) if local else source.hub
    try:
        loaded = datasets.load_dataset(
            path,
            name=source.config,
            split=source.split,
            revision=source.revision,
            **(_local_options(datasets, path) if local else {}),
        )
    except Exception as exc:
        field = _blamed_key(str(exc))
        raise _error(source, "hub_unavailable", f"{type(exc).__name__}: {exc}", field) from exc
    assert isinstance(loaded, datasets.Dataset)  # a split was named, so never a DatasetDict
    return loaded


def _local_options(datasets: Any, path: str) -> dict[str, Any]:
    """How a local directory is read: the library's cache keys it by the directory's *name*,
    so two directories called alike would share (and fail on) one entry, and it would serve
    stale rows after the files change. A cache per resolved path, rebuilt on every read."""
    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]
    return {
        "cache_dir": str(Path(datasets.config.HF_DATASETS_CACHE) / "gro-local" / digest),
        "download_mode": datasets.DownloadMode.FORCE_REDOWNLOAD,
        "verification_mode": datasets.VerificationMode.NO_CHECKS,
    }


def _is_local_dir(name: str) -> bool:
    """Whether `datasets` reads `name` from this machine (it looks for a directory first)."""
    try:
        return is_path(name) or Path(name).is_dir()
    except (OSError, ValueError):
        return is_path(name)


def _blamed_key(message: str) -> str | None:
    """The spec key an error from `load_dataset` is about, when it says so."""
    lowered = message.lower()
    for key, words in (("split", ("split",)), ("config", ("config", "builderconfig"))):
        if any(word in lowered for word in words):
            return key
    return None


def _renaming(source: HubDataset, names: list[str]) -> dict[str, str]:
    """dataset column → gro field, once every mapped column is known to exist."""
    missing = [(target, col) for target, col in source.columns.items() if col not in names]
    if missing:
        target, column = missing[0]
        msg = f"no column {column!r} in the dataset; its columns: {', '.join(names)}"
        raise _error(source, "unknown_column", msg, f"columns.{target}")
    return {column: target for target, column in source.columns.items()}


def _renamed(row: dict[str, Any], renaming: dict[str, str]) -> dict[str, Any]:
    """The row in gro's field names; a mapped field replaces a column of the same name."""
    taken = set(renaming) | set(renaming.values())
    out = {name: value for name, value in row.items() if name not in taken}
    for column, target in renaming.items():
        out[target] = row[column]
    return out


def hub_records(source: HubDataset, bounds: Bounds | None = None) -> Iterator[tuple[int, Record]]:
    """`(row, row_or_issue)` for every row of the split, in gro's field names, within `bounds`
    (rows, bytes per row; a row too large is an issue, too many rows an error)."""
    bounds = bounds or Bounds()
    split = _load_split(source)
    renaming = _renaming(source, list(split.column_names))
    if split.num_rows > bounds.rows:
        msg = f"the split has {split.num_rows:,} rows, over the limit of {bounds.rows:,} rows"
        raise _error(source, "too_many_rows", msg)
    table = split.with_format("arrow")[:]  # honours an indices mapping, unlike split.data
    for row, record in iter_arrow_batches(table.to_batches(), bounds, source.label()):
        yield row, record if isinstance(record, DataIssue) else _renamed(record, renaming)


def load_hub(source: HubDataset, kind: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """`load_rows` for a Hub dataset: `(kind, canonical records)`; DatasetError naming the
    dataset and each bad row and field (`row 17, field chosen: ...`)."""
    return load_stream(hub_records(source), source.label(), kind, unit=UNIT)


def validate_hub(
    source: HubDataset,
    *,
    bounds: Bounds | None = None,
    expected_kind: str | None = None,
    tokenizer: Any = None,
) -> ValidationReport:
    """`validate_file` for a Hub dataset: every problem reported (one it cannot be read at
    all, or a mapped column it lacks, as a dataset-level issue), none raised."""
    records = hub_records(source, bounds)
    return validate_stream(
        records, source.label(), expected_kind=expected_kind, tokenizer=tokenizer
    )
