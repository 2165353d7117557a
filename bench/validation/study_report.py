"""The validation study v2's report, from its results (bench.validation.study.run_study):
OUT/validation_v2.md, OUT/validation_v2/results.json and one frontier plot per task, size and
group.

Per task and size: an equal-step table (each variant's final held-out reward and KL to the
warm-up, with the paired difference against gro) and a matched-KL table (reward at KL values
gro's every seed reached, by `gro_core.evaluation.frontier`: interpolated, never extrapolated);
then the tuning table, the wall time per method and a reading generated from the intervals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.validation.design import BASELINE
from bench.validation.report import _pyplot
from bench.validation.stats import describe
from gro_core.evaluation.frontier import (
    Frontier,
    PointAtKL,
    RunCurve,
    frontier,
    kl_grid,
    run_curve,
)
from gro_core.stats import Interval, bootstrap_interval, paired_difference

REPORT = "validation_v2.md"
FOLDER = "validation_v2"


def curve(record: dict[str, Any]) -> RunCurve:
    evals = {int(s): m for s, m in record["evals"].items()}
    return run_curve(
        record["variant"],
        record["seed"],
        {s: m.get("eval/kl_ref") for s, m in evals.items()},
        {s: m.get("eval/reward") for s, m in evals.items()},
    )


def final(record: dict[str, Any], metric: str) -> float | None:
    evals = record.get("evals") or {}
    if record["status"] != "succeeded" or not evals:
        return None
    return evals[max(evals, key=int)].get(metric)


def _by_seed(records: list[dict[str, Any]], metric: str) -> dict[int, float]:
    return {r["seed"]: v for r in records if (v := final(r, metric)) is not None}


def groups(results: dict[str, Any]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Reported runs by (task, size, group), in plan order."""
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in results["runs"]:
        out.setdefault((record["task"], record["size"], record["group"]), []).append(record)
    return out


