"""gro's grpo preset against TRL's GRPOTrainer: online GRPO, the same work, in one run.

Both start from the same SFT warm-up of a builtin model on sloppy `reverse-sft` demonstrations
(`gro_core.tasks.reverse_copy_demonstrations`, as in the online acceptance test; cached under
`$GRO_CACHE_DIR/bench/`, its greedy held-out reward printed), so that rewards are not all zero
and there is something to learn. Both train on the same prompt file (`builtin:reverse` prompts,
seed 0) scored by the same exact-match reward code. Each step: 8 prompts x G=8 completions
sampled at temperature 1 (top-p 1, no top-k), at most 32 new tokens, rewards, reference
log-probs, one GRPO update (group-normalised advantages, PPO clip epsilon 0.2, k3 KL to the
reference with coefficient 0.04, each completion's token mean then the mean over completions:
TRL's loss_type="grpo"), AdamW without weight decay, gradient clipping at 1.0, linear warm-up
then cosine decay, float32 on the CPU. TRL (installed only through the `bench` extra:
`pip install -e ".[bench]"`) keeps its defaults otherwise; in particular it checkpoints
activations (--trl-no-gradient-checkpointing turns that off) and, as gro, computes no old
log-probs with one update per batch.

Every training run is a fresh worker process (its own peak RSS, no warm state), the two
trainers alternate within one invocation, and the parent waits for a quiet machine before each
run and reruns one that other processes disturbed (see bench/_common.py): this machine's speed
drifts between invocations, so only same-run ratios count.

    python bench/online.py [--models tiny-llama,small-llama] [--rounds 3] [--small-rounds 2]
    python bench/online.py --models /path/to/local/model --new-tokens 128 --rounds 1

A `--models` entry that is a directory is a local model, trained as it is (no warm-up) for
8 steps.

Timing covers the step loop only (first step to last step), not model loading; the split is
generate (the sampling call), score + ref (rewards and reference log-probs) and update (the
forward, backward and optimizer step). `% matmul` is the nominal FLOP rate over the fp32
1024x1024 matmul rate each worker measures after its run: 2N per token sampled or prefilled,
2N per token the reference scores, 6N per token trained (N parameters; real tokens only).
"Held-out reward" is the greedy exact-match reward on 256 held-out prompts after training,
computed the same way for both; "reward" columns are the mean training reward of the first and
last quarter of the steps (each step scores 64 fresh completions).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as common
import torch
from online_setup import (
    EPSILON,
    KL_COEF,
    MAX_NEW_TOKENS,
    MODELS,
    PROMPTS,
    REWARDS,
    SEED,
    SETTINGS,
    TASK,
    TEMPERATURE,
    WORKER_ENV,
    G,
    Result,
    Timer,
    held_out_reward,
    setting,
    warmup_checkpoint,
    write_prompts,
)
from online_trl import trl_worker

# --- gro --------------------------------------------------------------------------------------


def gro_spec(model: str, checkpoint: Path, prompts: Path) -> dict[str, Any]:
    s = setting(model)
    return {
        "model": str(checkpoint),
        "method": "grpo",
        "method_args": {"epsilon": EPSILON, "kl_coef": KL_COEF},
        "data": {"train": str(prompts)},
        "rewards": REWARDS,
        "rollout": {
            "num_generations": G,
            "max_new_tokens": MAX_NEW_TOKENS,
            "temperature": TEMPERATURE,
        },
        "train": {
            "steps": s.steps,
            "batch_size": PROMPTS,
            "lr": s.lr,
            "warmup_steps": s.warmup_steps,
            "max_grad_norm": 1.0,
            "seed": SEED,
        },
        "eval": {"every": 0, "num_prompts": 1},  # held-out reward is measured after timing
        "checkpoint": {"every": 0, "keep": 1},
    }


def gro_worker(model: str, checkpoint: Path, prompts: Path, out: Path) -> Result:
    import gro_core.rollout.backends as backends
    import gro_core.trainers.online as online
    from gro_core.models import load_policy, load_tokenizer
    from gro_core.spec import load_spec
    from gro_core.trainers import Callback, run

    timer = Timer()
    sample = backends.HFBackend.__call__  # the default backend, the one the spec uses

    def counted_sample(*args: Any, **kwargs: Any) -> Any:
        rollouts = sample(*args, **kwargs)
        timer.count(rollouts.prompt_ids, rollouts.completion_ids)
        return rollouts

    backends.HFBackend.__call__ = timer.wrap("generate", counted_sample)  # type: ignore[method-assign]
    online.OnlineObjective.collect = timer.wrap("batch", online.OnlineObjective.collect)

    class Clock(Callback):
        """When the step loop started and ended, and each step's mean reward."""

        def __init__(self) -> None:
            self.rewards: list[float] = []

        def on_event(self, step: int, kind: str, message: str) -> None:
            if kind == "started":
                self.started = time.perf_counter()

        def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
            if "reward/mean" in metrics:
                self.rewards.append(metrics["reward/mean"])

        def on_step_end(self, step: int, total: int, metrics: dict[str, float]) -> None:
            self.ended = time.perf_counter()

    spec, clock = load_spec(gro_spec(model, checkpoint, prompts)), Clock()
    base_rss, start = common.rss_mb(), time.perf_counter()
    result = run(spec, out, [clock])
    final = out / "checkpoints" / f"step-{result.steps}"
    return {
        "steps": result.steps,
        "loop_s": clock.ended - clock.started,
        "setup_s": clock.started - start,
        "base_rss_mb": base_rss,
        "rewards": clock.rewards,
        "timer": vars(timer),
        "held_out": held_out_reward(load_policy(final, device="cpu"), load_tokenizer(final)),
    }


