"""docs/validation.md and its plots, from the collected results (results.json): regenerated
without rerunning anything by `gro bench methods --report-only`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.validation.stats import BASELINE, curve_band, describe, summarize
from bench.validation.suite import (
    ABLATIONS,
    MIXED_LABEL,
    OFFLINE_METHODS,
    ONLINE_METHODS,
    REVERSED_SHARE,
    WARMUP_BATCH,
)

# The tables: title, comparison group, the variants (gro first), what the curve measures.
SECTIONS = [
    ("Online methods", "online", list(ONLINE_METHODS)),
    ("Ablations of GRO's parts", "online", [BASELINE, *ABLATIONS]),
    ("Offline data mixed into online batches", "online", [BASELINE, MIXED_LABEL]),
    ("Offline methods (preference pairs)", "offline", list(OFFLINE_METHODS)),
]
COLUMNS = [
    ("reward", "held-out reward"),
    ("auc", "AUC (mean reward over training)"),
    ("pass@G", "pass@G"),
    ("kl_ref", "KL to reference"),
    ("distinct_2", "distinct-2"),
    ("similarity", "pairwise similarity"),
    ("wall_s", "wall s"),
]


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend, loaded at the first plot: `gro` loads this
    module to register its verbs, and every other command would pay for matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def plot_section(runs: list[dict[str, Any]], variants: list[str], title: str, path: Path) -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4), dpi=110)
    for variant in variants:
        members = [r for r in runs if r["variant"] == variant]
        if not any(r["status"] == "succeeded" and r["curve"]["steps"] for r in members):
            continue
        x, mean, low, high = curve_band(members)
        (line,) = axis.plot(x, mean, label=variant, linewidth=1.6)
        axis.fill_between(x, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
    axis.set_xlabel("samples seen (completions)")
    axis.set_ylabel("held-out greedy reward")
    axis.set_title(f"{title}: mean and 95% CI over seeds")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def table(summary: dict[str, dict[str, Any]], variants: list[str]) -> list[str]:
    header = "| variant | n | " + " | ".join(name for _, name in COLUMNS) + " | Δ reward vs gro |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for variant in variants:
        row = summary[variant]
        cells = [describe(row[key]["interval"], 1 if key == "wall_s" else 3) for key, _ in COLUMNS]
        diff = describe(row["reward"]["diff"]) if variant != BASELINE else "(baseline)"
        lines.append(
            f"| {variant} | {row['n']}/{row['seeds']} | " + " | ".join(cells) + f" | {diff} |"
        )
    return lines


def reading(summary: dict[str, dict[str, Any]], variants: list[str]) -> list[str]:
    """One sentence per variant against gro, from its paired interval alone."""
    sentences = []
    for variant in variants:
        diff = summary[variant]["reward"]["diff"]
        if variant == BASELINE or diff is None:
            continue
        if diff.n < 2:
            verdict = "one paired seed: no interval, no conclusion"
        elif diff.ci_low > 0:
            verdict = "higher than gro (the interval excludes 0)"
        elif diff.ci_high < 0:
            verdict = "lower than gro (the interval excludes 0)"
        else:
            verdict = "no difference from gro detected (the interval includes 0)"
        sentences.append(f"- **{variant}**: Δ = {describe(diff)}; {verdict}.")
    return sentences


def _mean(summary: dict[str, dict[str, Any]], variant: str, metric: str) -> float | None:
    interval = summary[variant][metric]["interval"]
    return None if interval is None else interval.mean


def _extremes(
    summary: dict[str, dict[str, Any]], variants: list[str], metric: str
) -> tuple[str, str] | None:
    """(variant with the lowest mean, variant with the highest) of `metric`."""
    means = {v: m for v in variants if (m := _mean(summary, v, metric)) is not None}
    if len(means) < 2:
        return None
    return min(means, key=means.__getitem__), max(means, key=means.__getitem__)


def observations(
    summary: dict[str, dict[str, Any]], variants: list[str], start: float | None
) -> list[str]:
    """What the means say beyond the paired intervals, computed, so a rerun reads its own."""
    reward = _extremes(summary, variants, "reward")
    if reward is None:
        return []
    low, high = reward
    lines = [
        f"- Final held-out reward runs from {_mean(summary, low, 'reward'):.3f} ({low}) to "
        f"{_mean(summary, high, 'reward'):.3f} ({high})"
        + (f", from {start:.3f} after the warm-up." if start is not None else ".")
    ]
    if start is not None:
        means = {v: _mean(summary, v, "reward") for v in variants}
        # A variant with no finished seed has no mean: it did not fall, it has no number.
        fell = [v for v, m in means.items() if m is not None and m < start]
        if fell:
            lines.append(f"- Ended below where they started: {', '.join(fell)}.")
    auc = _extremes(summary, variants, "auc")
    if auc is not None and auc[1] != high:
        lines.append(
            f"- Sample efficiency ranks differently: the highest mean reward over training is "
            f"{auc[1]}'s ({_mean(summary, auc[1], 'auc'):.3f}), the highest final one {high}'s."
        )
    kl = _extremes(summary, variants, "kl_ref")
    if kl is not None:
        lines.append(
            f"- KL to the warm-up model runs from {_mean(summary, kl[0], 'kl_ref'):.2f} "
            f"({kl[0]}) to {_mean(summary, kl[1], 'kl_ref'):.2f} ({kl[1]})."
        )
    return lines


def write_report(results: dict[str, Any], out: Path) -> Path:
    """Write `out`/validation.md and `out`/validation/*.png; the Markdown file's path."""
    plots = out / "validation"
    plots.mkdir(parents=True, exist_ok=True)
    budget = results["budget"]
    start = results["warmup"]["final"].get("eval/accuracy")
    lines = _preamble(results)
    for index, (title, group, variants) in enumerate(SECTIONS):
        runs = [r for r in results["runs"] if r["group"] == group]
        present = [v for v in variants if any(r["variant"] == v for r in runs)]
        if not present:
            continue
        summary = summarize(runs, present)
        image = plots / f"{index}-{group}.png"
        plot_section(runs, present, title, image)
        lines += [
            f"## {title}",
            "",
            f"![{title}](validation/{image.name})",
            "",
            *table(summary, present),
            "",
            *reading(summary, present),
            *observations(summary, present, start),
            "",
        ]
    lines += _caveats(budget)
    path = out / "validation.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _preamble(results: dict[str, Any]) -> list[str]:
    b = results["budget"]
    warm = results["warmup"]["final"].get("eval/accuracy")
    return [
        "# Empirical validation of GRO",
        "",
        "Regenerate: `gro bench methods" + (" --quick" if b["name"] == "quick" else "") + "` "
        "(runs everything through the service: the runs are the comparisons named below, on "
        "the dashboard's Compare page). `gro bench methods --report-only` rewrites this page "
        "from `validation/results.json`.",
        "",
        "- **Model**: `builtin:tiny-llama` (0.44M parameters), float32, CPU, 1 thread a run.",
        f"- **Warm-up**: SFT on a sloppy demonstrator's `builtin:reverse-sft` rows "
        f"({int(REVERSED_SHARE * 100)}% reversed, the rest copied: "
        f"`gro_core.tasks.reverse_copy_demonstrations`), {b['warmup_steps']} steps × "
        f"{WARMUP_BATCH} (held-out greedy accuracy {warm if warm is None else round(warm, 3)}), "
        "the starting point of every run: partly right, so rollouts find rewarded answers.",
        f"- **Online task**: `builtin:reverse` (reverse a 2–6 letter word), exact-match reward; "
        f"{b['steps']} steps × {b['batch_size']} prompts × {b['generations']} samples "
        f"= {b['steps'] * b['batch_size'] * b['generations']} completions a run, lr 3e-4, "
        f"temperature 1.0. Mixed variant: {int(b['offline_mix'] * 100)}% of each batch's "
        "prompts replaced by SFT demonstrations scored by the same reward.",
        f"- **Offline task**: `builtin:reverse-preference` pairs, {b['steps']} steps × "
        f"{b['batch_size']} pairs, lr 1e-4.",
        f"- **Seeds**: {b['seeds']} (n = seeds that succeeded); "
        f"**total wall time** {results['wall_s'] / 60:.1f} min.",
        "- **Held-out reward**: greedy exact match on the same "
        f"{b['eval_prompts']} held-out prompts, measured by one evaluation job per final "
        f"checkpoint (with pass@{b['generations']}, KL to the warm-up model, distinct-2 and "
        f"the mean pairwise similarity of {b['generations']} samples per prompt); the curves "
        "come from the runs' own evaluations every "
        f"{b['eval_every']} steps.",
        "- **Intervals**: 95% percentile bootstrap over seeds; Δ is the paired (same seed) "
        "difference against gro.",
        "- **Comparisons**: "
        # Sorted: results.json is written with sorted keys, and --report-only must rewrite
        # the page a full run wrote.
        + ", ".join(f"{group} `{c['id']}`" for group, c in sorted(results["comparisons"].items())),
        "",
    ]


def _caveats(budget: dict[str, Any]) -> list[str]:
    return [
        "## What this does and does not show",
        "",
        "These are small runs: one 0.44M-parameter model, one task family, "
        f"{len(budget['seeds'])} seeds, a budget that fits a 2-core CPU in under two hours. "
        "An interval that includes 0 means this budget cannot tell the methods apart, not "
        "that they are equal; an interval that excludes 0 holds for this model, task and "
        "budget, and says nothing yet about large models, other rewards or long training. "
        "Offline and online numbers are not comparable with each other (different data, "
        "different samples). The methods share one learning rate and were not tuned to "
        "equal KL: a variant that moved further from the warm-up model (the KL column) may "
        "owe part of its reward to that distance; a comparison at matched KL needs a sweep "
        "this budget does not include. Wall times are this machine's, two runs at a time, and vary "
        "between reruns; every other number is reproduced exactly by rerunning with the "
        "same seeds (CPU, one thread a run).",
    ]
