"""`gro bench methods`: the report from collected results (fast, synthetic), and the whole
thing end to end through a private service with --quick (slow; CI checks it works, not the
numbers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.validation.report import write_report
from bench.validation.stats import auc, curve_band, summarize
from bench.validation.suite import QUICK, offline_comparison, online_comparison

ROOT = Path(__file__).resolve().parents[2]


def fake_run(variant: str, seed: int, final: float, group: str = "online") -> dict:
    steps = [0, 10, 20]
    values = [0.1, 0.1 + (final - 0.1) / 2, final]
    return {
        "job": f"job-{variant}-{seed}",
        "group": group,
        "variant": variant,
        "seed": seed,
        "status": "succeeded",
        "error": None,
        "wall_s": 10.0 + seed,
        "samples_per_step": 4,
        "curve": {"steps": steps, "values": values},
        "final": {
            "eval/reward": final,
            "eval/pass@4": final,
            "eval/kl_ref": 0.1,
            "eval/distinct_2": 0.5,
            "eval/pairwise_similarity": 0.2,
        },
        "evaluation": None,
    }


def fake_results() -> dict:
    runs = [fake_run("gro", s, 0.5 + 0.01 * s) for s in range(3)]
    runs += [fake_run("grpo", s, 0.3 + 0.01 * s) for s in range(3)]
    runs += [fake_run("rloo", s, v) for s, v in enumerate([0.45, 0.55, 0.52])]
    runs += [fake_run(m, s, 0.4, "offline") for m in ("gro", "dpo") for s in range(3)]
    runs.append({**fake_run("dpo", 3, 0.0, "offline"), "status": "failed", "final": {}})
    return {
        "budget": {**QUICK.as_dict(), "seeds": [0, 1, 2, 3]},
        "runs": runs,
        "warmup": {"job": "job-w", "final": {"eval/accuracy": 0.4}, "spec": {}},
        "comparisons": {"online": {"id": "cmp-a"}, "offline": {"id": "cmp-b"}},
        "wall_s": 120.0,
    }


def test_auc_is_the_mean_reward_over_samples_seen():
    run = fake_run("gro", 0, 0.5)  # reward 0.1 -> 0.3 -> 0.5 over 0..80 samples
    assert auc(run) == pytest.approx(np.trapezoid([0.1, 0.3, 0.5], [0, 40, 80]) / 80)


def test_summary_pairs_seeds_against_gro():
    online = [r for r in fake_results()["runs"] if r["group"] == "online"]
    summary = summarize(online, ["gro", "grpo", "rloo"])
    grpo = summary["grpo"]["reward"]
    assert grpo["interval"].mean == pytest.approx(0.31)
    assert grpo["diff"].mean == pytest.approx(-0.2) and grpo["diff"].ci_high < 0
    rloo = summary["rloo"]["reward"]["diff"]
    assert rloo.ci_low < 0 < rloo.ci_high  # mixed signs over seeds
    assert summary["gro"]["reward"]["diff"] is None


def test_curve_band_covers_the_mean():
    runs = [fake_run("gro", s, 0.5 + 0.1 * s) for s in range(4)]
    x, mean, low, high = curve_band(runs)
    assert x.tolist() == [0, 40, 80]
    assert np.all(low <= mean) and np.all(mean <= high) and high[-1] > low[-1]


def test_report_states_its_setup_and_reads_the_intervals(tmp_path: Path):
    path = write_report(fake_results(), tmp_path)
    text = path.read_text()
    for needle in (
        "builtin:tiny-llama",
        "builtin:reverse",
        "Seeds",
        "[0, 1, 2, 3]",
        "## Online methods",
        "## Offline methods",
        "What this does and does not show",
    ):
        assert needle in text, needle
    assert "**grpo**: Δ = -0.200 [-0.200, -0.200]" in text and "lower than gro" in text
    assert "**rloo**" in text and "no difference from gro detected" in text
    assert "| dpo | 3/4 |" in text  # the failed seed is counted, not hidden
    # Computed observations: the spread of final rewards, and who fell below the warm-up.
    assert "runs from 0.310 (grpo) to 0.510 (gro), from 0.400 after the warm-up" in text
    assert "Ended below where they started: grpo." in text
    images = sorted(p.name for p in (tmp_path / "validation").glob("*.png"))
    assert images == ["0-online.png", "1-online.png", "2-online.png", "3-offline.png"]


def test_a_variant_without_finished_seeds_is_not_said_to_have_fallen(tmp_path: Path):
    results = fake_results()
    for run in results["runs"]:
        if run["variant"] == "rloo":
            run.update(status="failed", final={})
    text = write_report(results, tmp_path).read_text()
    assert "| rloo | 0/3 |" in text
    assert "Ended below where they started: grpo." in text  # rloo has no mean to compare


def test_variants_within_a_comparison_share_everything_but_the_method():
    online = online_comparison(QUICK, "job-w", "ds-mix")
    assert online["variants"][0]["label"] == "gro"  # the paired baseline
    assert len(online["variants"]) == 6 + 4 + 1
    assert online["seeds"] == [0, 1]
    offline = offline_comparison(QUICK, "job-w")
    assert [v["overrides"] for v in offline["variants"]] == [
        {"method": m} for m in ("gro", "dpo", "kto", "cpl")
    ]


def quick_run(folder: Path) -> dict:
    """`gro bench methods --quick` through its own private service; its results.json."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gro_core.cli",
            "bench",
            "methods",
            "--quick",
            "--private",
            "--data-dir",
            str(folder / "data"),
            "--out",
            str(folder / "docs"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((folder / "docs" / "validation" / "results.json").read_text())


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("quick")
    return folder, quick_run(folder)


@pytest.mark.slow
def test_quick_run_end_to_end(quick_results: tuple[Path, dict]):
    tmp_path, results = quick_results
    assert len(results["runs"]) == (11 + 4) * 2
    assert all(r["status"] == "succeeded" for r in results["runs"]), [
        (r["variant"], r["error"]) for r in results["runs"] if r["status"] != "succeeded"
    ]
    assert all("eval/reward" in r["final"] for r in results["runs"])
    # Every run has its curve: eval/reward online, the greedy task accuracy offline.
    assert all(r["curve"]["values"] for r in results["runs"]), [
        r["variant"] for r in results["runs"] if not r["curve"]["values"]
    ]
    assert 0.0 <= results["warmup"]["final"]["eval/accuracy"] <= 1.0
    assert results["warmup"]["spec"]["data"]["train"].startswith("ds-")
    text = (tmp_path / "docs" / "validation.md").read_text()
    # gro is the baseline row of each table: online, ablations, mixed, offline
    assert text.count("| gro |") == 4 and "gro + offline mix" in text
    assert len(list((tmp_path / "docs" / "validation").glob("*.png"))) == 4