def worker_main(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint, prompts, out = Path(args.checkpoint), Path(args.prompts), Path(args.out)
    if args.worker == "gro":
        result = gro_worker(args.model, checkpoint, prompts, out)
    else:
        no_gc = args.trl_no_gradient_checkpointing
        result = trl_worker(args.model, checkpoint, prompts, out, not no_gc)
    result["peak_rss_mb"] = common.peak_rss_mb()  # before the probe allocates anything
    result["matmul_flops"] = common.matmul_flops()
    result["threads"] = torch.get_num_threads()
    result |= {"trainer": args.worker, "model": args.model}
    common.emit_result(result)


# --- the parent: interleaved runs and the table -----------------------------------------------


def check(result: Result, model: str) -> None:
    """The same optimizer steps and completions for both trainers."""
    steps = setting(model).steps
    assert result["steps"] == steps, f"{result['trainer']} took {result['steps']} steps"
    done = result["timer"]["completions"]
    assert done == steps * PROMPTS * G, f"{result['trainer']} sampled {done} completions"


def summarize(runs: list[Result], params: int) -> dict[str, float]:
    """Medians over runs of the table's columns."""

    def med(fn: Callable[[Result], float]) -> float:
        return common.median([fn(r) for r in runs])

    def tokens(r: Result) -> int:
        return r["timer"]["prompt_tokens"] + r["timer"]["completion_tokens"]

    def share(r: Result) -> float:
        return 10 * params * tokens(r) / r["loop_s"] / r["matmul_flops"]  # 2N + 2N + 6N

    def part(name: str) -> Callable[[Result], float]:
        return lambda r: r["timer"]["seconds"].get(name, 0.0) / r["loop_s"]

    quarter = max(1, len(runs[0]["rewards"]) // 4)
    return {
        "loop": med(lambda r: r["loop_s"]),
        "steps_per_s": med(lambda r: r["steps"] / r["loop_s"]),
        "completions_per_s": med(lambda r: r["timer"]["completions"] / r["loop_s"]),
        "generate": med(part("generate")),
        "score_ref": med(lambda r: part("batch")(r) - part("generate")(r)),
        "update": med(lambda r: 1 - part("batch")(r)),
        "length": med(lambda r: r["timer"]["completion_tokens"] / r["timer"]["completions"]),
        "rss": med(lambda r: r["peak_rss_mb"]),
        "share": med(share),
        "reward_first": med(lambda r: sum(r["rewards"][:quarter]) / quarter),
        "reward_last": med(lambda r: sum(r["rewards"][-quarter:]) / quarter),
        "held_out": med(lambda r: r["held_out"]),
    }


HEADER = (
    "model", "trainer", "loop s", "steps/s", "completions/s", "generate / score+ref / update",
    "tokens per completion", "peak RSS MB", "% of matmul rate", "reward first → last quarter",
    "held-out reward", "speedup vs TRL",
)  # fmt: skip


def table_rows(model: str, gro: dict[str, float], trl: dict[str, float]) -> list[list[str]]:
    def row(name: str, s: dict[str, float]) -> list[str]:
        split = (
            f"{100 * s['generate']:.0f}% / {100 * s['score_ref']:.0f}% / {100 * s['update']:.0f}%"
        )
        return [
            model, name, f"{s['loop']:.1f}", f"{s['steps_per_s']:.2f}",
            f"{s['completions_per_s']:.0f}", split, f"{s['length']:.1f}", f"{s['rss']:.0f}",
            f"{100 * s['share']:.0f}%", f"{s['reward_first']:.3f} → {s['reward_last']:.3f}",
            f"{s['held_out']:.3f}", f"{s['steps_per_s'] / trl['steps_per_s']:.2f}x",
        ]  # fmt: skip

    return [row("gro", gro), row("TRL", trl)]


def launch(trainer: str, model: str, paths: dict[str, Path], args: argparse.Namespace) -> Result:
    out = Path(tempfile.mkdtemp(prefix=f"{trainer}-{model}-", dir=paths["tmp"]))
    argv = [str(Path(__file__).resolve()), "--worker", trainer, "--model", model]
    argv += ["--checkpoint", str(paths[model]), "--prompts", str(paths["prompts"])]
    argv += ["--out", str(out), "--threads", str(args.threads)]
    if args.trl_no_gradient_checkpointing:
        argv.append("--trl-no-gradient-checkpointing")
    result = common.run_quietly(
        argv, WORKER_ENV, wait=args.wait, max_others=args.max_others, retries=args.retries
    )
    print(
        f"  {model:11s} {trainer:3s} loop {result['loop_s']:6.1f}s "
        f"(setup {result['setup_s']:.1f}s) peak {result['peak_rss_mb']:.0f} MB, "
        f"held-out reward {result['held_out']:.3f}, other processes used "
        f"{100 * result['others_share']:.0f}% of the CPUs",
        file=sys.stderr,
        flush=True,
    )
    return result


def bench_model(
    model: str, rounds: int, paths: dict[str, Path], args: argparse.Namespace
) -> tuple[list[list[str]], list[str]]:
    """`rounds` interleaved gro and TRL runs: the table rows and lines of detail."""
    from gro_core.models import count_parameters, load_policy, load_tokenizer

    policy = load_policy(paths[model], device="cpu")
    params = count_parameters(policy)
    start = held_out_reward(policy, load_tokenizer(paths[model]))
    runs: dict[str, list[Result]] = {"gro": [], "trl": []}
    for i in range(rounds):
        # Alternate which goes first, so neither always runs on a cooler (or warmer) machine.
        for trainer in ("gro", "trl") if i % 2 == 0 else ("trl", "gro"):
            result = launch(trainer, model, paths, args)
            check(result, model)
            runs[trainer].append(result)
    gro, trl = (summarize(runs[t], params) for t in ("gro", "trl"))
    pairs = zip(runs["gro"], runs["trl"], strict=True)
    per_round = ", ".join(f"{t['loop_s'] / g['loop_s']:.2f}x" for g, t in pairs)
    rates = [r["matmul_flops"] / 1e9 for r in runs["gro"] + runs["trl"]]
    curves = [
        f"{model} reward per step, {name} (first run): "
        + " ".join(f"{x:.2f}" for x in runs[key][0]["rewards"])
        for key, name in (("gro", "gro"), ("trl", "TRL"))
    ]
    detail = (
        f"{model}: {params:,} parameters, {setting(model).steps} steps; warm-up held-out reward "
        f"{start:.3f}; per-round speedups {per_round}; matmul rate {min(rates):.0f}-"
        f"{max(rates):.0f} GFLOP/s across runs"
    )
    return table_rows(model, gro, trl), [detail, *curves]


def parse_args() -> argparse.Namespace:
    parser = common.trl_parser(__doc__.splitlines()[0], MODELS, ("checkpoint", "prompts"))
    parser.add_argument("--new-tokens", type=int, help="max new tokens per completion (32)")
    args = parser.parse_args()
    if args.new_tokens and os.environ.get("GRO_BENCH_NEW_TOKENS") != str(args.new_tokens):
        # The constant is read at import: run again with it set, workers inheriting it.
        os.environ["GRO_BENCH_NEW_TOKENS"] = str(args.new_tokens)
        os.execv(sys.executable, [sys.executable, *sys.argv])
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        return worker_main(args)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    rows, details = [], []
    with tempfile.TemporaryDirectory(prefix="gro-bench-") as tmp:
        paths = {"tmp": Path(tmp), "prompts": Path(tmp) / "prompts.jsonl"}
        write_prompts(paths["prompts"], max(s.steps for s in SETTINGS.values()) * PROMPTS)
        for model in models:
            paths[model] = warmup_checkpoint(model)  # outside every timed run
            rounds = args.small_rounds if model == "small-llama" else args.rounds
            model_rows, lines = bench_model(model, rounds, paths, args)
            rows, details = rows + model_rows, details + lines
    threads = args.threads or torch.get_num_threads()
    print(
        f"\nGRPO, {PROMPTS} prompts x G={G} ({TASK}), <= {MAX_NEW_TOKENS} new tokens, "
        f"kl_coef {KL_COEF}, float32 CPU, {threads} threads, {os.cpu_count()} cores; "
        "gro and TRL interleaved\n"
    )
    print(common.markdown_table(HEADER, rows))
    gc = "off" if args.trl_no_gradient_checkpointing else "default (on)"
    print(f"\nTRL gradient checkpointing: {gc}. Medians of interleaved fresh-process runs.")
    print("\n".join(f"- {d}" for d in details))


if __name__ == "__main__":
    main()
