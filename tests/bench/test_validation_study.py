"""The validation study v2's runner (bench.validation.study) and report
(bench.validation.study_report): specs and the report on fake results (fast), and `--quick`
run twice with the same seeds (slow)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from bench.validation.design import (
    FULL,
    MAX_MINUTES,
    QUICK,
    Run,
    pilot_estimate,
    plan,
)
from bench.validation.study import reported_point, run_study
from bench.validation.study_report import equal_step, matched_kl, reading, write_report
from bench.validation.study_run import execute, make_job, run_spec
from bench.validation.tuning import Choice
from gro_core.spec import load_spec

WARM = Path("/w/warmup")


def test_the_full_study_fits_90_minutes_on_2_workers_and_scales_with_workers():
    two = pilot_estimate(FULL, workers=2)
    assert two <= MAX_MINUTES
    assert pilot_estimate(FULL, workers=4) < two < pilot_estimate(FULL, workers=1)
    assert len(plan(FULL)) == 283


def _reported(variant: str, group: str = "online", seed: int = 0) -> Run:
    point = {"lr": 1e-3, "method_args": {"beta": 0.5}}
    return Run("reported", "arithmetic", "tiny", group, variant, seed, 60, point)


def test_an_ablation_is_gro_at_its_point_with_one_part_changed():
    doc = run_spec(FULL, _reported("gro anchor=none"), WARM)
    assert doc["method"] == "gro"
    assert doc["method_args"] == {"beta": 0.5, "anchor": "none"}
    assert doc["train"]["lr"] == 1e-3 and doc["model"] == str(WARM)
    # A checkpoint at every evaluation point, none deleted before it is evaluated.
    assert doc["checkpoint"] == {"every": 20, "keep": 4}
    load_spec(doc)  # a valid job spec


def test_the_offline_mix_variant_mixes_sft_rows_into_gro():
    doc = run_spec(FULL, _reported("gro offline_mix=0.5"), WARM, Path("/w/mix.jsonl"))
    assert doc["method"] == "gro"
    assert doc["data"] == {
        "task": "builtin:arithmetic",
        "train": "/w/mix.jsonl",
        "offline_mix": 0.5,
    }
    load_spec(doc)


def test_offline_methods_train_on_the_tasks_preference_pairs():
    doc = run_spec(FULL, _reported("dpo", "offline"), WARM)
    assert doc["method"] == "dpo" and doc["data"] == {"task": "builtin:arithmetic-preference"}
    assert "rollout" not in doc
    load_spec(doc)


def test_ablations_and_mixes_run_at_gros_online_choice():
    gro = {"lr": 3e-4, "method_args": {"beta": 1.0}}
    choices = {
        "tiny/online/gro": Choice(method="gro", point=gro, grid=[]),
        "tiny/online/grpo": Choice(method="grpo", point=None, grid=[]),
    }
    for variant in ("gro", "gro f=exp", "gro offline_mix=0.25"):
        assert reported_point(FULL, _reported(variant), choices) == gro
    assert reported_point(FULL, _reported("grpo"), choices) is None


@pytest.mark.slow  # loads the trainer (torch, transformers): ~10 s on a busy machine
def test_a_finished_run_is_not_run_again_and_a_failed_one_is(tmp_path: Path):
    run = Run("tuning", "reverse", "tiny", "online", "gro", 100, 2, {"lr": 1e-3, "method_args": {}})
    job = make_job(QUICK, run, {"not": "a job spec"}, tmp_path, tmp_path / "eval.json", False)
    record = Path(job["out"]) / "record.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"status": "succeeded", "name": "kept", "evals": {}}))
    assert execute(job)["name"] == "kept"
    record.write_text(json.dumps({"status": "failed", "name": "kept", "evals": {}}))
    again = execute(job)  # run again: this time its spec is refused
    assert again["name"] == run.name and again["status"] == "failed"
    assert json.loads(record.read_text())["error"] == again["error"]


# --- the report, on fake results ---------------------------------------------------------


def _record(variant: str, seed: int, curve: list[tuple[int, float, float]]) -> dict[str, Any]:
    """A reported run whose evaluations are `curve`: (step, kl, reward)."""
    return {
        "stage": "reported",
        "task": "reverse",
        "size": "tiny",
        "group": "online",
        "variant": variant,
        "seed": seed,
        "steps": curve[-1][0],
        "point": {"lr": 1e-3, "method_args": {}},
        "name": f"{variant}-{seed}",
        "status": "succeeded",
        "evals": {str(s): {"eval/kl_ref": k, "eval/reward": r} for s, k, r in curve},
        "wall_s": 1.0,
    }


def _fake_runs() -> list[dict[str, Any]]:
    """gro: reward 0.2 + 0.3·KL up to KL 1 or more; `slow` reaches the same final reward but
    far from the start (0.2 + 0.1·KL up to KL 3); `far` never gets to KL 0.5."""
    runs = []
    for seed, top in enumerate((1.0, 1.2, 1.5)):
        gro = [(0, 0.0, 0.2), (20, top / 2, 0.2 + 0.15 * top), (40, top, 0.2 + 0.3 * top)]
        runs.append(_record("gro", seed, gro))
        slow = [(0, 0.0, 0.2), (20, 1.5, 0.35), (40, 3.0, 0.5 + seed * 0.1)]
        runs.append(_record("slow", seed, slow))
        runs.append(_record("far", seed, [(0, 0.0, 0.2), (20, 0.1, 0.1), (40, 0.4, 0.1)]))
    return runs


def test_matched_kl_reads_every_variant_where_every_run_and_every_gro_seed_reached():
    table = matched_kl(_fake_runs())
    assert table is not None
    # Every run reached KL 0.4 (far's largest), every gro seed KL 1.
    assert table.at_kl == pytest.approx([0.2, 0.4, 1.0])
    gro, slow, far = table.variants
    # At KL 1: gro 0.2 + 0.3 = 0.5 on every seed; slow 0.2 + 0.1 (interpolated on its first
    # segment: 0.2 + (1/1.5)·0.15); far never got there.
    assert gro.at_kl[-1].reward.mean == pytest.approx(0.5)
    assert slow.at_kl[-1].reward.mean == pytest.approx(0.3)
    assert slow.at_kl[-1].diff.ci_high == pytest.approx(-0.2)
    assert far.at_kl[-1].reward is None and far.at_kl[-1].reached == 0
    # At KL 0.4 (on gro's straight line 0.2 + 0.3·KL): far 0.1 against gro 0.32.
    assert far.at_kl[1].reward.mean == pytest.approx(0.1)
    assert far.at_kl[1].diff.mean == pytest.approx(-0.22)


def test_the_reading_says_where_gro_is_above_below_or_indistinguishable():
    runs = _fake_runs()
    equal = equal_step(runs)
    # Final rewards: gro 0.5, 0.56, 0.65; slow 0.5, 0.6, 0.7 (differences 0, +0.04, +0.05).
    assert equal[1]["diff"].mean == pytest.approx((0.0 + 0.04 + 0.05) / 3)
    at_steps, at_kl = reading(equal, matched_kl(runs))
    assert at_steps.startswith("At equal steps: gro is above far")
    assert "indistinguishable from slow" in at_steps
    # slow at KL 1 (0.2 below gro), far at KL 0.4, the largest it reached.
    assert (
        at_kl
        == "At matched KL (the largest of the table where both reached): gro is above slow, far."
    )


def _fake_results() -> dict[str, Any]:
    choice = Choice(method="gro", point={"lr": 1e-3, "method_args": {}}, grid=[])
    budget = dataclasses.asdict(FULL)
    return {
        "budget": budget,
        "workers": 2,
        "estimate_minutes": 70.0,
        "warmups": [],
        "tuning": {"runs": [], "choices": {"tiny/online/gro": choice.model_dump()}},
        "runs": _fake_runs(),
        "skipped": ["reported-reverse-tiny-online-awr-s0"],
        "stage_s": {},
        "wall_s": 600.0,
    }


def test_the_report_has_tables_plots_the_cut_and_what_is_not_shown(tmp_path: Path):
    path = write_report(_fake_results(), tmp_path)
    text = path.read_text()
    assert path == tmp_path / "validation_v2.md"
    assert (tmp_path / "validation_v2" / "results.json").is_file()
    assert (tmp_path / "validation_v2" / "frontier-reverse-tiny-online.png").stat().st_size > 0
    for needle in (
        "## reverse, tiny, online",
        "| slow | lr 0.001 | 3/3 |",
        "| variant | largest KL | reward at KL 0.2 | Δ vs gro | reward at KL 0.4 |",
        "not reached (0/3)",
        "tuned on `reverse` only",
        "Wall time: 10.0 minutes on 2 workers (estimated beforehand from timed pilots: 70.0, for",
        "Not run, no tuning point succeeded: reported-reverse-tiny-online-awr-s0",
        "## Tuning",
        "## Wall time per method",
    ):
        assert needle in text, needle


# --- --quick, twice ------------------------------------------------------------------------

WALL_TIMES = {"wall_s", "train_s", "eval_s", "train_cpu_s", "eval_cpu_s", "stage_s"}


def _numbers(value: Any) -> Any:
    """`value` without its wall-clock measurements."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items() if k not in WALL_TIMES}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("quick-a")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GRO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "gro-cache"))
        return run_study(QUICK, folder, workers=1, say=lambda _: None), folder


