"""What a job produced, through the API: metric series (downsampled, idempotent writes),
samples by step, checkpoints and their tar downloads."""

from __future__ import annotations

import io
import json
import math
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from server.config import Settings
from server.db import outputs
from server.db.ids import new_id
from server.db.models import Checkpoint
from server.db.session import session_scope
from server.storage import signed_query
from tests.server.conftest import PAIRS, Api, dpo_spec


@pytest.fixture
def job_id(alice: Api) -> str:
    return alice.job(dpo_spec(alice.dataset(PAIRS)))["id"]


def test_replayed_metric_writes_are_idempotent(alice: Api, settings: Settings, job_id: str):
    points = [(s, "loss/policy", 1.0 / s) for s in range(1, 11)]
    with session_scope(settings.database_url) as session:
        outputs.write_metrics(session, job_id, points)
    with session_scope(settings.database_url) as session:
        outputs.write_metrics(session, job_id, points[5:])  # a redelivered batch
        outputs.write_metrics(session, job_id, [(3, "reward/mean", math.nan)])
    body = alice.get(f"/v1/jobs/{job_id}/metrics").json()
    assert body["names"] == ["loss/policy", "reward/mean"]
    series = body["series"]["loss/policy"]
    assert series["steps"] == list(range(1, 11)) and series["total_points"] == 10
    assert series["values"] == pytest.approx([1.0 / s for s in range(1, 11)])
    assert body["series"]["reward/mean"]["values"] == [None]  # NaN is stored as null


def test_downsampling_keeps_each_buckets_extremes(alice: Api, settings: Settings, job_id: str):
    rng = np.random.default_rng(0)
    values = rng.normal(size=5000)
    values[1234], values[4321] = 50.0, -50.0  # spikes a mean would hide
    with session_scope(settings.database_url) as session:
        outputs.write_metrics(session, job_id, [(s, "kl/ref", v) for s, v in enumerate(values)])
        outputs.write_metrics(session, job_id, [(s, "other", 0.0) for s in range(10)])
    body = alice.get(f"/v1/jobs/{job_id}/metrics?names=kl/ref&max_points=200").json()
    assert list(body["series"]) == ["kl/ref"]
    series = body["series"]["kl/ref"]
    assert len(series["steps"]) <= 200 and series["total_points"] == 5000
    assert series["steps"] == sorted(series["steps"])
    assert 50.0 in series["values"] and -50.0 in series["values"]
    assert series["steps"][0] == 0 and series["steps"][-1] == 4999
    # every kept point is a real point of the series
    assert all(values[s] == v for s, v in zip(series["steps"], series["values"], strict=True))
    recent = alice.get(f"/v1/jobs/{job_id}/metrics?names=kl/ref&min_step=4990").json()
    assert recent["series"]["kl/ref"]["steps"] == list(range(4990, 5000))


def _bucket_extremes(steps: np.ndarray, values: np.ndarray, bucket_of) -> set[int]:
    """The first and last steps, and each bucket's lowest and highest non-NaN point's step."""
    expected = {int(steps[0]), int(steps[-1])}
    buckets: dict[int, list[int]] = {}
    for i, s in enumerate(steps):
        if not np.isnan(values[i]):
            buckets.setdefault(bucket_of(int(s)), []).append(i)
    for inside in buckets.values():
        expected |= {
            int(steps[min(inside, key=lambda i: values[i])]),
            int(steps[max(inside, key=lambda i: values[i])]),
        }
    return expected


