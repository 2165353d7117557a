"""Evaluation of a policy on held-out prompts: reward, pass@k, KL to the reference, diversity.

    metrics = evaluate_policy(model, tokenizer, examples, rows, scorer, num_generations=4)
    metrics = evaluate_run("runs/job")     # a job spec, a checkpoint directory or a run directory
    $ gro eval runs/a runs/b --json        # several targets: one row each, a comparison

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

Diversity (distinct-n, pairwise similarity) watches for the distribution collapse that reward
maximisation drives: G samples of one prompt becoming the same completion. It works on token ids,
so it means the same for any tokenizer, and leaves out the final eos every completion shares.
The KL estimate is unbiased for KL(π ‖ π_ref) only when samples come from π itself (temperature
1, top_p 1); otherwise it is E_q[log π − log π_ref] under the sampling distribution q.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from collections.abc import Sequence as Seq
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from pydantic import ValidationError
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from gro_core.methods import get_method
from gro_core.models import Reference, load_policy, load_reference, load_tokenizer
from gro_core.rewards import RewardResult, RewardScorer, build_scorer
from gro_core.rollout.sampling import RolloutSettings, sample
from gro_core.spec import JobSpec, SpecError, format_validation_error, load_spec

if TYPE_CHECKING:
    from gro_core.trainers.encode import Example

# gro_core.trainers is imported only inside functions: its package imports the online objective,
# which may then import evaluate_policy from here at module level without an import cycle.

__all__ = [
    "DEFAULT_CORRECT_THRESHOLD",
    "EvalTarget",
    "bigram_jaccard",
    "distinct_n",
    "eval_command",
    "evaluate_policy",
    "evaluate_run",
    "format_table",
    "pairwise_similarity",
    "pass_at_k",
    "resolve_target",
]

_T = TypeVar("_T")

DEFAULT_CORRECT_THRESHOLD = 1.0
"""A completion is "correct" (for pass@k and accuracy) when its total reward reaches this: with a
0/1 rule reward such as a task's exact match, exactly when it gives the right answer."""


