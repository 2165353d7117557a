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
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as common
import torch

PROMPTS, G, MAX_NEW_TOKENS, TEMPERATURE, EPSILON, KL_COEF, SEED = 8, 8, 32, 1.0, 0.2, 0.04, 0
TASK = "reverse"
EVAL_PROMPTS = 256
MODELS = ("tiny-llama", "small-llama")
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"}
REWARDS = [{"type": "exact_match", "field": "answer"}]

Result = dict[str, Any]


@dataclass(frozen=True)
class Setting:
    """What one model trains with: its online run and the SFT warm-up before it."""

    steps: int  # online steps measured
    lr: float
    warmup_steps: int
    sft_steps: int
    sft_lr: float


SETTINGS = {
    "tiny-llama": Setting(steps=60, lr=3e-4, warmup_steps=4, sft_steps=250, sft_lr=1e-3),
    "small-llama": Setting(steps=24, lr=3e-5, warmup_steps=2, sft_steps=150, sft_lr=3e-4),
}


# --- shared inputs: the warm-up, the prompts, the reward, the held-out score -----------------


def warmup_checkpoint(model: str) -> Path:
    """The SFT warm-up both trainers start from, trained once and cached: the acceptance test's
    sloppy demonstrations (40% of words reversed, the rest copied), so that the policy is partly
    right and the learning curves have somewhere to go."""
    from gro_core.models.builtin import default_cache_dir
    from gro_core.spec import load_spec
    from gro_core.tasks import reverse_copy_demonstrations
    from gro_core.trainers import run

    s = SETTINGS[model]
    out = default_cache_dir() / "bench" / f"online-{model}-reverse-copy-sft-{s.sft_steps}"
    checkpoint = out / "checkpoints" / f"step-{s.sft_steps}"
    if not checkpoint.is_dir():
        print(f"  warm-up: SFT of {model}, {s.sft_steps} steps", file=sys.stderr, flush=True)
        out.mkdir(parents=True, exist_ok=True)
        demos = out / "demos.jsonl"
        with demos.open("w", encoding="utf-8") as f:
            for row in reverse_copy_demonstrations(s.sft_steps * 32, seed=SEED, reversed_share=0.4):
                f.write(
                    json.dumps({"prompt": row["prompt"], "completion": row["completion"]}) + "\n"
                )
        spec = {
            "model": f"builtin:{model}",
            "method": "sft",
            "data": {"train": str(demos)},
            "train": {"steps": s.sft_steps, "batch_size": 32, "lr": s.sft_lr, "seed": SEED},
            "eval": {"every": 0},
            "checkpoint": {"every": 0, "keep": 1},
        }
        run(load_spec(spec), out)
    return checkpoint


def write_prompts(path: Path, n: int) -> None:
    from gro_core.tasks import generate

    with path.open("w", encoding="utf-8") as f:
        for row in generate(TASK, n, seed=SEED):
            f.write(json.dumps({"prompt": row["prompt"], "answer": row["answer"]}) + "\n")


def scorer() -> Any:
    """gro's scorer for REWARDS: both trainers' rewards come from this same code."""
    from gro_core.rewards import build_scorer
    from gro_core.spec import load_spec

    spec = load_spec({"model": "x", "method": "grpo", "data": {"train": "x"}, "rewards": REWARDS})
    return build_scorer(spec.rewards)


@torch.no_grad()
def held_out_reward(model: torch.nn.Module, tokenizer: Any) -> float:
    """Mean greedy exact-match reward on EVAL_PROMPTS held-out prompts."""
    from gro_core.data.encode import encode_prompt
    from gro_core.rollout.sampling import RolloutSettings, sample
    from gro_core.tasks import generate

    rows = generate(TASK, EVAL_PROMPTS, seed=SEED, split="eval")
    prompts = [encode_prompt(tokenizer, r["prompt"]) for r in rows]
    out = sample(model, tokenizer, prompts, 1, RolloutSettings(MAX_NEW_TOKENS, greedy=True))
    texts = tokenizer.batch_decode(out.completion_ids, skip_special_tokens=True)
    return sum(scorer()(texts, rows).total) / len(rows)


