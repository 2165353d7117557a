"""The spec's `integrations`: each tracker's own files, read back with that library's reader."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gro_core.spec import SpecError, load_spec
from gro_core.trainers import JsonlWriter, run
from tests.helpers.wandb_log import read_records

STEPS = 2


def _doc(**extra: Any) -> dict[str, Any]:
    return {
        "name": "tracked",
        "model": "builtin:tiny-llama",
        "method": "grpo",
        "data": {"task": "builtin:arithmetic"},
        "rollout": {"num_generations": 2, "max_new_tokens": 3},
        "train": {"steps": STEPS, "batch_size": 2, "lr": 1e-3, "warmup_steps": 0},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
    } | extra


TRACKERS = [
    {"type": "tensorboard"},
    {"type": "wandb", "project": "gro-test", "tags": ["t"]},
    {"type": "mlflow", "experiment": "gro-test"},
]


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny GRPO run writing to all three trackers (and its own metrics.jsonl)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.setenv("WANDB_SILENT", "true")
    out = tmp_path_factory.mktemp("tracked")
    writer = JsonlWriter(out)
    try:
        run(load_spec(_doc(integrations=TRACKERS)), out, [writer])
    finally:
        writer.close()
        mp.undo()
    return out


def _metrics(out: Path) -> dict[tuple[int, str], float]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return {(r["step"], r["name"]): r["value"] for r in map(json.loads, lines)}


def _samples(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_tensorboard_event_files_hold_every_metric_the_spec_and_samples(tracked_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tracked_run / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    expected = _metrics(tracked_run)
    names = {name for _, name in expected}
    assert names <= set(events.Tags()["scalars"])
    for (step, name), value in expected.items():
        (point,) = [e for e in events.Scalars(name) if e.step == step]
        assert point.value == pytest.approx(value, rel=1e-6, abs=1e-6)
    spec_text = events.Tensors("spec/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"method": "grpo"' in spec_text and '"num_generations": 2' in spec_text
    tables = events.Tensors("samples/text_summary")
    assert {t.step for t in tables} == {s["step"] for s in _samples(tracked_run)}
    first = tables[0].tensor_proto.string_val[0].decode()
    assert first.splitlines()[0].startswith("| step | prompt | completion | reward")
    assert _samples(tracked_run)[0]["prompt"].replace("\n", "⏎") in first


@pytest.mark.slow
def test_wandb_offline_run_files_hold_metrics_config_and_samples_table(tracked_run: Path) -> None:
    (run_dir,) = (tracked_run / "wandb").glob("offline-run-*")
    (log,) = run_dir.glob("run-*.wandb")
    records = read_records(log)
    history: dict[tuple[int, str], Any] = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            items = {i.nested_key[0] if i.nested_key else i.key: i for i in r.history.item}
            step = int(json.loads(items["_step"].value_json))
            for key, item in items.items():
                history[(step, key)] = json.loads(item.value_json)
    for (step, name), value in _metrics(tracked_run).items():
        assert history[(step, name)] == pytest.approx(value, rel=1e-6, abs=1e-6)
    (run_record,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    configs = [r.config for r in records if r.WhichOneof("record_type") == "config"]
    updates = [u for c in [run_record.config, *configs] for u in c.update]
    config = {u.key: json.loads(u.value_json) for u in updates}
    assert config["method"] == "grpo" and config["rollout"]["num_generations"] == 2
    assert run_record.project == "gro-test" and run_record.display_name == "tracked"
    assert list(run_record.tags) == ["t"]
    (table_file, *_) = sorted((run_dir / "files" / "media" / "table").glob("samples_*.json"))
    table = json.loads(table_file.read_text())
    assert table["columns"][:4] == ["step", "prompt", "completion", "reward"]
    first = _samples(tracked_run)[0]
    assert table["data"][0][1:4] == [first["prompt"], first["completion"], first["reward"]]


@pytest.mark.slow
def test_mlflow_local_store_holds_metrics_params_and_samples(tracked_run: Path) -> None:
    from mlflow import MlflowClient

    from gro_core.trainers.trackers.mlflow_tracker import mlflow_name

    store = tracked_run / "mlflow"
    client = MlflowClient(tracking_uri=f"sqlite:///{store.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("gro-test")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == "tracked"
    assert found.data.params["method"] == "grpo"
    assert found.data.params["rollout.num_generations"] == "2"
    assert "eval/pass_at_1" in found.data.metrics  # eval/pass@1, in the names MLflow allows
    for (step, name), value in _metrics(tracked_run).items():
        points = client.get_metric_history(found.info.run_id, mlflow_name(name))
        history = {m.step: m.value for m in points}
        assert history[step] == pytest.approx(value, rel=1e-6, abs=1e-6)
    artifacts = Path(client.download_artifacts(found.info.run_id, "", str(tracked_run / "dl")))
    assert json.loads((artifacts / "spec.json").read_text())["train"]["steps"] == STEPS
    table = json.loads((artifacts / "samples.json").read_text())
    expected = _samples(tracked_run)
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    assert [(r["step"], r["completion"]) for r in rows] == [
        (s["step"], s["completion"]) for s in expected
    ]


def test_a_missing_tracker_library_fails_the_job_at_its_start_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gro_core.trainers.loop as loop

    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError

    def no_model(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was loaded before the tracker check")

    monkeypatch.setattr(loop, "load_tokenizer", no_model)
    monkeypatch.setattr(loop, "load_run_model", no_model)
    spec = load_spec(_doc(integrations=[{"type": "tensorboard"}, {"type": "wandb"}]))
    with pytest.raises(SpecError, match=r"integrations\.1: .*wandb.*pip install 'gro\[trackers\]'"):
        run(spec, tmp_path / "run")
    assert not (tmp_path / "run" / "tensorboard").exists()


@pytest.mark.parametrize("key", ["api_key", "token", "WANDB_API_KEY", "password"])
def test_credentials_in_a_tracker_are_refused_pointing_at_the_environment(key: str) -> None:
    with pytest.raises(ValidationError) as err:
        load_spec(_doc(integrations=[{"type": "wandb", key: "abc123"}]))
    assert "never holds credentials" in str(err.value) and "WANDB_API_KEY" in str(err.value)


def test_a_tracker_listed_twice_or_unknown_is_refused() -> None:
    with pytest.raises(ValidationError, match="repeated: tensorboard"):
        load_spec(_doc(integrations=[{"type": "tensorboard"}, {"type": "tensorboard"}]))
    with pytest.raises(ValidationError, match="comet"):
        load_spec(_doc(integrations=[{"type": "comet"}]))


@pytest.mark.slow
def test_a_resumed_run_continues_tensorboard_without_repeating_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setenv("GRO_CACHE_DIR", str(tmp_path.parent / "gro-cache"))
    doc = _doc(
        method="sft",  # no rollouts: the cheapest run that resumes
        data={"task": "builtin:reverse-sft"},
        integrations=[{"type": "tensorboard"}],
        checkpoint={"every": 1, "keep": 2},
    )
    spec = load_spec(doc)
    out = tmp_path / "run"
    run(spec, out)
    shutil.rmtree(out / "checkpoints" / f"step-{STEPS}")  # as if it crashed after step 1
    run(spec, out, resume=True)  # replays step 2
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/lr")] == list(range(1, STEPS + 1))