@pytest.mark.slow
def test_quick_runs_every_stage_and_deletes_evaluated_checkpoints(quick, tmp_path: Path):
    results, folder = quick
    runs = results["runs"]
    assert len(runs) == len([r for r in plan(QUICK) if r.stage == "reported"])
    assert all(r["status"] == "succeeded" for r in [*runs, *results["tuning"]["runs"]])
    steps = QUICK.sizes["tiny"].steps
    assert all(sorted(map(int, r["evals"])) == [0, steps] for r in runs)
    assert all(r["evals"]["0"]["eval/kl_ref"] == 0.0 for r in runs)
    assert not list((folder / "runs").glob("reported-*/checkpoints/step-*"))
    assert "## reverse, tiny, offline" in write_report(results, tmp_path).read_text()


@pytest.mark.slow
def test_quick_rerun_with_the_same_seeds_reproduces_every_number_but_wall_times(
    quick, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    first, folder = quick
    monkeypatch.setenv("GRO_CACHE_DIR", str(folder.parent / "gro-cache"))
    second = run_study(QUICK, tmp_path, workers=1, say=lambda _: None)
    assert _numbers(second) == _numbers(first)
    # ...and the comparison could fail: the runs moved, differently per seed.
    kls = {r["evals"][str(r["steps"])]["eval/kl_ref"] for r in first["runs"]}
    assert len(kls) > len(first["runs"]) // 2
