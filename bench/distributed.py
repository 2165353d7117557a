"""Sharded training: resources.strategy ddp against fsdp (FSDP2) on 2 CPU gloo processes.

    PYTHONPATH=. python bench/distributed.py --size small --rounds 1 --steps 3

Each run is `torchrun --nproc_per_node 2` over gro's own Trainer (the loop a job runs), SFT on
builtin:arithmetic-sft with random weights. After every optimizer step each rank counts the
bytes it holds of parameters, gradients (at the optimizer step, before they are freed) and
AdamW state: a DTensor counts its local shard, a plain tensor all of itself. Peak RSS per rank
is ru_maxrss (it includes torch, the data and FSDP's transient all-gathered blocks). steps/s is
over the steps after the first (warm-up). DDP and FSDP alternate within a round, and the table
gives same-run ratios FSDP/DDP (targets: per-rank state <= 0.6x, step time <= 1.3x).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import _common as common
import torch

# Model sizes: two builtins, and a ~85M Llama built locally from a LlamaConfig (random weights).
SIZES: dict[str, dict[str, int] | str] = {
    "tiny": "builtin:tiny-llama",
    "small": "builtin:small-llama",
    "medium": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 2048},
}
STRATEGIES = ("ddp", "fsdp")


def build_local_model(shape: dict[str, int], out: Path) -> Path:
    """A Llama of `shape` with gro's character tokenizer, saved as a model directory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from gro_core.models.builtin import build_char_tokenizer

    path = out / "model-{hidden_size}x{num_layers}".format(**shape)
    if (path / "config.json").exists():
        return path
    tokenizer = build_char_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape["hidden_size"],
        num_hidden_layers=shape["num_layers"],
        num_attention_heads=shape["num_heads"],
        num_key_value_heads=shape["num_heads"],
        intermediate_size=shape["intermediate_size"],
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def job_spec(model: str, strategy: str, steps: int, batch_size: int) -> dict[str, Any]:
    return {
        "model": model,
        "method": "sft",
        "data": {"task": "builtin:arithmetic-sft"},
        "train": {"steps": steps, "batch_size": batch_size, "lr": 1e-4, "warmup_steps": 1},
        "eval": {"every": 0},
        "checkpoint": {"every": 0, "keep": 1},
        "resources": {"nproc_per_node": 2, "strategy": strategy},
    }


def local_bytes(tensors: list[torch.Tensor]) -> int:
    """Bytes this rank holds of `tensors`: a DTensor's local shard, else the whole tensor."""
    held = (getattr(t, "_local_tensor", t) for t in tensors)
    return sum(t.numel() * t.element_size() for t in held)


def optimizer_bytes(optimizer: torch.optim.Optimizer) -> int:
    state = optimizer.state.values()
    return local_bytes([v for s in state for v in s.values() if torch.is_tensor(v)])


