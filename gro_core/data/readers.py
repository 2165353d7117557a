"""Stream rows out of the three dataset formats: JSONL, Parquet, a saved Hugging Face dataset.

Every reader yields one row at a time, numbered from 1 (the physical line of a JSONL file, the row
of a table), so memory stays flat in the file's size and every problem can name where it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import pyarrow.parquet as pq

from gro_core.data.issues import DataIssue, DatasetError, type_name

DEFAULT_MAX_LINE_BYTES = 1 << 20
"""Largest JSONL line, and largest Parquet / Arrow row (its cells' bytes once decompressed)."""
DEFAULT_MAX_ROWS = 2_000_000
"""Most rows one file may hold (counted while streaming, and read from a Parquet footer)."""
DEFAULT_MAX_BYTES = 4 << 30
"""Most bytes a Parquet file may decompress to (a JSONL file is its own size)."""
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")

# Rows converted to Python objects at a time; bounds memory whatever the file's batch size.
_BATCH_ROWS = 1024
# Chunk size used to skip over the rest of an over-long line without holding it.
_SKIP_CHUNK = 1 << 16
_UTF8_BOM = b"\xef\xbb\xbf"

Record = dict[str, Any] | DataIssue
Reader = Callable[[Path, "Bounds"], Iterator[tuple[int, Record]]]


@dataclass(frozen=True)
class Bounds:
    """What one file may hold: bytes per line or row (`line`), rows, decompressed bytes."""

    line: int = DEFAULT_MAX_LINE_BYTES
    rows: int = DEFAULT_MAX_ROWS
    bytes: int = DEFAULT_MAX_BYTES


def _file_issue(code: str, message: str, path: Path) -> DatasetError:
    return DatasetError([DataIssue(None, None, code, message)], path=str(path))


def _too_many_rows(rows: int, bounds: Bounds, path: Path) -> DatasetError:
    msg = f"the file has {rows:,} rows or more, over the limit of {bounds.rows:,} rows"
    return _file_issue("too_many_rows", msg, path)


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


def _iter_jsonl(path: Path, bounds: Bounds) -> Iterator[tuple[int, Record]]:
    """JSONL rows, read line by line in binary so bad bytes and huge lines become issues."""
    max_line_bytes, rows = bounds.line, 0
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
                rows += 1
                if rows > bounds.rows:
                    raise _too_many_rows(rows, bounds, path)
                yield line, record


# --- Arrow tables: Parquet and saved Hugging Face datasets ---------------------------------------


def _row_sizes(batch: pa.RecordBatch) -> tuple[list[int], list[str]]:
    """Each row's bytes in its string and binary columns, and the largest column of each."""
    sizes = [0] * batch.num_rows
    largest = [""] * batch.num_rows
    biggest = [-1] * batch.num_rows
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if not (
            pa.types.is_string(column.type)
            or pa.types.is_large_string(column.type)
            or pa.types.is_binary(column.type)
            or pa.types.is_large_binary(column.type)
        ):
            continue
        lengths = pc.fill_null(pc.binary_length(column), 0).to_pylist()
        for i, n in enumerate(lengths):
            sizes[i] += n
            if n > biggest[i]:
                biggest[i], largest[i] = n, name
    return sizes, largest


def _checked_rows(batch: pa.RecordBatch, first: int, bounds: Bounds) -> Iterator[Record]:
    """The slice's rows as dicts, or an issue for each row over the byte limit (measured on
    its Arrow buffers, before any Python object is built from it)."""
    if batch.get_total_buffer_size() <= bounds.line:
        yield from batch.to_pylist()
        return
    sizes, columns = _row_sizes(batch)
    for i, size in enumerate(sizes):
        if size > bounds.line:
            msg = (
                f"row is {size:,} bytes (most of it in column {columns[i]!r}), over the limit "
                f"of {bounds.line:,} bytes"
            )
            yield DataIssue(first + i, columns[i] or None, "row_too_large", msg)
        else:
            yield batch.slice(i, 1).to_pylist()[0]


def _iter_batches(
    batches: Iterable[pa.RecordBatch], bounds: Bounds, path: Path
) -> Iterator[tuple[int, Record]]:
    """Rows of Arrow record batches as dicts, numbered from 1, converted a slice at a time;
    rows are counted against the maximum as they come (a footer may understate them)."""
    row = 1
    for batch in batches:
        if row - 1 + batch.num_rows > bounds.rows:
            raise _too_many_rows(row - 1 + batch.num_rows, bounds, path)
        for offset in range(0, batch.num_rows, _BATCH_ROWS):
            for values in _checked_rows(batch.slice(offset, _BATCH_ROWS), row, bounds):
                yield row, values
                row += 1


def iter_arrow_batches(
    batches: Iterable[pa.RecordBatch], bounds: Bounds, label: str
) -> Iterator[tuple[int, Record]]:
    """`_iter_batches` for tables from elsewhere (a loaded Hub dataset), named by `label`."""
    yield from _iter_batches(batches, bounds, Path(label))


def _bomb(
    column: str, size: int, first: int, rows: int, bounds: Bounds, path: Path
) -> DatasetError:
    """A column chunk too big for its `rows` (from `first`) to fit the per-row limit."""
    if rows <= 1:
        msg = f"{size:,} bytes once decompressed, over the limit of {bounds.line:,} bytes a row"
    else:
        msg = (
            f"{size:,} bytes once decompressed in rows {first:,}-{first + rows - 1:,}: more "
            f"than {rows:,} rows of at most {bounds.line:,} bytes can hold"
        )
    return DatasetError([DataIssue(first, column, "row_too_large", msg)], path=str(path))


def _check_parquet_footer(meta: pq.FileMetaData, bounds: Bounds, path: Path) -> None:
    """Refuse, from the footer alone and before a page is decompressed, a file with too many
    rows, too many decompressed bytes, or a column chunk too big for its rows to fit the
    per-row limit (a decompression bomb: kilobytes on disk, gigabytes in memory)."""
    if meta.num_rows > bounds.rows:
        raise _too_many_rows(meta.num_rows, bounds, path)
    total, first = 0, 1
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            size = chunk.total_uncompressed_size
            total += size
            if size > bounds.line * max(group.num_rows, 1):
                raise _bomb(chunk.path_in_schema, size, first, group.num_rows, bounds, path)
        first += group.num_rows
    if total > bounds.bytes:
        msg = f"the file decompresses to {total:,} bytes, over the limit of {bounds.bytes:,}"
        raise _file_issue("file_too_large", msg, path)


def _iter_parquet(path: Path, bounds: Bounds) -> Iterator[tuple[int, Record]]:
    """Parquet rows, read a record batch at a time (never the whole table), once the footer
    shows the file within bounds."""
    parquet = pq.ParquetFile(path)
    _check_parquet_footer(parquet.metadata, bounds, path)
    yield from _iter_batches(parquet.iter_batches(batch_size=_BATCH_ROWS), bounds, path)


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


def _iter_hf_dir(path: Path, bounds: Bounds) -> Iterator[tuple[int, Record]]:
    """Rows of a saved Hugging Face dataset, numbered across shards, read batch by batch."""
    yield from _iter_batches(_hf_batches(path), bounds, path)


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
    path: str | Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, bounds: Bounds | None = None
) -> Iterator[tuple[int, Record]]:
    """Yield `(line, row_or_issue)`: a dict per row, a DataIssue per line that is not one.

    A file that cannot be read at all, or stops being readable part-way, raises DatasetError
    (`unsupported_format`, `not_a_dataset`, `unreadable_file`), and so does one over `bounds`
    (`too_many_rows`, `file_too_large`, a Parquet `row_too_large` seen in its footer); a
    missing one FileNotFoundError. `bounds` default: Bounds(line=max_line_bytes).
    """
    path = Path(path)
    bounds = bounds or Bounds(line=max_line_bytes)
    reader = _READERS[detect_format(path)]
    line = 0
    try:
        for line, record in reader(path, bounds):
            yield line, record
    except (pa.ArrowException, OSError, KeyError, json.JSONDecodeError) as exc:
        # KeyError / JSONDecodeError: a state.json that is not what save_to_disk writes.
        where = f"after row {line}" if line else "at the start"
        msg = f"cannot read the file {where}: {type(exc).__name__}: {exc}"
        issue = DataIssue(None, None, "unreadable_file", msg)
        raise DatasetError([issue], path=str(path)) from exc


def iter_rows(
    path: str | Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, bounds: Bounds | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield `(line, row)` for every row of a JSONL, Parquet or saved Hugging Face dataset.

    `line` is 1-based: the physical line in a JSONL file (blank lines are skipped but keep their
    number), the row index in a table. Rows are returned as read, without validation; a line that
    is not a JSON object (or not UTF-8, or too long) raises DatasetError naming it.
    """
    for line, record in iter_records(path, max_line_bytes=max_line_bytes, bounds=bounds):
        if isinstance(record, DataIssue):
            raise DatasetError([record], path=str(path))
        yield line, record