class Timer:
    """Seconds spent inside wrapped calls, and the tokens the sampling calls saw."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.prompt_tokens = self.completion_tokens = self.completions = 0

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

        return timed

    def count(self, prompts: list[list[int]], completions: list[list[int]]) -> None:
        self.prompt_tokens += sum(len(p) for p in prompts)
        self.completion_tokens += sum(len(c) for c in completions)
        self.completions += len(completions)


# --- gro --------------------------------------------------------------------------------------


def gro_spec(model: str, checkpoint: Path, prompts: Path) -> dict[str, Any]:
    s = SETTINGS[model]
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


# --- TRL --------------------------------------------------------------------------------------


def trl_config(model: str, out: Path, gradient_checkpointing: bool) -> Any:
    from trl import GRPOConfig

    s = SETTINGS[model]
    return GRPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=PROMPTS * G,  # completions per step
        num_generations=G,
        max_completion_length=MAX_NEW_TOKENS,
        temperature=TEMPERATURE,
        top_p=1.0,
        top_k=0,
        beta=KL_COEF,  # TRL's default is 0 (no reference); gro's grpo preset uses 0.04
        epsilon=EPSILON,
        loss_type="grpo",  # the DeepSeekMath aggregation gro's grpo preset reproduces
        scale_rewards="group",
        num_iterations=1,
        max_steps=s.steps,
        learning_rate=s.lr,
        lr_scheduler_type="cosine",
        warmup_steps=s.warmup_steps,
        weight_decay=0.0,
        max_grad_norm=1.0,
        use_cpu=True,
        bf16=False,
        fp16=False,
        gradient_checkpointing=gradient_checkpointing,  # TRL's default: True
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        logging_steps=1,  # the per-step reward curve
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=SEED,
    )


def trl_worker(
    model: str, checkpoint: Path, prompts: Path, out: Path, gradient_checkpointing: bool
) -> Result:
    import datasets
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOTrainer

    from gro_core.models import load_tokenizer

    datasets.disable_progress_bars()
    score = scorer()

    def exact_match(completions: list[str], answer: list[str], **_: Any) -> list[float]:
        return score(completions, [{"answer": a} for a in answer]).total

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.rewards: list[float] = []

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.ended = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and "reward" in logs:
                self.rewards.append(logs["reward"])

    base_rss, start = common.rss_mb(), time.perf_counter()
    rows = [json.loads(line) for line in prompts.read_text(encoding="utf-8").splitlines()]
    clock, timer = Clock(), Timer()
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32),
        reward_funcs=exact_match,
        args=trl_config(model, out, gradient_checkpointing),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=load_tokenizer(checkpoint),
        callbacks=[clock],
    )
    generate = trainer._generate_single_turn

    def counted_generate(prompt_ids: list[list[int]], *args: Any, **kwargs: Any) -> Any:
        completion_ids, logprobs = generate(prompt_ids, *args, **kwargs)
        timer.count(prompt_ids, completion_ids)
        return completion_ids, logprobs

    trainer._generate_single_turn = timer.wrap("generate", counted_generate)
    batch = trainer._generate_and_score_completions
    trainer._generate_and_score_completions = timer.wrap("batch", batch)
    trainer.train()
    return {
        "steps": trainer.state.global_step,
        "loop_s": clock.ended - clock.started,
        "setup_s": clock.started - start,
        "base_rss_mb": base_rss,
        "rewards": clock.rewards,
        "timer": vars(timer),
        "held_out": held_out_reward(trainer.model.eval(), trainer.processing_class),
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
    steps = SETTINGS[model].steps
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
        f"{model}: {params:,} parameters, {SETTINGS[model].steps} steps; warm-up held-out reward "
        f"{start:.3f}; per-round speedups {per_round}; matmul rate {min(rates):.0f}-"
        f"{max(rates):.0f} GFLOP/s across runs"
    )
    return table_rows(model, gro, trl), [detail, *curves]


def parse_args() -> argparse.Namespace:
    return common.trl_parser(
        __doc__.splitlines()[0], MODELS, ("checkpoint", "prompts")
    ).parse_args()


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
