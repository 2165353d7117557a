"""/v1/datasets: uploads are validated and kept whole or not at all."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from server.config import Settings
from server.db.models import Dataset
from server.db.session import new_session
from tests.server.conftest import PAIRS, PROMPTS, Api, dpo_spec, jsonl


def stored(settings: Settings) -> tuple[int, list[Path]]:
    """Dataset rows in the database, and files under storage/datasets and storage/tmp."""
    with new_session(settings.database_url) as session:
        rows = session.scalar(select(func.count()).select_from(Dataset))
    files = [p for p in Path(settings.storage_dir).rglob("*") if p.is_file()]
    return rows, files


@pytest.mark.parametrize(
    ("rows", "kind"),
    [
        (PAIRS, "preference"),
        (PROMPTS, "prompt"),
        ([{"prompt": "a", "completion": "b"}], "sft"),
        ([{"prompt": "a", "completion": "b", "label": True}], "unpaired"),
    ],
)
def test_upload_detects_the_kind_and_stores_by_id(alice: Api, settings: Settings, rows, kind):
    response = alice.upload(rows, name="../../etc/evil name.jsonl")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == kind and body["rows"] == len(rows)
    assert body["filename"] == "../../etc/evil name.jsonl"  # shown, never used as a path
    _, files = stored(settings)
    assert [f.relative_to(settings.storage_dir).as_posix() for f in files] == [
        f"datasets/{body['id']}/data.jsonl"
    ]
    assert alice.get(f"/v1/datasets/{body['id']}").json()["sha256"] == body["sha256"]


def test_parquet_upload(alice: Api):
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(PAIRS), buffer)
    response = alice.upload(buffer.getvalue(), name="pairs.parquet")
    assert response.status_code == 201, response.text
    assert (response.json()["format"], response.json()["kind"]) == ("parquet", "preference")


BAD_FILES = [
    (
        b'{"prompt": "a", "chosen": "x", "rejected": "y"}\n{"prompt": "b", "chosen": ',
        "bad_json",
        2,
        None,
    ),
    (jsonl([*PAIRS[:2], {"prompt": "c", "chosen": "x"}]), "missing_field", 3, "rejected"),
    (jsonl([{"prompt": "c", "chosen": 3, "rejected": "y"}]), "wrong_type", 1, "chosen"),
    (b"", "empty_file", None, None),
    (b'{"prompt": "caf\xe9", "chosen": "x", "rejected": "y"}\n', "non_utf8", 1, None),
    (jsonl([{"prompt": "", "chosen": "x", "rejected": "y"}]), "empty_string", 1, "prompt"),
    (jsonl([PAIRS[0], {"prompt": "p", "completion": "c"}]), "mixed_kinds", 2, None),
]


@pytest.mark.parametrize(("body", "code", "line", "field"), BAD_FILES)
def test_bad_file_is_refused_naming_line_and_field(
    alice: Api, settings: Settings, body: bytes, code: str, line, field
):
    response = alice.upload(body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["line"], error["field"]) == (code, line, field)
    assert error["details"][0]["code"] == code
    assert stored(settings) == (0, [])


def test_upload_over_the_limit_is_refused_and_nothing_stored(alice: Api, settings: Settings):
    big = jsonl([{"prompt": "x" * 1000, "chosen": "a", "rejected": "b"}] * 100)  # > 64 KiB
    response = alice.upload(big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "upload_too_large"
    assert stored(settings) == (0, [])


def test_upload_over_the_limit_without_content_length_is_cut_off(alice: Api, settings: Settings):
    big = jsonl([{"prompt": "x" * 1000, "chosen": "a", "rejected": "b"}] * 200)

    def chunks():
        body = b"--b\r\nContent-Disposition: form-data; name=file; filename=a.jsonl\r\n\r\n"
        yield body
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]
        yield b"\r\n--b--\r\n"

    response = alice.post(
        "/v1/datasets",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413, response.text
    assert stored(settings) == (0, [])


def test_unknown_extension_names_the_file_field(alice: Api, settings: Settings):
    response = alice.upload(jsonl(PAIRS), name="pairs.csv")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "file"
    assert stored(settings) == (0, [])


def test_validate_is_a_dry_run_with_all_errors_and_stats(alice: Api, settings: Settings):
    rows = [{"prompt": "p", "chosen": 1, "rejected": "r"}] * 150 + PAIRS
    response = alice.upload(rows, path="/validate")
    assert response.status_code == 200
    report = response.json()
    assert not report["ok"] and report["error_count"] == 150
    assert len(report["errors"]) == 100 and report["errors"][0]["line"] == 1
    assert report["stats"]["rows"] == 158
    good = alice.upload(PAIRS, path="/validate").json()
    assert good["ok"] and good["kind"] == "preference" and good["errors"] == []
    assert stored(settings) == (0, [])


def test_list_pages_newest_first(alice: Api):
    ids = [alice.dataset(PAIRS) for _ in range(5)]
    first = alice.get("/v1/datasets", params={"limit": 2}).json()
    assert [d["id"] for d in first["data"]] == ids[::-1][:2] and first["has_more"]
    second = alice.get("/v1/datasets", params={"limit": 10, "after": first["last_id"]}).json()
    assert [d["id"] for d in second["data"]] == ids[::-1][2:] and not second["has_more"]


def test_rows_are_read_with_offset_and_limit(alice: Api):
    dataset = alice.dataset(PROMPTS)
    page = alice.get(f"/v1/datasets/{dataset}/rows", params={"offset": 2, "limit": 3}).json()
    assert page["data"] == PROMPTS[2:5] and page["total"] == len(PROMPTS)
    assert alice.get(f"/v1/datasets/{dataset}/rows", params={"limit": 101}).status_code == 422


def test_delete_is_refused_while_an_active_job_uses_it(alice: Api, settings: Settings):
    dataset = alice.dataset(PAIRS)
    job = alice.job(dpo_spec(dataset))
    response = alice.delete(f"/v1/datasets/{dataset}")
    assert response.status_code == 409 and job["id"] in response.json()["error"]["message"]
    assert alice.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "cancelled"
    assert alice.delete(f"/v1/datasets/{dataset}").json()["deleted"] is True
    assert alice.get(f"/v1/datasets/{dataset}").status_code == 404
    assert stored(settings) == (0, [])


def test_another_owners_dataset_is_not_found(alice: Api, bob: Api, admin: Api):
    dataset = alice.dataset(PAIRS)
    for path in (f"/v1/datasets/{dataset}", f"/v1/datasets/{dataset}/rows"):
        assert bob.get(path).status_code == 404
    assert bob.delete(f"/v1/datasets/{dataset}").status_code == 404
    assert bob.get("/v1/datasets").json()["data"] == []
    assert admin.get(f"/v1/datasets/{dataset}").status_code == 200
    # bob cannot train on it either: the reference is refused as if it did not exist
    response = bob.submit(dpo_spec(dataset))
    assert response.status_code == 422 and response.json()["error"]["field"] == "data.train"
