"""gro's dpo preset against TRL's DPOTrainer: end-to-end offline DPO, same work, one run.

Both train the same builtin model on the same 512 preference pairs (arithmetic-preference,
seed 0), batch 8 pairs, 3 epochs (192 optimizer steps), lr 1e-5 without warm-up, gradient
clipping at 1.0, beta 0.1, max_length 128, float32 on the CPU. TRL (installed only through
the `bench` extra: `pip install -e ".[bench]"`) keeps its defaults otherwise, in particular a
frozen reference copy scored at every step; gro scores the reference once before training.

Every training run is a fresh worker process (its own peak RSS, no warm state carried
over), and the two trainers alternate within one invocation (gro, TRL, then TRL, gro, ...),
because this machine's speed drifts 1.5-2.6x between invocations: only same-run ratios
count. Wall time is end to end: data reading, tokenisation, model (and reference) loading,
any reference pre-computation, the 192 steps, and gro's final checkpoint (shown apart).
Python imports are excluded on both sides. Before each run the parent waits for the
machine to go quiet, and a run during which other processes took more than 10% of the CPUs
is run again (--max-others, --retries): with 2 torch threads on 2 cores, a busy neighbour
stalls every parallel op, which hurts the trainer with more small ops far more.

    python bench/offline.py [--models tiny-llama,small-llama] [--rounds 3] [--small-rounds 2]
    python bench/offline.py --models /path/to/local/model --completion-chars 200 --rounds 1

A `--models` entry that is a directory is a local model; `--completion-chars` lengthens both
completions of every pair alike (MAX_LENGTH 128 tokens still truncates).

`% matmul` is the achieved nominal FLOP/s (6·N per trained token, plus 2·N per token the
reference scores: every step for TRL, once for gro) over the fp32 1024×1024 matmul rate
each worker measures right after its run, at the same thread count. Both are credited
the same nominal work: gro runs each pair's prompt through the model once for both
completions, so it does about a third fewer FLOPs than it is credited here (the detail
lines give both token counts).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _common as common
import torch
from offline_data import (
    MAX_LENGTH,
    PAIRS,
    SEED,
    TASK,
    encoded_pairs,
    model_id,
    pair_tokens,
    read_pairs,
    write_pairs,
)

if TYPE_CHECKING:
    from trl import DPOConfig

BATCH, EPOCHS, LR, BETA = 8, 3, 1e-5, 0.1
STEPS = PAIRS // BATCH * EPOCHS
MODELS = ("tiny-llama", "small-llama")
# Quiet, offline, and no stray threads from the tokenizers library in either trainer.
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"}

Result = dict[str, Any]


# --- gro --------------------------------------------------------------------------------------


def gro_spec(model: str, data: Path) -> dict[str, Any]:
    return {
        "model": model_id(model),
        "method": "dpo",
        "method_args": {"beta": BETA},
        "data": {"train": str(data)},
        "train": {
            "batch_size": BATCH,
            "epochs": EPOCHS,
            "lr": LR,
            "warmup_steps": 0,
            "max_grad_norm": 1.0,
            "max_length": MAX_LENGTH,
            "seed": SEED,
        },
        "eval": {"every": 0},
        "checkpoint": {"every": 0},  # gro still writes one final checkpoint, timed apart
    }


def gro_worker(model: str, data: Path, out: Path) -> Result:
    from gro_core.spec import load_spec
    from gro_core.trainers import Callback, run

    class Clock(Callback):
        """When setup ended, when the last step ended, when the final checkpoint was written."""

        def on_event(self, step: int, kind: str, message: str) -> None:
            if kind == "started":
                self.started = time.perf_counter()

        def on_step_end(self, step: int, total: int, metrics: dict[str, float]) -> None:
            self.last_step = time.perf_counter()

        def on_checkpoint(self, step: int, path: Path) -> None:
            self.saved = time.perf_counter()

    spec, clock = load_spec(gro_spec(model, data)), Clock()
    base_rss, start = common.rss_mb(), time.perf_counter()
    result = run(spec, out, [clock])
    wall = time.perf_counter() - start
    return {
        "steps": result.steps,
        "wall_s": wall,
        "setup_s": clock.started - start,
        "checkpoint_s": clock.saved - clock.last_step,
        "base_rss_mb": base_rss,
        "tokens": None,  # every pair once per epoch, by construction of gro's sampler
        "reference_every_step": False,
    }


# --- TRL --------------------------------------------------------------------------------------


def trl_config(out: Path, gradient_checkpointing: bool) -> DPOConfig:
    from trl import DPOConfig

    return DPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=BATCH,
        num_train_epochs=EPOCHS,
        learning_rate=LR,
        lr_scheduler_type="cosine",  # gro's schedule; costs the same as the default linear
        warmup_steps=0,
        max_grad_norm=1.0,
        beta=BETA,
        max_length=MAX_LENGTH,
        use_cpu=True,
        bf16=False,
        fp16=False,
        # TRL's own default (True): activations are recomputed in the backward pass, which
        # saves memory and costs a third more compute. --trl-no-gradient-checkpointing.
        gradient_checkpointing=gradient_checkpointing,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        logging_steps=100_000,
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=SEED,
    )


class TokenCounter:
    """Wraps TRL's collator to count the real (attended) tokens of every batch it builds."""

    def __init__(self, collator: Any) -> None:
        self.collator, self.tokens = collator, 0

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(examples)
        self.tokens += int(batch["attention_mask"].sum())
        return batch


