"""Stream rows out of the three dataset formats: JSONL, Parquet, a saved Hugging Face dataset.

Every reader yields one row at a time, numbered from 1 (the physical line of a JSONL file, the row
of a table), so memory stays flat in the file's size and every problem can name where it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq

from gro_core.data.issues import DataIssue, DatasetError, type_name

DEFAULT_MAX_LINE_BYTES = 1 << 20
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")

# Rows converted to Python objects at a time; bounds memory whatever the file's batch size.
_BATCH_ROWS = 1024
# Chunk size used to skip over the rest of an over-long line without holding it.
_SKIP_CHUNK = 1 << 16
_UTF8_BOM = b"\xef\xbb\xbf"

Record = dict[str, Any] | DataIssue
Reader = Callable[[Path, int], Iterator[tuple[int, Record]]]


# --- JSONL ---------------------------------------------------------------------------------------


def _skip_rest_of_line(f: Any) -> int:
    """Read past the current line in bounded chunks; return the bytes skipped (newline excluded)."""
    skipped = 0
    while chunk := f.readline(_SKIP_CHUNK):
        if chunk.endswith(b"\n"):
            return skipped + len(chunk) - 1
        skipped += len(chunk)
    return skipped


def _parse_line(raw: bytes, line: int) -> Record | None:
    """Turn one JSONL line into a row, an issue, or None for a blank line (skipped, not counted)."""
    if line == 1 and raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]  # editors on Windows write one; it is not part of the JSON
    if not raw.strip():
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start]
        msg = f"line is not valid UTF-8: byte 0x{bad:02x} at byte {exc.start + 1}"
        return DataIssue(line, None, "non_utf8", msg)
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return DataIssue(line, None, "bad_json", f"not valid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return DataIssue(line, None, "bad_json", "not valid JSON: nested too deeply")
    if not isinstance(row, dict):
        msg = f"each line must be a JSON object, got {type_name(row)}"
        return DataIssue(line, None, "not_object", msg)
    return row


def _iter_jsonl(path: Path, max_line_bytes: int) -> Iterator[tuple[int, Record]]:
    """JSONL rows, read line by line in binary so bad bytes and huge lines become issues."""
    with path.open("rb") as f:
        line = 0
        # readline's limit keeps a runaway line (a whole file without newlines) out of memory.
        while raw := f.readline(max_line_bytes + 1):
            line += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                size = len(raw) + _skip_rest_of_line(f)
                msg = (
                    f"line is {size:,} bytes, over the limit of {max_line_bytes:,} bytes "
                    "(raise max_line_bytes to accept it)"
                )
                yield line, DataIssue(line, None, "line_too_long", msg)
                continue
            record = _parse_line(raw, line)
            if record is not None:
                yield line, record


# --- Arrow tables: Parquet and saved Hugging Face datasets ---------------------------------------


def _iter_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[int, Record]]:
    """Rows of Arrow record batches as dicts, numbered from 1, converted a slice at a time."""
    row = 1
    for batch in batches:
        for offset in range(0, batch.num_rows, _BATCH_ROWS):
            for values in batch.slice(offset, _BATCH_ROWS).to_pylist():
                yield row, values
                row += 1


def _iter_parquet(path: Path, max_line_bytes: int) -> Iterator[tuple[int, Record]]:
    """Parquet rows, read a record batch at a time (never the whole table)."""
    del max_line_bytes  # a limit on JSONL lines; a Parquet row has no line
    yield from _iter_batches(pq.ParquetFile(path).iter_batches(batch_size=_BATCH_ROWS))


def _arrow_files(directory: Path) -> list[Path]:
    """The `data-*.arrow` files of a `Dataset.save_to_disk` directory, in the dataset's order."""
    if (directory / "dataset_dict.json").exists():
        splits = sorted(p.name for p in directory.iterdir() if p.is_dir())
        examples = ", ".join(str(directory / s) for s in splits[:3])
        msg = f"this directory holds a DatasetDict; point at one split instead, e.g. {examples}"
        raise DatasetError([DataIssue(None, None, "not_a_dataset", msg)], path=str(directory))
    state = directory / "state.json"
    if state.exists():
        # state.json lists the shards in order; a glob would sort data-10 before data-2.
        names = [entry["filename"] for entry in json.loads(state.read_text())["_data_files"]]
        return [directory / name for name in names]
    files = sorted(directory.glob("data-*.arrow"))
    if not files:
        msg = "directory is not a saved Hugging Face dataset (no state.json or data-*.arrow files)"
        raise DatasetError([DataIssue(None, None, "not_a_dataset", msg)], path=str(directory))
    return files


def _hf_batches(directory: Path) -> Iterator[pa.RecordBatch]:
    """Record batches of every shard in turn; each shard is an Arrow IPC *stream*, not a file."""
    for file in _arrow_files(directory):
        with pa.OSFile(str(file), "rb") as source:
            yield from pyarrow.ipc.open_stream(source)


def _iter_hf_dir(path: Path, max_line_bytes: int) -> Iterator[tuple[int, Record]]:
    """Rows of a saved Hugging Face dataset, numbered across shards, read batch by batch."""
    del max_line_bytes
    yield from _iter_batches(_hf_batches(path))


# --- Dispatch ------------------------------------------------------------------------------------


def detect_format(path: str | Path) -> str:
    """`jsonl`, `parquet` or `hf_dataset`, from the extension or from being a directory.

    Raises FileNotFoundError for a missing path and DatasetError (`unsupported_format`) otherwise.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    if path.is_dir():
        return "hf_dataset"
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    known = ", ".join(JSONL_SUFFIXES + PARQUET_SUFFIXES)
    msg = (
        f"cannot tell the format of '{path.name}': use a {known} file "
        "or a saved Hugging Face dataset directory"
    )
    raise DatasetError([DataIssue(None, None, "unsupported_format", msg)], path=str(path))


_READERS: dict[str, Reader] = {
    "jsonl": _iter_jsonl,
    "parquet": _iter_parquet,
    "hf_dataset": _iter_hf_dir,
}


def iter_records(
    path: str | Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, Record]]:
    """Yield `(line, row_or_issue)`: a dict per row, a DataIssue per line that is not one.

    A file that cannot be read at all, or stops being readable part-way, raises DatasetError
    (`unsupported_format`, `not_a_dataset`, `unreadable_file`); a missing one FileNotFoundError.
    """
    path = Path(path)
    reader = _READERS[detect_format(path)]
    line = 0
    try:
        for line, record in reader(path, max_line_bytes):
            yield line, record
    except (pa.ArrowException, OSError, KeyError, json.JSONDecodeError) as exc:
        # KeyError / JSONDecodeError: a state.json that is not what save_to_disk writes.
        where = f"after row {line}" if line else "at the start"
        msg = f"cannot read the file {where}: {type(exc).__name__}: {exc}"
        issue = DataIssue(None, None, "unreadable_file", msg)
        raise DatasetError([issue], path=str(path)) from exc


def iter_rows(
    path: str | Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield `(line, row)` for every row of a JSONL, Parquet or saved Hugging Face dataset.

    `line` is 1-based: the physical line in a JSONL file (blank lines are skipped but keep their
    number), the row index in a table. Rows are returned as read, without validation; a line that
    is not a JSON object (or not UTF-8, or too long) raises DatasetError naming it.
    """
    for line, record in iter_records(path, max_line_bytes=max_line_bytes):
        if isinstance(record, DataIssue):
            raise DatasetError([record], path=str(path))
        yield line, record
