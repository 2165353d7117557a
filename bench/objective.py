"""gro_loss against a plain hand-written loss for the same method (DPO and GRPO).

B=256 completions, T=512 tokens, float32 on CPU, forward + backward. The two losses are
timed in alternation within one run (this machine's speed drifts between runs), and the
table reports medians and the ratio gro / hand-written. Target: ratio <= 1.3.

    python bench/objective.py [--repeats 30] [--batch 256] [--tokens 512]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gro_core.methods import get_preset
from gro_core.objective.loss import gro_loss

Inputs = dict[str, torch.Tensor]


def make_inputs(batch: int, tokens: int, group: int, seed: int = 0) -> Inputs:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(tokens // 4, tokens + 1, (batch,), generator=gen)
    lp = -torch.rand(batch, tokens, generator=gen) * 3
    return {
        "logprobs": lp,
        # Far enough from lp that GRPO clips some tokens, as after a few minibatches.
        "old": lp + 0.3 * torch.randn(batch, tokens, generator=gen),
        "ref": lp + 0.1 * torch.randn(batch, tokens, generator=gen),
        "mask": torch.arange(tokens)[None, :] < lengths[:, None],
        "rewards": torch.randn(batch, generator=gen),
        "group_ids": torch.arange(batch) // group,
    }


def dpo_by_hand(x: Inputs, lp: torch.Tensor, beta: float = 0.1) -> torch.Tensor:
    """Pairs laid out as (chosen, rejected) in consecutive rows, as a hand-written loop would."""
    maskf = x["mask"].float()
    seq = (lp * maskf).sum(1)
    seq_ref = (x["ref"] * maskf).sum(1)
    delta = seq - seq_ref
    return -F.logsigmoid(beta * (delta[0::2] - delta[1::2])).mean()


def grpo_by_hand(x: Inputs, lp: torch.Tensor, group: int, eps: float = 0.2, beta: float = 0.04):
    r = x["rewards"].view(-1, group)
    adv = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1, 1)
    ratio = torch.exp(lp - x["old"])
    per_token = -torch.min(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv)
    diff = x["ref"] - lp
    per_token = per_token + beta * (torch.exp(diff) - diff - 1)
    maskf = x["mask"].float()
    return ((per_token * maskf).sum(1) / maskf.sum(1).clamp(min=1)).mean()


def gro(x: Inputs, lp: torch.Tensor, preset: str, stats: bool = False) -> torch.Tensor:
    """gro_loss fed what a trainer of that method has: no old log-probs for offline DPO."""
    cfg = get_preset(preset)
    out = gro_loss(
        cfg,
        logprobs=lp,
        mask=x["mask"],
        rewards=x["rewards"],
        group_ids=x["group_ids"],
        old_logprobs=x["old"] if cfg.token_level else None,
        ref_logprobs=x["ref"],
    )
    if stats:
        _ = out.stats  # the diagnostics a logging step reads
    return out.loss


def time_once(fn: Callable[[Inputs, torch.Tensor], torch.Tensor], x: Inputs, inner: int) -> float:
    """Seconds per call, averaged over `inner` back-to-back calls (timer noise is ~µs)."""
    leaves = [x["logprobs"].clone().requires_grad_() for _ in range(inner)]
    start = time.perf_counter()
    for lp in leaves:
        fn(x, lp).backward()
    return (time.perf_counter() - start) / inner


def compare(
    name: str, ours, theirs, x: Inputs, repeats: int, inner: int = 20
) -> tuple[str, float, float]:
    for _ in range(3):  # warm-up: allocator and kernels
        time_once(ours, x, inner), time_once(theirs, x, inner)
    a, b = [], []
    for i in range(repeats):
        # Alternate which goes first so neither always runs on a warmer cache.
        pair = (ours, theirs) if i % 2 == 0 else (theirs, ours)
        t = [time_once(fn, x, inner) for fn in pair]
        a.append(t[0] if i % 2 == 0 else t[1])
        b.append(t[1] if i % 2 == 0 else t[0])
    return name, statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    group = 8
    pairs = make_inputs(args.batch, args.tokens, group=2)
    pairs["rewards"] = torch.tensor([1.0, -1.0]).repeat(args.batch // 2)  # chosen, rejected
    groups = make_inputs(args.batch, args.tokens, group)
    rows = [
        compare("dpo", lambda x, lp: gro(x, lp, "dpo"), dpo_by_hand, pairs, args.repeats),
        compare("dpo + stats", lambda x, lp: gro(x, lp, "dpo", stats=True), dpo_by_hand,
                pairs, args.repeats),
        compare("grpo", lambda x, lp: gro(x, lp, "grpo"),
                lambda x, lp: grpo_by_hand(x, lp, group), groups, args.repeats),
        compare("grpo + stats", lambda x, lp: gro(x, lp, "grpo", stats=True),
                lambda x, lp: grpo_by_hand(x, lp, group), groups, args.repeats),
    ]  # fmt: skip
    print(
        f"B={args.batch} T={args.tokens} float32 CPU, forward+backward, "
        f"median of {args.repeats} interleaved repeats, {torch.get_num_threads()} threads"
    )
    print("| method | gro_loss (ms) | hand-written (ms) | ratio |")
    print("|---|---|---|---|")
    for name, ours, theirs in rows:
        print(f"| {name} | {ours * 1e3:.2f} | {theirs * 1e3:.2f} | {ours / theirs:.2f} |")


if __name__ == "__main__":
    main()
