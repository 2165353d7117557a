"""Evaluation of a policy on held-out prompts: reward, pass@k, KL to the reference, diversity.

    metrics = evaluate_policy(model, tokenizer, examples, rows, scorer, num_generations=4)

Every prompt gets one greedy completion and G sampled ones. The metrics, all under `eval/`:

| name | what |
|---|---|
| eval/reward | mean total reward of the greedy completions |
| eval/accuracy | share of greedy completions that are correct (total reward ≥ threshold) |
| eval/reward/<fn> | mean of each reward function on the greedy completions (the scorer's names) |
| eval/reward_sampled | mean total reward of the sampled completions |
| eval/pass@k | unbiased pass@k from the G samples of each prompt, for k in {1, G} |
| eval/kl_ref | mean over samples of Σ_t log π(y_t) − log π_ref(y_t): a sequence-level KL estimate |
| eval/kl_ref_per_token | the same sum over all samples / their token count |
| eval/distinct_1, _2 | unique token n-grams / all token n-grams over every sample |
| eval/pairwise_similarity | mean over prompts of the mean bigram Jaccard of its G samples |
| eval/length | mean sampled completion length in tokens, eos included |

Diversity (gro_core.evaluation.metrics) works on token ids and leaves out the final eos every
completion shares. The KL estimate is unbiased for KL(π ‖ π_ref) only when samples come from π
itself (temperature 1, top_p 1); otherwise it is E_q[log π − log π_ref] under the sampling
distribution q.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from gro_core.data.encode import Example, Sequence, collate, completion_logprobs
from gro_core.evaluation.metrics import diversity_metrics, mean, pass_at_k
from gro_core.models import Reference
from gro_core.rewards import (
    RewardResult,
    RewardScorer,
    build_scorer,
    python_rewards_allowed,
    reward_timeout_s,
)
from gro_core.rollout.sampling import RolloutSettings, sample

__all__ = ["DEFAULT_CORRECT_THRESHOLD", "evaluate_policy", "scorer_for"]

DEFAULT_CORRECT_THRESHOLD = 1.0
"""A completion is "correct" (for pass@k and accuracy) when its total reward reaches this: with a
0/1 rule reward such as a task's exact match, exactly when it gives the right answer."""


def _decode_all(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[int]],
    num_generations: int,
    settings: RolloutSettings,
    generator: torch.Generator | None,
    batch_size: int,
) -> tuple[list[list[int]], list[Tensor]]:
    """Completions (prompt-major, G each) and their per-token log-probs, `batch_size` prompts
    per decode so that memory stays bounded; one generator keeps the whole draw seeded."""
    ids: list[list[int]] = []
    logprobs: list[Tensor] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        out = sample(model, tokenizer, chunk, num_generations, settings, generator)
        ids += out.completion_ids
        logprobs += out.logprobs
    return ids, logprobs


def _reward_metrics(
    greedy: RewardResult, sampled: RewardResult, g: int, threshold: float, ks: Seq[int]
) -> dict[str, float]:
    metrics = {
        "eval/reward": mean(greedy.total),
        "eval/accuracy": mean([float(r >= threshold) for r in greedy.total]),
    }
    metrics |= {f"eval/{name}": value for name, value in greedy.per_function.items()}
    metrics["eval/reward_sampled"] = mean(sampled.total)
    groups = [sampled.total[i : i + g] for i in range(0, len(sampled.total), g)]
    correct = [sum(r >= threshold for r in group) for group in groups]
    for k in ks:
        metrics[f"eval/pass@{k}"] = mean([pass_at_k(g, c, k) for c in correct])
    return metrics


def _scoring(reference: torch.nn.Module | Reference) -> AbstractContextManager[torch.nn.Module]:
    """Score with `reference` in eval mode without grad; a plain module is treated as frozen."""
    if isinstance(reference, Reference):
        return reference.scoring()
    return Reference(reference, adapters_disabled=False).scoring()


def _kl_metrics(
    reference: torch.nn.Module | Reference,
    prompts: list[list[int]],
    completions: list[list[int]],
    logprobs: list[Tensor],
    pad_id: int,
    batch_size: int,
) -> dict[str, float]:
    """Σ_t log π − log π_ref per sampled completion; π's log-probs are the rollout's own."""
    seqs = [Sequence(tuple(p), tuple(c)) for p, c in zip(prompts, completions, strict=True)]
    ref_sums: list[float] = []
    with _scoring(reference) as model:
        device = next(model.parameters()).device
        for start in range(0, len(seqs), batch_size):
            chunk = [s for s in seqs[start : start + batch_size] if s.completion_ids]
            if chunk:
                batch = collate(chunk, pad_id).to(device)
                ref_sums += completion_logprobs(model, batch).sum(dim=1).tolist()  # (b,)
    policy_sums = [float(lp.sum()) for lp in logprobs if len(lp)]
    kl = [p - r for p, r in zip(policy_sums, ref_sums, strict=True)]
    tokens = sum(len(c) for c in completions)
    return {
        # Completions with no token (a stop string at once) contribute 0 to both estimates.
        "eval/kl_ref": sum(kl) / len(completions),
        "eval/kl_ref_per_token": sum(kl) / max(tokens, 1),
    }


