"""Run the suite through the API and collect what the report needs into one JSON document."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.validation.suite import (
    REVERSED_SHARE,
    SFT_TASK,
    WARMUP_BATCH,
    Budget,
    evaluation_request,
    offline_comparison,
    online_comparison,
    warmup_spec,
)
from client.http import GroClient
from gro_core.tasks import generate, reverse_copy_demonstrations

POLL_S = 5.0
FINISHED = ("succeeded", "failed", "cancelled")
CURVE_METRICS = {"online": "eval/reward", "offline": "eval/accuracy"}

Say = Callable[[str], None]


def wait_for(
    client: GroClient,
    ids: list[str],
    say: Say,
    what: str,
    get: Callable[[str], dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Poll until every id has finished; their last state."""
    get = get or client.job
    states: dict[str, dict[str, Any]] = {}
    last = ""
    while True:
        states = {i: get(i) for i in ids}
        counts: dict[str, int] = {}
        for state in states.values():
            counts[state["status"]] = counts.get(state["status"], 0) + 1
        line = f"{what}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        if line != last:
            say(line)
            last = line
        if all(s["status"] in FINISHED for s in states.values()):
            return states
        time.sleep(POLL_S)


def upload_rows(client: GroClient, rows: list[dict], path: Path) -> str:
    """`rows` written to `path` as JSONL and uploaded: the dataset's id."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return client.upload_dataset(path)["id"]


def upload_inputs(client: GroClient, budget: Budget, folder: Path) -> tuple[str, str]:
    """(warm-up demonstrations, offline SFT rows the mixed variant draws from) as datasets."""
    demos = reverse_copy_demonstrations(
        budget.warmup_steps * WARMUP_BATCH, seed=0, reversed_share=REVERSED_SHARE
    )
    mix = generate(SFT_TASK.removeprefix("builtin:"), budget.mix_rows, seed=1234, split="train")
    return (
        upload_rows(client, demos, folder / "warmup-demonstrations.jsonl"),
        upload_rows(client, mix, folder / "mix-rows.jsonl"),
    )


def _wall_s(job: dict[str, Any]) -> float | None:
    if not job.get("started_at") or not job.get("finished_at"):
        return None
    started, finished = (datetime.fromisoformat(job[k]) for k in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


def _run_record(
    client: GroClient, job: dict[str, Any], group: str, evaluation: dict[str, Any] | None
) -> dict[str, Any]:
    name = CURVE_METRICS[group]
    series = client.metrics(job["id"], [name], max_points=100_000)["series"].get(name, {})
    spec = job["spec"]
    per_step = spec["train"]["batch_size"] * (
        spec["rollout"]["num_generations"] if group == "online" else 2
    )
    return {
        "job": job["id"],
        "group": group,
        "variant": job["variant"],
        "seed": job["seed"],
        "status": job["status"],
        "error": job["error"],
        "wall_s": _wall_s(job),
        "samples_per_step": per_step,
        "curve": {"steps": series.get("steps", []), "values": series.get("values", [])},
        "final": evaluation["results"] if evaluation else {},
        "evaluation": evaluation["id"] if evaluation else None,
    }


def run_suite(client: GroClient, budget: Budget, folder: Path, say: Say = print) -> dict[str, Any]:
    """Submit everything, wait, evaluate every final checkpoint alike, collect the results."""
    started = time.time()
    folder.mkdir(parents=True, exist_ok=True)
    demos, mix = upload_inputs(client, budget, folder)
    warmup_doc = warmup_spec(budget, demos)
    warmup = client.submit(warmup_doc)
    say(f"warm-up {warmup['id']} ({budget.warmup_steps} SFT steps)")
    comparisons = {
        "online": client.compare(online_comparison(budget, warmup["id"], mix)),
        "offline": client.compare(offline_comparison(budget, warmup["id"])),
    }
    for group, comparison in comparisons.items():
        say(f"{group}: comparison {comparison['id']}, {len(comparison['jobs'])} jobs")
    jobs = {j["id"]: (group, j) for group, c in comparisons.items() for j in c["jobs"]}
    finished = wait_for(client, [warmup["id"], *jobs], say, "training")
    evaluations = {
        job_id: client.evaluate(evaluation_request(budget, job_id))["id"]
        for job_id, state in finished.items()
        if state["status"] == "succeeded" and job_id in jobs
    }
    evaluated = wait_for(client, list(evaluations.values()), say, "evaluation", client.evaluation)
    runs = [
        _run_record(
            client, finished[job_id], group, evaluated.get(evaluations.get(job_id, ""), None)
        )
        for job_id, (group, _) in jobs.items()
    ]
    return {
        "budget": budget.as_dict(),
        "warmup": {
            "job": warmup["id"],
            "final": finished[warmup["id"]]["final_metrics"],
            "spec": warmup_doc,
        },
        "comparisons": {
            g: {"id": c["id"], "variants": [v["label"] for v in c["variants"]], "base": c["base"]}
            for g, c in comparisons.items()
        },
        "runs": runs,
        "wall_s": time.time() - started,
    }
