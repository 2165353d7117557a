"""Uploads are bounded as they are read: a Parquet decompression bomb (kilobytes on disk, one
400 MB cell) and a file of millions of tiny rows are refused from the footer without being
decompressed, a row over the byte limit is named while streaming, and the row preview cuts
long strings and caps its size."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from server.config import Settings
from server.services import datasets as dataset_service
from tests.server.conftest import Api

BOMB_BYTES = 400 * 2**20

# Built in a child process: the 400 MB cell never counts toward this process's peak memory.
_WRITE_BOMB = f"""
import sys, pyarrow as pa, pyarrow.parquet as pq
cell = pa.array([b"a" * {BOMB_BYTES}], type=pa.binary()).cast(pa.string())
pq.write_table(pa.table({{"prompt": cell}}), sys.argv[1], compression="zstd", compression_level=1)
"""


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: reading the file is the same whatever the database."""
    path = tmp_path / "gro.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("bomb") / "bomb.parquet"
    subprocess.run([sys.executable, "-c", _WRITE_BOMB, str(path)], check=True)
    return path.read_bytes()


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def parquet_bytes(table: pa.Table, tmp_path: Path) -> bytes:
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, compression="zstd")
    return path.read_bytes()


@pytest.mark.slow
def test_a_decompression_bomb_is_refused_without_decompressing_it(alice: Api, bomb: bytes):
    assert len(bomb) < 64 * 1024  # kilobytes on disk
    before = _peak_rss()
    for path in ("/validate", ""):
        response = alice.upload(bomb, name="bomb.parquet", path=path)
        if path == "/validate":
            body = response.json()
            assert response.status_code == 200 and not body["ok"], body
            error = body["errors"][0]
        else:
            assert response.status_code == 422, response.text
            error = response.json()["error"]
        assert error["code"] == "row_too_large" and error["field"] == "prompt"
        assert error["line"] == 1 and "419,430,4" in error["message"]
    assert _peak_rss() - before < 100 * 2**20  # the 400 MB cell was never built
    assert alice.get("/v1/datasets").json()["data"] == []


def test_millions_of_tiny_rows_are_refused_by_the_row_maximum(alice: Api, tmp_path: Path):
    # Dictionary-encoded: 5M rows of one prompt take a few kilobytes.
    indices = pa.array([0] * 5_000_000, type=pa.int32())
    column = pa.DictionaryArray.from_arrays(indices, pa.array(["2+2="]))
    body = parquet_bytes(pa.table({"prompt": column}), tmp_path)
    assert len(body) < 64 * 1024
    response = alice.upload(body, name="many.parquet")
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "too_many_rows"
    assert "5,000,000 rows" in error["message"] and "2,000,000" in error["message"]


def test_a_row_over_the_limit_is_named_while_streaming(
    alice: Api, settings: Settings, tmp_path: Path
):
    """The footer cannot tell (the column's bytes would fit its rows on average): the row
    is measured on its Arrow buffers before it becomes a Python object."""
    settings.limit_row_bytes = 1000
    prompts = ["short"] * 9
    prompts.insert(3, "x" * 3000)
    body = parquet_bytes(pa.table({"prompt": prompts}), tmp_path)
    response = alice.upload(body, name="one-big-row.parquet")
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "row_too_large", error
    assert error["line"] == 4 and error["field"] == "prompt"
    assert "3,000 bytes" in error["message"]


def test_decompressed_file_size_is_bounded(alice: Api, settings: Settings, tmp_path: Path):
    settings.limit_decompressed_bytes = 10_000
    body = parquet_bytes(
        pa.table({"prompt": [f"{i:03d}" + "p" * 500 for i in range(100)]}), tmp_path
    )
    response = alice.upload(body, name="big.parquet")
    assert response.json()["error"]["code"] == "file_too_large"


def test_jsonl_rows_are_counted_against_the_maximum(alice: Api, settings: Settings):
    settings.limit_dataset_rows = 5
    response = alice.upload([{"prompt": f"{i}"} for i in range(8)])
    error = response.json()["error"]
    assert response.status_code == 422 and error["code"] == "too_many_rows"
    assert alice.upload([{"prompt": f"{i}"} for i in range(5)]).status_code == 201


def test_the_preview_cuts_long_strings_and_caps_its_size(
    alice: Api, monkeypatch: pytest.MonkeyPatch
):
    rows = [{"prompt": "q" * 5000, "answer": str(i)} for i in range(10)]
    dataset = alice.dataset(rows)
    page = alice.get(f"/v1/datasets/{dataset}/rows", params={"limit": 10}).json()
    assert page["truncated"] and len(page["data"]) == 10
    prompt = page["data"][0]["prompt"]
    assert prompt.startswith("q" * 2000) and prompt.endswith("[5,000 characters]")
    assert len(prompt) < 2100 and page["data"][0]["answer"] == "0"
    monkeypatch.setattr(dataset_service, "PREVIEW_BYTES", 5000)
    page = alice.get(f"/v1/datasets/{dataset}/rows", params={"limit": 10}).json()
    assert page["truncated"] and len(page["data"]) == 2  # 2 × ~2 KB, the third is over
    short = alice.dataset([{"prompt": "hi"}])
    assert alice.get(f"/v1/datasets/{short}/rows").json()["truncated"] is False