def _completion_records(
    tokenizer: PreTrainedTokenizerBase,
    rows: list[dict],
    completions: list[list[int]],
    scored: RewardResult | None,
    decoding: str,
) -> list[dict[str, Any]]:
    """One dict per completion, in a shape that uploads again as a dataset (prompt, completion
    and the row's other fields, e.g. its answer), plus its reward."""
    texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
    rewards = scored.total if scored is not None else [None] * len(texts)
    return [
        {**row, "completion": text, "reward": reward, "decoding": decoding}
        for row, text, reward in zip(rows, texts, rewards, strict=True)
    ]


def scorer_for(
    rewards: Seq[Any], task: str | None, tokenizer: PreTrainedTokenizerBase
) -> RewardScorer | None:
    """The rewards (or, with none, the task's rule reward) as one scorer; None with neither
    (e.g. plain SFT rows): the reward metrics are then left out."""
    if not rewards and task is None:
        return None
    return build_scorer(
        rewards,
        task=task,
        eos=tokenizer.eos_token,
        allow_python=python_rewards_allowed(),
        timeout_s=reward_timeout_s(),
    )


def _check_options(
    n_prompts: int, n_rows: int, num_generations: int, max_new_tokens: int, temperature: float
) -> None:
    if n_prompts < 1 or n_prompts != n_rows:
        raise ValueError(f"need one row per prompt and at least one; got {n_prompts}, {n_rows}")
    if num_generations < 1 or max_new_tokens < 1 or temperature <= 0:
        raise ValueError(
            f"need num_generations >= 1 ({num_generations}), max_new_tokens >= 1 "
            f"({max_new_tokens}) and temperature > 0 ({temperature})"
        )


@torch.no_grad()
def evaluate_policy(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[Example],
    rows: list[dict],
    scorer: RewardScorer | None,
    *,
    num_generations: int = 4,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop: tuple[str, ...] = (),
    reference: torch.nn.Module | Reference | None = None,
    seed: int = 0,
    ks: Seq[int] | None = None,
    correct_threshold: float = DEFAULT_CORRECT_THRESHOLD,
    batch_size: int = 32,
    samples: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """The module docstring's `eval/*` metrics of `model` on P held-out prompts.

    prompts: (P,) Examples whose first sequence's prompt_ids is the prompt; rows: (P,) the dataset
    rows the scorer reads. Without a scorer the reward metrics are left out, without a reference
    the KL ones, and with num_generations = 1 the pairwise similarity. ks (default {1, G}) must
    lie in 1..G. The same seed gives the same metrics; `batch_size` prompts decode at once.
    With `samples`, one dict per completion is appended to it: the row's fields, then prompt,
    completion, reward (None without a scorer) and `decoding` (greedy or sampled).
    """
    _check_options(len(prompts), len(rows), num_generations, max_new_tokens, temperature)
    g = num_generations
    ks = sorted({1, g}) if ks is None else sorted(set(ks))
    if not all(1 <= k <= g for k in ks):
        raise ValueError(f"pass@k needs 1 <= k <= num_generations ({g}); got ks={ks}")
    prompt_ids = [list(e.sequences[0].prompt_ids) for e in prompts]
    device = next(model.parameters()).device
    # On the model's device: torch.multinomial refuses a generator on another device.
    generator = torch.Generator(device=device).manual_seed(seed)
    sampling = RolloutSettings(max_new_tokens, temperature, top_p, stop=stop)
    greedy = RolloutSettings(max_new_tokens, greedy=True, stop=stop)
    greedy_ids, _ = _decode_all(model, tokenizer, prompt_ids, 1, greedy, None, batch_size)
    ids, logprobs = _decode_all(model, tokenizer, prompt_ids, g, sampling, generator, batch_size)

    metrics: dict[str, float] = {}
    decode = tokenizer.batch_decode
    repeated_rows = [row for row in rows for _ in range(g)]
    scored_greedy = scored = None
    if scorer is not None:
        scored_greedy = scorer(decode(greedy_ids, skip_special_tokens=True), rows)
        scored = scorer(decode(ids, skip_special_tokens=True), repeated_rows)
        metrics |= _reward_metrics(scored_greedy, scored, g, correct_threshold, ks)
    if samples is not None:
        samples += _completion_records(tokenizer, rows, greedy_ids, scored_greedy, "greedy")
        samples += _completion_records(tokenizer, repeated_rows, ids, scored, "sampled")
    if reference is not None:
        repeated = [p for p in prompt_ids for _ in range(g)]
        pad = tokenizer.pad_token_id
        metrics |= _kl_metrics(reference, repeated, ids, logprobs, pad, batch_size)
    metrics |= diversity_metrics(ids, g, tokenizer.eos_token_id)
    metrics["eval/length"] = mean([len(c) for c in ids])
    return metrics