def trl_worker(model: str, data: Path, out: Path, gradient_checkpointing: bool) -> Result:
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import DPOTrainer

    from gro_core.models import load_tokenizer, resolve_model

    datasets.disable_progress_bars()
    base_rss, start = common.rss_mb(), time.perf_counter()
    path = resolve_model(model_id(model))
    policy = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    trainer = DPOTrainer(
        model=policy,
        args=trl_config(out, gradient_checkpointing),
        train_dataset=datasets.Dataset.from_list(read_pairs(data)),
        processing_class=load_tokenizer(path),
    )
    trainer.data_collator = counter = TokenCounter(trainer.data_collator)
    setup = time.perf_counter() - start
    trainer.train()
    wall = time.perf_counter() - start
    ds = trainer.train_dataset  # after timing: TRL must have tokenised exactly as gro does
    theirs = list(zip(ds["prompt_ids"], ds["chosen_ids"], ds["rejected_ids"], strict=True))
    ours = encoded_pairs(model, data)
    return {
        "steps": trainer.state.global_step,
        "wall_s": wall,
        "setup_s": setup,
        "checkpoint_s": 0.0,
        "base_rss_mb": base_rss,
        "tokens": counter.tokens,
        "reference_every_step": True,
        "same_tokens": [tuple(map(tuple, t)) for t in theirs] == ours,
    }