def equal_step(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant: final reward and KL over seeds, the paired reward difference vs gro."""
    variants = list(dict.fromkeys(r["variant"] for r in records))
    base = _by_seed([r for r in records if r["variant"] == BASELINE], "eval/reward")
    rows = []
    for variant in variants:
        mine = [r for r in records if r["variant"] == variant]
        reward, kl = _by_seed(mine, "eval/reward"), _by_seed(mine, "eval/kl_ref")
        rows.append(
            {
                "variant": variant,
                "point": mine[0]["point"],
                "runs": len(mine),
                "succeeded": sum(r["status"] == "succeeded" for r in mine),
                "reward": _interval(reward),
                "kl": _interval(kl),
                "diff": paired_difference(reward, base) if variant != BASELINE else None,
            }
        )
    return rows


def _interval(values: dict[int, float]) -> Interval | None:
    return bootstrap_interval(list(values.values())) if values else None


def matched_kl(records: list[dict[str, Any]]) -> Frontier | None:
    """Reward at three KL values: half of and the largest KL *every* run reached (each
    variant has a reward there), and the largest every gro seed reached (where the others
    may be reported as not reached). None when gro did not move from KL 0."""
    curves = [curve(r) for r in records if r["status"] == "succeeded"]
    gro = [c.max_kl for c in curves if c.variant == BASELINE]
    every = [c.max_kl for c in curves]
    if not gro or None in every or min(gro) <= 0:  # type: ignore[operator,type-var]
        return None
    common = min(every)  # type: ignore[type-var]
    at_kl = sorted({k for k in (common / 2, common, min(gro)) if k > 0})  # type: ignore[operator,type-var]
    variants = list(dict.fromkeys(r["variant"] for r in records))
    return frontier(curves, at_kl, baseline=BASELINE, variants=variants)


def _largest_paired(points: list[PointAtKL]) -> Interval | None:
    """The paired difference at the largest KL where there is one."""
    return next((p.diff for p in reversed(points) if p.diff is not None), None)


def verdict(diff: Interval | None) -> str | None:
    """'better', 'worse' (than gro) or 'same' (indistinguishable) from a paired interval."""
    if diff is None or diff.n < 2:
        return None
    if diff.ci_low > 0:
        return "better"
    if diff.ci_high < 0:
        return "worse"
    return "same"


def reading(equal: list[dict[str, Any]], matched: Frontier | None) -> list[str]:
    """Sentences from the intervals: where each variant is above, below or indistinguishable
    from gro, at equal steps and at the largest matched KL."""
    lines = []
    for label, verdicts in (
        ("at equal steps", {r["variant"]: verdict(r["diff"]) for r in equal}),
        (
            "at matched KL (the largest of the table where both reached)" if matched else "",
            {v.variant: verdict(_largest_paired(v.at_kl)) for v in matched.variants}
            if matched
            else {},
        ),
    ):
        if not label:
            continue
        sorted_ = {k: [v for v, d in verdicts.items() if d == k] for k in ("worse", "better")}
        same = [v for v, d in verdicts.items() if d == "same"]
        unknown = [v for v, d in verdicts.items() if d is None and v != BASELINE]
        parts = []
        if sorted_["worse"]:
            parts.append(f"gro is above {', '.join(sorted_['worse'])}")
        if sorted_["better"]:
            parts.append(f"gro is below {', '.join(sorted_['better'])}")
        if same:
            parts.append(f"indistinguishable from {', '.join(same)}")
        if unknown:
            parts.append(f"no paired interval for {', '.join(unknown)} (too few seeds reached)")
        said = "; ".join(parts) or "nothing to say"
        lines.append(f"{label[0].upper()}{label[1:]}: {said}.")
    return lines


def plot_frontier(records: list[dict[str, Any]], path: Path, title: str) -> None:
    """Mean held-out reward against KL to the warm-up, one line per variant with its 95%
    band, where its seeds reached that KL."""
    curves = [curve(r) for r in records if r["status"] == "succeeded"]
    table = frontier(curves, kl_grid(curves, 21))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant in table.variants:
        points = [(p.kl, p.reward) for p in variant.at_kl if p.reward is not None]
        if not points:
            continue
        x = [k for k, _ in points]
        ax.plot(x, [r.mean for _, r in points], label=variant.variant)
        low, high = [r.ci_low for _, r in points], [r.ci_high for _, r in points]
        ax.fill_between(x, low, high, alpha=0.15)
    ax.set(xlabel="KL to the warm-up (eval/kl_ref)", ylabel="held-out reward", title=title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _point(point: dict[str, Any] | None) -> str:
    if point is None:
        return "–"
    args = ", ".join(f"{k}={v}" for k, v in sorted(point["method_args"].items()))
    return f"lr {point['lr']:g}" + (f", {args}" if args else "")


def equal_step_table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| variant | point | runs ok | final reward | Δ vs gro | final KL |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        out.append(
            f"| {row['variant']} | {_point(row['point'])} | {row['succeeded']}/{row['runs']} "
            f"| {describe(row['reward'])} | {describe(row['diff'])} | {describe(row['kl'])} |"
        )
    return out


def matched_table(table: Frontier) -> list[str]:
    head = " | ".join(f"reward at KL {k:.3g} | Δ vs gro" for k in table.at_kl)
    out = [f"| variant | largest KL | {head} |", "|---" * (2 + 2 * len(table.at_kl)) + "|"]
    for variant in table.variants:
        cells = []
        for point in variant.at_kl:
            if point.reward is None:
                cells += [f"not reached (0/{variant.runs})", "–"]
            else:
                short = point.reached < variant.runs
                reached = f" ({point.reached}/{variant.runs})" if short else ""
                cells += [describe(point.reward) + reached, describe(point.diff)]
        top = "–" if variant.max_kl is None else f"{variant.max_kl:.3g}"
        out.append(f"| {variant.variant} | {top} | " + " | ".join(cells) + " |")
    return out


def tuning_table(results: dict[str, Any]) -> list[str]:
    out = [
        "| size/group/method | point | final reward | final KL | failed | chosen |",
        "|---|---|---|---|---|---|",
    ]
    for name, choice in results["tuning"]["choices"].items():
        for point in choice["grid"]:
            rewards, kls = point["rewards"], point["kls"]
            reward = f"{sum(rewards) / len(rewards):.3f}" if rewards else "–"
            kl = f"{sum(kls) / len(kls):.3f}" if kls else "–"
            mark = "**chosen**" if point["point"] == choice["point"] else ""
            out.append(
                f"| {name} | {_point(point['point'])} | {reward} | {kl} "
                f"| {point['failed']} | {mark} |"
            )
    return out


def wall_table(results: dict[str, Any]) -> list[str]:
    """Mean wall and CPU seconds of a reported run (training and its evaluations) per size and
    variant: wall time depends on what else the machine ran, CPU time much less."""
    walls: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for r in results["runs"]:
        cpu = r.get("train_cpu_s", 0.0) + r.get("eval_cpu_s", 0.0)
        walls.setdefault((r["size"], r["group"], r["variant"]), []).append((r["wall_s"], cpu))
    out = [
        "| size | group | variant | runs | mean wall s | mean CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for (size, group, variant), values in walls.items():
        wall, cpu = (sum(v[i] for v in values) / len(values) for i in (0, 1))
        out.append(f"| {size} | {group} | {variant} | {len(values)} | {wall:.1f} | {cpu:.1f} |")
    return out


def _budget_lines(results: dict[str, Any]) -> list[str]:
    budget = results["budget"]
    lines = [
        f"Budget `{budget['name']}`: reported seeds {budget['reported_seeds']}, tuning seeds "
        f"{budget['tuning_seeds']} (disjoint), {budget['batch_size']} prompts (or pairs) per "
        f"step, {budget['generations']} samples per prompt, evaluations every "
        f"{budget['eval_every']} steps on {budget['eval_prompts']} held-out prompts (greedy "
        f"reward; KL to the warm-up from the samples; evaluation seed 0 for every checkpoint).",
        "",
    ]
    for name, size in budget["sizes"].items():
        methods = ", ".join(size["online"])
        offline = ", ".join(size["offline"]) or "none"
        lines.append(
            f"- **{name}**: tasks {', '.join(size['tasks'])}; warm-up {size['warmup_steps']} "
            f"SFT steps; reported runs {size['steps']} steps; online {methods}; offline "
            f"{offline}; ablations {', '.join(size['ablations']) or 'none'}; offline-mix "
            f"shares {', '.join(map(str, size['offline_mix'])) or 'none'}."
        )
    if budget["name"] != "full":
        return [
            *lines,
            "",
            "A smoke test of the pipeline (CI): its numbers say nothing of the methods.",
        ]
    lines += [
        "",
        f"The cut, so the full study fits 90 minutes on 2 cores: every grid is tuned on "
        f"`{budget['tuning_task']}` only ({budget['tuning_steps']} steps per grid point), and "
        "its choice is reused for every task; small-llama runs only its listed methods, on its "
        "listed tasks, with an lr-only grid (β at the preset's default).",
    ]
    return lines


def _caveats(results: dict[str, Any]) -> list[str]:
    seeds = len(results["budget"]["reported_seeds"])
    lines = [
        f"- {seeds} reported seeds per variant: a bootstrap interval over {seeds} values is "
        "narrow by construction and can miss the true spread; 'indistinguishable' means the "
        "paired interval contains 0, not that the methods are equal.",
        "- Every run is short; a method that is better with more steps, another lr or another "
        "β than its grid holds is not shown to be.",
        "- The tuning choice comes from one task; on the other tasks each method runs at a "
        "point that may not be its best there (gro included).",
        "- KL is a sequence-level sample estimate from few prompts: it can be slightly negative "
        "near 0, and the matched-KL reading inherits its noise.",
    ]
    if results.get("skipped"):
        lines.append(f"- Not run, no tuning point succeeded: {', '.join(results['skipped'])}.")
    failed = [r["name"] for r in results["runs"] if r["status"] != "succeeded"]
    if failed:
        lines.append(f"- Failed runs (left out of every table): {', '.join(failed)}.")
    return lines


def render(results: dict[str, Any], plots: dict[tuple[str, str, str], str]) -> str:
    minutes = results["wall_s"] / 60
    lines = [
        "# Validation study v2: GRO against what it unifies, tuned fairly, at matched KL",
        "",
        "Generated by `gro bench study` (bench/validation/study.py, study_report.py); the "
        "numbers are in validation_v2/results.json. Do not edit by hand.",
        "",
        *_budget_lines(results),
        "",
        f"Wall time: {minutes:.1f} minutes on {results['workers']} workers "
        f"(estimated beforehand from timed pilots: {results['estimate_minutes']:.1f}, for a "
        "core per worker and nothing else running; a busy machine takes longer).",
        "",
        "Intervals are 95% percentile-bootstrap intervals over seeds; Δ is the paired (same "
        "seed) difference variant − gro. Matched KL: reward read where each run first reached "
        "that KL to the warm-up, interpolated between evaluations, never extrapolated.",
        "",
        "## Reading",
        "",
    ]
    for (task, size, group), records in groups(results).items():
        matched = matched_kl(records)
        for sentence in reading(equal_step(records), matched):
            lines.append(f"- {task}, {size}, {group}: {sentence}")
    lines += ["", "What is not shown:", "", *_caveats(results), ""]
    for (task, size, group), records in groups(results).items():
        lines += [f"## {task}, {size}, {group}", "", "Equal steps (final evaluation):", ""]
        lines += equal_step_table(equal_step(records))
        matched = matched_kl(records)
        lines += [""]
        if matched is None:
            lines += ["Matched KL: gro did not move from KL 0 on every seed; no KL to match.", ""]
        else:
            lines += ["Matched KL:", "", *matched_table(matched), ""]
        if (task, size, group) in plots:
            lines += [f"![frontier]({plots[(task, size, group)]})", ""]
    lines += ["## Tuning", "", *tuning_table(results), "", "## Wall time per method", ""]
    lines += [*wall_table(results), ""]
    return "\n".join(lines)


def write_report(results: dict[str, Any], out: Path) -> Path:
    """OUT/validation_v2.md, its results.json and plots; the report's path."""
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    plots = {}
    for (task, size, group), records in groups(results).items():
        name = f"frontier-{task}-{size}-{group}.png"
        plot_frontier(records, folder / name, f"{task}, {size}-llama, {group}")
        plots[(task, size, group)] = f"{FOLDER}/{name}"
    path = out / REPORT
    path.write_text(render(results, plots))
    return path