@pytest.mark.parametrize("query", ["whole", "from a step"])
def test_downsampling_matches_a_loop_over_step_buckets(
    alice: Api, settings: Settings, job_id: str, query: str
):
    steps = np.arange(3, 3 + 3 * 1000, 3)  # 1000 points, every third step
    values = np.sin(steps / 7.0) + steps * 0.001
    values[500] = np.nan  # a non-finite point is never an extreme
    with session_scope(settings.database_url) as session:
        outputs.write_metrics(
            session, job_id, zip(steps.tolist(), ["s"] * 1000, values.tolist(), strict=True)
        )
    if query == "whole":  # buckets of a power-of-two width aligned to its multiples
        got = alice.get(f"/v1/jobs/{job_id}/metrics?max_points=100").json()["series"]["s"]
        width = 64  # the narrowest for which steps 3..3000 span at most 49 buckets (47)
        expected = _bucket_extremes(steps, values, lambda s: s // width)
    else:  # a range read in the database: (100 - first - last) / 2 even buckets of its steps
        path = f"/v1/jobs/{job_id}/metrics?max_points=100&min_step=3"
        got = alice.get(path).json()["series"]["s"]
        buckets, span = 49, steps[-1] - steps[0] + 1
        expected = _bucket_extremes(steps, values, lambda s: (s - 3) * buckets // span)
    assert got["steps"] == sorted(expected) and got["total_points"] == 1000
    assert got["values"] == pytest.approx([values[(s - 3) // 3] for s in got["steps"]])


def test_samples_by_step_and_latest(alice: Api, settings: Settings, job_id: str):
    sample = {
        "prompt": "p",
        "completion": "c",
        "reward": 1.0,
        "advantage": 0.5,
        "anchor_distance": -0.2,
        "weight": 0.7,
        "group": 3,
    }
    with session_scope(settings.database_url) as session:
        outputs.write_samples(session, job_id, 1, [sample, {**sample, "reward": 0.0}])
        outputs.write_samples(session, job_id, 2, [{**sample, "advantage": math.inf}])
    with session_scope(settings.database_url) as session:
        outputs.write_samples(session, job_id, 1, [sample, sample])  # replayed: ignored
    latest = alice.get(f"/v1/jobs/{job_id}/samples").json()
    assert latest["steps"] == [1, 2] and len(latest["data"]) == 1
    assert latest["data"][0]["advantage"] is None and latest["data"][0]["extra"] == {"group": 3}
    first = alice.get(f"/v1/jobs/{job_id}/samples?step=1").json()["data"]
    assert [s["reward"] for s in first] == [1.0, 0.0]
    assert first[0]["anchor_distance"] == -0.2 and first[0]["weight"] == 0.7


def test_resume_forgets_outputs_past_the_checkpoint(alice: Api, settings: Settings, job_id: str):
    with session_scope(settings.database_url) as session:
        outputs.write_metrics(session, job_id, [(s, "loss", float(s)) for s in range(1, 9)])
        outputs.write_samples(session, job_id, 7, [{"prompt": "p", "completion": "c"}])
        outputs.delete_after(session, job_id, 5)
    series = alice.get(f"/v1/jobs/{job_id}/metrics").json()["series"]["loss"]
    assert series["steps"] == [1, 2, 3, 4, 5]
    assert alice.get(f"/v1/jobs/{job_id}/samples").json()["steps"] == []


def make_checkpoint(settings: Settings, job_id: str, step: int) -> str:
    relative = f"jobs/{job_id}/checkpoints/step-{step}"
    directory = Path(settings.storage_dir) / relative
    (directory / "sub").mkdir(parents=True)
    (directory / "config.json").write_text('{"a": 1}')
    (directory / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 5000)
    checkpoint = Checkpoint(
        id=new_id("checkpoint"), job_id=job_id, step=step, path=relative, bytes=1_280_008
    )
    with session_scope(settings.database_url) as session:
        outputs.add_checkpoint(session, checkpoint)
    return checkpoint.id


def test_checkpoint_download_is_a_tar_of_the_directory(
    alice: Api, bob: Api, settings: Settings, job_id: str
):
    ckpt = make_checkpoint(settings, job_id, 4)
    listed = alice.get(f"/v1/jobs/{job_id}/checkpoints").json()["data"]
    assert [(c["id"], c["step"]) for c in listed] == [(ckpt, 4)]
    response = alice.get(f"/v1/checkpoints/{ckpt}/download")
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        names = sorted(tar.getnames())
        weights = tar.extractfile(f"{job_id}-step-4/sub/weights.bin").read()
    assert names == [f"{job_id}-step-4/{n}" for n in ("config.json", "sub", "sub/weights.bin")]
    assert weights == bytes(range(256)) * 5000
    assert len(response.content) % 10240 == 0
    assert bob.get(f"/v1/checkpoints/{ckpt}/download").status_code == 404
    assert bob.get(f"/v1/jobs/{job_id}/checkpoints").status_code == 404


def test_signed_link_works_without_a_key_until_it_expires(
    alice: Api, settings: Settings, job_id: str
):
    ckpt = make_checkpoint(settings, job_id, 2)
    url = alice.get(f"/v1/jobs/{job_id}/checkpoints").json()["data"][0]["download_url"]
    client = alice.client
    assert client.get(url).status_code == 200  # no Authorization header
    assert client.get(f"/v1/checkpoints/{ckpt}/download").status_code == 401
    tampered = url.replace(ckpt, make_checkpoint(settings, job_id, 3))
    assert client.get(tampered).status_code == 401
    expired = signed_query(settings.secret_key, ckpt, ttl_s=-1)
    assert client.get(f"/v1/checkpoints/{ckpt}/download?{expired}").status_code == 401
    assert int(url.split("expires=")[1].split("&")[0]) > time.time()


def _trained_checkpoint(settings: Settings, job_id: str, lora: bool) -> str:
    """A real one-step LoRA or full checkpoint of the tiny builtin in the job's storage."""
    from gro_core.spec import load_spec
    from gro_core.trainers import run

    doc = {
        "model": "builtin:tiny-llama",
        "method": "sft",
        "data": {"task": "builtin:reverse-sft"},
        "train": {"steps": 1, "batch_size": 2, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
        "lora": {"r": 2} if lora else None,
    }
    run(load_spec(doc), Path(settings.storage_dir) / "jobs" / job_id)
    checkpoint = Checkpoint(
        id=new_id("checkpoint"),
        job_id=job_id,
        step=1,
        path=f"jobs/{job_id}/checkpoints/step-1",
        bytes=1,
    )
    with session_scope(settings.database_url) as session:
        outputs.add_checkpoint(session, checkpoint)
    return checkpoint.id


@pytest.mark.slow
def test_a_checkpoint_downloads_as_an_exported_model(
    alice: Api, settings: Settings, job_id: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path / "gro-cache"))
    ckpt = _trained_checkpoint(settings, job_id, lora=True)
    url = f"/v1/checkpoints/{ckpt}/download"

    def members(query: str) -> dict[str, bytes]:
        response = alice.get(f"{url}?{query}")
        assert response.status_code == 200, response.text
        with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}

    as_saved = members("format=checkpoint")
    assert f"{job_id}-step-1/trainer.pt" in as_saved
    adapters = members("format=model")
    root = f"{job_id}-step-1-model"
    assert not any(n.endswith("trainer.pt") for n in adapters)
    config = json.loads(adapters[f"{root}/adapter_config.json"])
    assert config["base_model_name_or_path"] == "builtin:tiny-llama"
    merged = members("format=model&merge_lora=true&dtype=bfloat16")
    assert json.loads(merged[f"{root}/config.json"])["dtype"] == "bfloat16"
    assert f"{root}/model.safetensors" in merged and f"{root}/adapter_config.json" not in merged
    refused = alice.get(f"{url}?dtype=bfloat16")
    assert refused.status_code == 422 and "format=model" in refused.text