# ---------------------------------------------------------------------------------------------
# The metrics themselves: pure functions of counts and token ids
# ---------------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples drawn without replacement from n is correct), c of n correct.

    The unbiased estimator 1 − C(n−c, k) / C(n, k) (Chen et al., 2021), exact in integers.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _ngrams(ids: Seq[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


def distinct_n(completions: Seq[Seq[int]], n: int) -> float:
    """Unique n-grams / all n-grams over `completions` (token id lists); 0.0 when there are none."""
    grams = [g for ids in completions for g in _ngrams(ids, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def bigram_jaccard(a: Seq[int], b: Seq[int]) -> float:
    """|A ∩ B| / |A ∪ B| of the two sequences' token-bigram sets, O(len a + len b).

    A sequence shorter than two tokens stands for itself as one gram, so two equal short
    sequences (two empty ones included) score 1.0 and unequal ones 0.0.
    """
    grams_a = set(_ngrams(a, 2)) or {tuple(a)}
    grams_b = set(_ngrams(b, 2)) or {tuple(b)}
    return len(grams_a & grams_b) / len(grams_a | grams_b)


def pairwise_similarity(completions: Seq[Seq[int]]) -> float:
    """Mean bigram Jaccard over the G(G−1)/2 pairs of one prompt's G completions: O(G² · L).

    1.0 when all are the same (collapse), near 0 when they share no bigram; needs G ≥ 2.
    """
    pairs = list(itertools.combinations(completions, 2))
    if not pairs:
        raise ValueError("pairwise similarity needs at least two completions")
    return sum(bigram_jaccard(a, b) for a, b in pairs) / len(pairs)


# ---------------------------------------------------------------------------------------------
# Evaluating a model
# ---------------------------------------------------------------------------------------------


def _mean(values: Seq[float]) -> float:
    return sum(values) / len(values)


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
        "eval/reward": _mean(greedy.total),
        "eval/accuracy": _mean([float(r >= threshold) for r in greedy.total]),
    }
    metrics |= {f"eval/{name}": value for name, value in greedy.per_function.items()}
    metrics["eval/reward_sampled"] = _mean(sampled.total)
    groups = [sampled.total[i : i + g] for i in range(0, len(sampled.total), g)]
    correct = [sum(r >= threshold for r in group) for group in groups]
    for k in ks:
        metrics[f"eval/pass@{k}"] = _mean([pass_at_k(g, c, k) for c in correct])
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
    from gro_core.trainers.encode import Sequence, collate, completion_logprobs

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


def _diversity_metrics(completions: list[list[int]], g: int, eos: int | None) -> dict[str, float]:
    # The final eos is the same in every finished completion: it says nothing about diversity.
    content = [c[:-1] if c and eos is not None and c[-1] == eos else c for c in completions]
    metrics = {"eval/distinct_1": distinct_n(content, 1), "eval/distinct_2": distinct_n(content, 2)}
    if g >= 2:
        groups = [content[i : i + g] for i in range(0, len(content), g)]
        metrics["eval/pairwise_similarity"] = _mean([pairwise_similarity(x) for x in groups])
    return metrics


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
    metrics |= _diversity_metrics(ids, g, tokenizer.eos_token_id)
    metrics["eval/length"] = _mean([len(c) for c in ids])
    return metrics


# ---------------------------------------------------------------------------------------------
# Evaluating a run: a spec, a checkpoint or a run directory
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalTarget:
    """What to evaluate: weights, the spec they were trained with, and the spec to evaluate on."""

    label: str
    """The target as the user named it: the row label of `gro eval`."""
    spec: JobSpec
    """The run's spec: how to load the weights (LoRA base) and the default reference."""
    checkpoint: Path | None
    """A checkpoint directory; None evaluates `spec.model`, the run's starting point."""
    data_spec: JobSpec
    """Held-out prompts, rewards and rollout settings: `spec` unless another was given."""


def _checkpoint_spec(checkpoint: Path) -> JobSpec:
    from gro_core.trainers.checkpoint import TRAINER_STATE

    # weights_only=False: the state holds RNG tuples we wrote. mmap: the optimizer's moments
    # (twice the model) are never read, only the small `spec` entry.
    state = torch.load(
        checkpoint / TRAINER_STATE, map_location="cpu", weights_only=False, mmap=True
    )
    if "spec" not in state:
        raise ValueError(f"{checkpoint}: the trainer state holds no job spec")
    return load_spec(state["spec"])


def _find_checkpoint(path: Path) -> Path | None:
    """`path` itself when it is a checkpoint, else the latest checkpoint of the run it holds."""
    from gro_core.trainers.checkpoint import TRAINER_STATE, latest_checkpoint

    if (path / TRAINER_STATE).is_file():
        return path
    found = latest_checkpoint(path)
    return found[1] if found else None


def resolve_target(target: str, spec_path: str | Path | None = None) -> EvalTarget:
    """A job spec file, a checkpoint directory (`.../checkpoints/step-N`) or a run directory
    (its latest checkpoint). `spec_path` replaces the data, rewards and rollout settings."""
    path = Path(target)
    if path.is_file():
        spec, checkpoint = load_spec(path), None
    elif path.is_dir():
        checkpoint = _find_checkpoint(path)
        if checkpoint is None:
            raise ValueError(f"{target}: neither a checkpoint nor a run directory with one")
        spec = _checkpoint_spec(checkpoint)
    else:
        raise FileNotFoundError(f"{target}: no such spec file or directory")
    data_spec = load_spec(Path(spec_path)) if spec_path else spec
    return EvalTarget(target, spec, checkpoint, data_spec)


def _held_out(spec: JobSpec, tokenizer: PreTrainedTokenizerBase, n: int) -> list[Example]:
    """The first `n` held-out prompts: data.eval, or the task's eval split (any kind's `prompt`;
    the task's rows keep `answer`, so its reward scores them)."""
    from gro_core.trainers.datasets import load_records
    from gro_core.trainers.encode import encode_prompts

    # The task's eval split is generated with eval.num_prompts rows: ask for n.
    spec = spec.model_copy(update={"eval": spec.eval.model_copy(update={"num_prompts": n})})
    _, _, records = load_records(spec)
    if not records:
        raise ValueError("no held-out prompts: set data.eval or data.task in the spec")
    room = max(2, spec.train.max_length - spec.rollout.max_new_tokens)
    return encode_prompts(tokenizer, records[:n], room)


def _scorer_for(spec: JobSpec, tokenizer: PreTrainedTokenizerBase) -> RewardScorer | None:
    """The spec's rewards (or its task's); None for data with neither (e.g. plain SFT rows)."""
    from gro_core.trainers.online import python_rewards_allowed

    if not spec.rewards and spec.data.task is None:
        return None
    return build_scorer(
        spec.rewards,
        task=spec.data.task,
        eos=tokenizer.eos_token,
        allow_python=python_rewards_allowed(),
    )


def _load_target(target: EvalTarget) -> tuple[torch.nn.Module, Reference]:
    """The policy and its reference: spec.reference_model, else the run's starting model."""
    from peft import PeftModel

    from gro_core.trainers.loop import load_run_model

    spec = target.spec
    if get_method(spec.method).trains_with == "reward_model":
        raise ValueError(f"{target.label}: a reward model does not generate; nothing to evaluate")
    if target.checkpoint is None:
        policy = load_policy(spec.model)
        if spec.reference_model is None:
            # The starting model is its own reference: no second copy (and KL 0).
            return policy, Reference(policy, adapters_disabled=False)
        return policy, load_reference(policy, spec.reference_model)
    policy = load_run_model(spec, target.checkpoint)
    if spec.reference_model is None and isinstance(policy, PeftModel):
        return policy, load_reference(policy)  # the base model: adapters off, no copy
    return policy, load_reference(policy, spec.reference_model or spec.model)


def _given(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def evaluate_run(
    target: str,
    *,
    spec_path: str | Path | None = None,
    num_prompts: int | None = None,
    num_generations: int | None = None,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    with_reference: bool = True,
    samples: list[dict[str, Any]] | None = None,
) -> dict[str, float]:
    """`evaluate_policy` on a spec's model, a checkpoint or a run's latest checkpoint.

    Unset options come from the (data) spec: eval.num_prompts, rollout.num_generations,
    rollout.max_new_tokens, rollout.temperature, train.seed. The reference model is loaded
    for the KL metrics (skip it with `with_reference=False`) and released afterwards.
    """
    resolved = resolve_target(target, spec_path)
    spec = resolved.data_spec
    tokenizer = load_tokenizer(resolved.spec.model)
    examples = _held_out(spec, tokenizer, _given(num_prompts, spec.eval.num_prompts))
    scorer = _scorer_for(spec, tokenizer)
    rows = [e.row for e in examples]
    if scorer is not None:
        scorer.check_rows(rows)
    policy, reference = _load_target(resolved)
    try:
        return evaluate_policy(
            policy,
            tokenizer,
            examples,
            rows,
            scorer,
            num_generations=_given(num_generations, spec.rollout.num_generations),
            max_new_tokens=_given(max_new_tokens, spec.rollout.max_new_tokens),
            temperature=_given(temperature, spec.rollout.temperature),
            top_p=spec.rollout.top_p,
            stop=tuple(spec.rollout.stop),
            reference=reference if with_reference else None,
            seed=_given(seed, spec.train.seed),
            samples=samples,
        )
    finally:
        reference.release()
        del policy
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the next target loads into the memory this one held


# ---------------------------------------------------------------------------------------------
# `gro eval TARGET [TARGET ...]`
# ---------------------------------------------------------------------------------------------


def format_table(results: list[tuple[str, dict[str, float]]]) -> str:
    """One row per target, one column per metric (the `eval/` prefix dropped), aligned."""
    names: list[str] = []
    for _, metrics in results:
        names += [n for n in metrics if n not in names]
    header = ["target", *(n.removeprefix("eval/") for n in names)]
    cells = [[label, *(f"{m[n]:.4g}" if n in m else "-" for n in names)] for label, m in results]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *cells]
    ]
    return "\n".join(line.rstrip() for line in lines)


def eval_command(targets: list[str], *, as_json: bool = False, **options: Any) -> int:
    """Evaluate each target (evaluate_run's keyword `options`) and print a table or JSON.

    Exit code 0 on success, 1 when a target cannot be evaluated, 2 for an invalid spec.
    """
    from gro_core.train_cli import quiet_libraries

    quiet_libraries()
    results: list[tuple[str, dict[str, float]]] = []
    for target in targets:
        try:
            results.append((target, evaluate_run(target, **options)))
        except (ValidationError, SpecError) as exc:
            for problem in format_validation_error(exc):
                print(
                    f"{target}: {problem['path'] or '<root>'}: {problem['message']}",
                    file=sys.stderr,
                )
            return 2
        except (OSError, ValueError) as exc:  # a DataError is a ValueError
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps([{"target": t, "metrics": m} for t, m in results], indent=2))
    else:
        print(format_table(results))
    return 0