class StateProbe:
    """Wraps the trainer's optimizer.step to count this rank's state bytes at every step."""

    def __init__(self, optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> None:
        self.peak: dict[str, int] = {"params": 0, "grads": 0, "optimizer": 0}
        step = optimizer.step

        def counted(*args: Any, **kwargs: Any) -> Any:
            grads = local_bytes([p.grad for p in params if p.grad is not None])
            out = step(*args, **kwargs)
            now = {
                "params": local_bytes(params),
                "grads": grads,
                "optimizer": optimizer_bytes(optimizer),
            }
            self.peak = {k: max(v, now[k]) for k, v in self.peak.items()}
            return out

        optimizer.step = counted  # type: ignore[method-assign]


def worker_main(args: argparse.Namespace) -> None:
    """One rank of a torchrun run: train `steps` steps, then rank 0 emits every rank's numbers."""
    import torch.distributed as dist

    from gro_core.spec import JobSpec
    from gro_core.trainers.loop import Trainer

    spec = JobSpec.model_validate(job_spec(args.model, args.worker, args.steps, args.batch_size))
    trainer = Trainer(spec, Path(args.out), [], resume=False)
    probe = StateProbe(trainer.optimizer, trainer.params)
    trainer.train_step(0)  # warm-up: allocator, thread pool, first all-gathers
    dist.barrier()
    start = time.perf_counter()
    for step in range(1, args.steps):
        trainer.train_step(step)
    dist.barrier()
    wall = time.perf_counter() - start
    mine = {"state": probe.peak, "peak_rss_mb": common.peak_rss_mb()}
    every: list[Any] = [None] * trainer.ranks.world
    dist.all_gather_object(every, mine)
    if trainer.ranks.main:
        common.emit_result({"ranks": every, "steps_per_s": (args.steps - 1) / wall})
    trainer.ranks.finish()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_run(args: argparse.Namespace, strategy: str, model: str, out: Path) -> dict:
    launcher = ["-m", "torch.distributed.run", "--nproc_per_node", "2"]
    argv = [*launcher, "--master_port", str(_free_port()), __file__, "--worker", strategy]
    argv += ["--model", model, "--out", str(out / strategy), "--steps", str(args.steps)]
    argv += ["--batch-size", str(args.batch_size)]
    env = {"OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    return common.run_quietly(
        argv, env, wait=args.wait, max_others=args.max_others, retries=args.retries
    )


def summary(got: dict[str, list[dict]]) -> str:
    def state_mb(run: dict) -> float:  # the larger rank's share (rank 0 holds the odd shard)
        return max(sum(r["state"].values()) for r in run["ranks"]) / 2**20

    rows, medians = [], {}
    for strategy in STRATEGIES:
        runs = got[strategy]
        state = common.median([state_mb(r) for r in runs])
        parts = {
            k: common.median([max(x["state"][k] for x in r["ranks"]) / 2**20 for r in runs])
            for k in ("params", "grads", "optimizer")
        }
        rss = common.median([max(x["peak_rss_mb"] for x in r["ranks"]) for r in runs])
        rate = common.median([r["steps_per_s"] for r in runs])
        others = max(r["others_share"] for r in runs)
        medians[strategy] = (state, rss, rate)
        rows.append(
            [
                strategy,
                f"{parts['params']:.1f}",
                f"{parts['grads']:.1f}",
                f"{parts['optimizer']:.1f}",
                f"{state:.1f}",
                f"{rss:.0f}",
                f"{rate:.2f}",
                f"{100 * others:.0f}%",
            ]
        )
    (ds, dr, dv), (fs, fr, fv) = medians["ddp"], medians["fsdp"]
    rows.append(
        ["fsdp/ddp", "", "", "", f"{fs / ds:.2f}x", f"{fr / dr:.2f}x", f"time {dv / fv:.2f}x", ""]
    )
    header = [
        "strategy",
        "params MB/rank",
        "grads MB/rank",
        "AdamW MB/rank",
        "state MB/rank",
        "peak RSS MB/rank",
        "steps/s",
        "others' CPU",
    ]
    return common.markdown_table(header, rows)


def parent_main(args: argparse.Namespace) -> None:
    out = Path(args.out or "bench-distributed-out").resolve()
    out.mkdir(parents=True, exist_ok=True)
    size = SIZES[args.size]
    if isinstance(size, str):
        from gro_core.models.builtin import resolve_model

        # Built here, once: two ranks building the same builtin at once raced (one read a
        # config.json without model_type while the other wrote it).
        model = resolve_model(size)
    else:
        model = str(build_local_model(size, out))
    got: dict[str, list[dict]] = {s: [] for s in STRATEGIES}
    for round_ in range(args.rounds):
        # Alternate which strategy goes first, so a drifting machine load favours neither.
        order = STRATEGIES if round_ % 2 == 0 else STRATEGIES[::-1]
        for strategy in order:
            print(f"round {round_ + 1}: {strategy}", file=sys.stderr, flush=True)
            got[strategy].append(one_run(args, strategy, model, out / f"round-{round_}"))
    (out / "results.json").write_text(json.dumps(got, indent=2))
    print(
        f"\n{args.size} ({model}), 2 gloo processes, sft, {args.steps} steps of batch "
        f"{args.batch_size}, {args.rounds} round(s), median over rounds\n"
    )
    print(summary(got))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--rounds", type=int, default=1, help="ddp+fsdp pairs")
    parser.add_argument("--steps", type=int, default=4, help="steps per run (first is warm-up)")
    parser.add_argument("--batch-size", type=int, default=8, help="global batch (2 ranks)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--wait", type=float, default=60, help="max s to wait for a quiet machine")
    parser.add_argument(
        "--max-others", type=float, default=0.1, help="others' CPU share that voids a run"
    )
    parser.add_argument("--retries", type=int, default=0, help="reruns of a voided run")
    parser.add_argument("--out", help="directory for models and runs")
    parser.add_argument("--worker", choices=STRATEGIES, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first is warm-up)")
    if args.worker:
        worker_main(args)
    else:
        parent_main(args)


if __name__ == "__main__":
    main()