def worker_main(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    data, out = Path(args.data), Path(args.out)
    if args.worker == "gro":
        result = gro_worker(args.model, data, out)
    else:
        result = trl_worker(args.model, data, out, not args.trl_no_gradient_checkpointing)
    result["peak_rss_mb"] = common.peak_rss_mb()  # before the probe allocates anything
    result["matmul_flops"] = common.matmul_flops()
    result["threads"] = torch.get_num_threads()
    result |= {"trainer": args.worker, "model": args.model}
    common.emit_result(result)


# --- the parent: interleaved runs and the table -----------------------------------------------


def worker_argv(
    trainer: str, model: str, data: Path, out: Path, args: argparse.Namespace
) -> list[str]:
    argv = [str(Path(__file__).resolve()), "--worker", trainer, "--model", model]
    argv += ["--data", str(data), "--out", str(out), "--threads", str(args.threads)]
    if args.trl_no_gradient_checkpointing:
        argv.append("--trl-no-gradient-checkpointing")
    return argv


def launch(trainer: str, model: str, data: Path, tmp: Path, args: argparse.Namespace) -> Result:
    """One run in a fresh process; run again (up to --retries) if other jobs took the CPUs."""
    for attempt in range(args.retries + 1):
        out = Path(tempfile.mkdtemp(prefix=f"{trainer}-{model}-", dir=tmp))
        common.wait_for_quiet(timeout=args.wait)
        with common.Contention() as others:
            result = common.run_worker(worker_argv(trainer, model, data, out, args), WORKER_ENV)
        result["others_share"] = others.share
        discard = others.share > args.max_others and attempt < args.retries
        print(
            f"  {model:11s} {trainer:3s} wall {result['wall_s']:6.1f}s "
            f"(setup {result['setup_s']:.1f}s, checkpoint {result['checkpoint_s']:.1f}s) "
            f"peak {result['peak_rss_mb']:.0f} MB, matmul {result['matmul_flops'] / 1e9:.0f} "
            f"GFLOP/s, other processes used {100 * others.share:.0f}% of the CPUs"
            + (": discarded, running again" if discard else ""),
            file=sys.stderr,
            flush=True,
        )
        if not discard:
            break
    return result


def check(result: Result, tokens: int) -> None:
    """Same optimizer steps, and for TRL the same token ids and token count as gro's."""
    assert result["steps"] == STEPS, f"{result['trainer']} took {result['steps']} steps"
    if result["trainer"] == "trl":
        assert result["same_tokens"], "TRL tokenised the pairs differently from gro"
        assert result["tokens"] == tokens, f"TRL processed {result['tokens']} tokens"


def flops(result: Result, params: int, train_tokens: int, data_tokens: int) -> float:
    """Nominal FLOPs: 6N per trained token, 2N per token the reference model scores."""
    reference = train_tokens if result["reference_every_step"] else data_tokens
    return 6 * params * train_tokens + 2 * params * reference


def summarize(runs: list[Result], params: int, data_tokens: int) -> dict[str, float]:
    train_tokens = EPOCHS * data_tokens
    wall = common.median([r["wall_s"] for r in runs])
    work = [flops(r, params, train_tokens, data_tokens) for r in runs]
    shares = [w / r["wall_s"] / r["matmul_flops"] for w, r in zip(work, runs, strict=True)]
    return {
        "wall": wall,
        "setup": common.median([r["setup_s"] for r in runs]),
        "checkpoint": common.median([r["checkpoint_s"] for r in runs]),
        "steps_per_s": STEPS / wall,
        "tokens_per_s": train_tokens / wall,
        "rss": common.median([r["peak_rss_mb"] for r in runs]),
        "rss_growth": common.median([r["peak_rss_mb"] - r["base_rss_mb"] for r in runs]),
        "share": common.median(shares),
    }


HEADER = (
    "model", "trainer", "wall s (median)", "setup s", "final ckpt s", "steps/s", "tokens/s",
    "peak RSS MB", "RSS growth MB", "% of matmul rate", "speedup vs TRL",
)  # fmt: skip


def table_rows(model: str, gro: dict[str, float], trl: dict[str, float]) -> list[list[str]]:
    def row(name: str, s: dict[str, float]) -> list[str]:
        return [
            model, name, f"{s['wall']:.1f}", f"{s['setup']:.1f}", f"{s['checkpoint']:.1f}",
            f"{s['steps_per_s']:.2f}", f"{s['tokens_per_s']:.0f}", f"{s['rss']:.0f}",
            f"{s['rss_growth']:.0f}", f"{100 * s['share']:.0f}%",
            f"{trl['wall'] / s['wall']:.2f}x",
        ]  # fmt: skip

    ratio = [
        model, "**gro / TRL**", f"{gro['wall'] / trl['wall']:.2f}", "", "",
        f"{gro['steps_per_s'] / trl['steps_per_s']:.2f}",
        f"{gro['tokens_per_s'] / trl['tokens_per_s']:.2f}", f"{gro['rss'] / trl['rss']:.2f}",
        f"{gro['rss_growth'] / trl['rss_growth']:.2f}", f"{gro['share'] / trl['share']:.2f}", "",
    ]  # fmt: skip
    return [row("gro", gro), row("TRL", trl), ratio]


def bench_model(
    model: str, rounds: int, data: Path, tmp: Path, args: argparse.Namespace
) -> tuple[list[list[str]], str]:
    """`rounds` interleaved gro and TRL runs: the table rows and a line of per-round detail."""
    from gro_core.models import count_parameters, load_policy

    params = count_parameters(load_policy(model_id(model), device="cpu"))
    pairs = encoded_pairs(model, data)
    tokens = pair_tokens(pairs)
    # gro scores a pair's two completions after one copy of its prompt.
    shared = sum(len(p) + len(c) + len(r) for p, c, r in pairs)
    runs: dict[str, list[Result]] = {"gro": [], "trl": []}
    for i in range(rounds):
        # Alternate which goes first, so neither always runs on a cooler (or warmer) machine.
        for trainer in ("gro", "trl") if i % 2 == 0 else ("trl", "gro"):
            result = launch(trainer, model, data, tmp, args)
            check(result, EPOCHS * tokens)
            runs[trainer].append(result)
    gro, trl = (summarize(runs[t], params, tokens) for t in ("gro", "trl"))
    pairs = zip(runs["gro"], runs["trl"], strict=True)
    per_round = ", ".join(f"{t['wall_s'] / g['wall_s']:.2f}x" for g, t in pairs)
    rates = [r["matmul_flops"] / 1e9 for r in runs["gro"] + runs["trl"]]
    others = max(r["others_share"] for r in runs["gro"] + runs["trl"])
    detail = (
        f"{model}: {params:,} parameters, {EPOCHS * tokens:,} trained tokens ({EPOCHS * shared:,} "
        "through gro's model, which computes each pair's prompt once); per-round speedups "
        f"{per_round}; matmul rate {min(rates):.0f}-{max(rates):.0f} GFLOP/s across runs; "
        f"other processes used up to {100 * others:.0f}% of the CPUs during a run"
    )
    return table_rows(model, gro, trl), detail


def parse_args() -> argparse.Namespace:
    parser = common.trl_parser(__doc__.splitlines()[0], MODELS, ("data",))
    parser.add_argument(
        "--completion-chars", type=int, default=0, help="pad completions to this many characters"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        return worker_main(args)
    from transformers.utils import logging as hf_logging

    from gro_core.models import resolve_model

    hf_logging.disable_progress_bar()  # the parent loads each model once to count parameters
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    rows, details = [], []
    with tempfile.TemporaryDirectory(prefix="gro-bench-") as tmp:
        data = Path(tmp) / "pairs.jsonl"
        write_pairs(data, args.completion_chars)
        for model in models:
            resolve_model(model_id(model))  # build it now, outside every timed run
            rounds = args.small_rounds if model == "small-llama" else args.rounds
            model_rows, detail = bench_model(model, rounds, data, Path(tmp), args)
            rows, details = rows + model_rows, [*details, detail]
    threads = args.threads or torch.get_num_threads()
    print(
        f"\nDPO, {PAIRS} pairs ({TASK}), batch {BATCH}, {EPOCHS} epochs = {STEPS} steps, "
        f"float32 CPU, {threads} threads, {os.cpu_count()} cores; gro and TRL interleaved\n"
    )
    print(common.markdown_table(HEADER, rows))
    ckpt = "default (on)" if not args.trl_no_gradient_checkpointing else "off"
    print(f"\nTRL gradient checkpointing: {ckpt}. Medians of interleaved fresh-process runs.")
    print("\n".join(f"- {d}" for d in details))


if __name__ == "__main__":
    main()
